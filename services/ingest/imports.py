"""Spreadsheet imports (CONTRACT §11): ``POST /v1/employees:import`` and ``POST /v1/jobs:import``.

A CSV file as Excel and Google Sheets export it (UTF-8 with or without a BOM, ``;`` or ``,``
separated — sniffed from the header line —, quoted fields, CRLF, Danish characters) with a
header row of the ``employee.upserted`` resp. ``job.upserted`` field names becomes one upsert
event per row. The rules (:func:`parse`) are pure; :class:`Imports` is the I/O.

All or nothing: any bad line refuses the whole file (422 naming every bad line and column,
with the line numbers a spreadsheet shows: the header is line 1). ``?dry_run=true`` only
validates.

Idempotent: an event's id is ``import:{sha256 of its kind and normalised data}`` and its
source ``urn:ripples:import``, so the same row always gives the same id. Ingest records the
ids it has published (table ``ingest_imports``, written in the transaction that is committed
only once the broker acknowledged the events), so re-importing the same file publishes nothing
and ``published`` counts only rows not yet accepted. The pipeline's own deduplication is not
used for this: it lives in the consumers (attribution's ``attribution_seen``), long after the
request has been answered, and the notifier has none for upserts; a re-published row would
also carry a newer ``time`` and so win over a newer HR change. The event ``time`` is the
request time: a re-import after an HR change wins only when the row's content differs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from services.ingest.database import DB_ERRORS, Database, unavailable
from services.ingest.settings import IngestSettings
from shared.events import (
    EmployeeUpserted,
    EmployeeUpsertedEvent,
    Envelope,
    JobUpserted,
    JobUpsertedEvent,
)
from shared.http import ProblemError, json_response, read_body

log = logging.getLogger(__name__)

Kind = Literal["employees", "jobs"]
SOURCE = "urn:ripples:import"
MEDIA = "text/csv"

EMPLOYEE_COLUMNS = (
    "employee_id",
    "display_name",
    "ambassador",
    "department",
    "locale",
    "notify_channel",
    "notify_address",
    "recognition_opt_out",
    "linkedin_member_urn",
    "followers",
)
JOB_COLUMNS = ("job_id", "title", "family", "hard_to_recruit")
COLUMNS: dict[Kind, tuple[str, ...]] = {"employees": EMPLOYEE_COLUMNS, "jobs": JOB_COLUMNS}
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "employees": ("employee_id", "display_name"),
    "jobs": ("job_id",),
}
BOOLEANS = {"ambassador", "recognition_opt_out", "hard_to_recruit"}
INTEGERS = {"followers"}

_TRUE = {"true", "ja", "yes", "1", "sand"}  # "SAND"/"FALSK": a Danish spreadsheet's booleans
_FALSE = {"false", "nej", "no", "0", "falsk"}


@dataclass(frozen=True)
class LineError:
    line: int  # as a spreadsheet shows it: the header is line 1
    column: str | None  # the header name; None for the line as a whole
    detail: str

    def as_dict(self) -> dict[str, Any]:
        # `field` as every other problem names what is wrong (a dotted path): lines.3.locale
        field = f"lines.{self.line}" + (f".{self.column}" if self.column else "")
        return {"field": field, "line": self.line, "column": self.column, "detail": self.detail}


@dataclass(frozen=True)
class Parsed:
    rows: int
    events: list[Envelope]
    errors: list[LineError]


class TooManyRows(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"a file holds at most {limit} rows")
        self.limit = limit


def decode(body: bytes) -> str | LineError:
    """The text of ``body`` (UTF-8, a leading BOM dropped), or the error naming the line of
    the first byte that is not UTF-8 (an Excel "CSV" that is not "CSV UTF-8" is cp1252)."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        return LineError(
            line, None, "the file is not UTF-8: export it as “CSV UTF-8” (Excel) or CSV (Sheets)"
        )


def sniff(header: str) -> str:
    """The separator of a file from its header line: ``;`` (Excel in a Danish locale) when it
    has more of them than commas, else ``,`` (Google Sheets, Excel in English)."""
    return ";" if header.count(";") > header.count(",") else ","


def parse_bool(value: str) -> bool | None:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_FIELD_TO_COLUMN = {"notify.channel": "notify_channel", "notify.address": "notify_address"}


def _column_of(message: str) -> tuple[str | None, str]:
    """The column and the reason of a msgspec validation message (``… - at `$.locale```)."""
    match = _AT.search(message)
    if match is None:
        return None, message
    path = match.group(1)
    return _FIELD_TO_COLUMN.get(path, path.split(".")[0] or None), message[: match.start()]


def event_id(kind: Kind, data: msgspec.Struct) -> str:
    """``import:{sha256}`` of the kind and the row's normalised data (every field, defaults
    included, in the model's field order): the same row always gives the same id."""
    digest = hashlib.sha256(kind.encode() + b"\n" + msgspec.json.encode(data)).hexdigest()
    return f"import:{digest}"


def _row_data(
    kind: Kind, line: int, cells: dict[str, str], errors: list[LineError]
) -> dict[str, Any] | None:
    data: dict[str, Any] = {}
    bad = False
    for column, value in cells.items():
        if not value:
            continue  # an empty cell: the field's default
        if column in BOOLEANS:
            parsed = parse_bool(value)
            if parsed is None:
                errors.append(LineError(line, column, f"not a yes/no value: {value[:40]!r}"))
                bad = True
            data[column] = parsed
        elif column in INTEGERS:
            if not value.isascii() or not value.isdigit():
                errors.append(LineError(line, column, "not a whole number ≥ 0"))
                bad = True
            else:
                data[column] = int(value)
        elif column not in ("notify_channel", "notify_address"):
            data[column] = value
    if kind == "employees":
        channel, address = cells.get("notify_channel", ""), cells.get("notify_address", "")
        if channel:
            data["notify"] = {"channel": channel.lower(), "address": address or None}
            if channel.lower() != "none" and not address:
                errors.append(
                    LineError(line, "notify_address", f"required for channel `{channel}`")
                )
                bad = True
        elif address:
            errors.append(LineError(line, "notify_channel", "required with a notify_address"))
            bad = True
    return None if bad else data


def parse(body: bytes, kind: Kind, now: datetime, max_rows: int) -> Parsed:
    """The upsert events of a CSV file, or every error of it (then no events). Raises
    :class:`TooManyRows` beyond ``max_rows`` data rows."""
    text = decode(body)
    if isinstance(text, LineError):
        return Parsed(0, [], [text])
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff(first), strict=True)
    errors: list[LineError] = []
    events: list[Envelope] = []
    known = COLUMNS[kind]
    model = EmployeeUpserted if kind == "employees" else JobUpserted
    envelope = EmployeeUpsertedEvent if kind == "employees" else JobUpsertedEvent
    key = REQUIRED[kind][0]
    header: list[str] | None = None
    seen: dict[str, int] = {}
    rows = 0
    line = 0
    try:
        for line, record in enumerate(reader, start=1):
            cells = [cell.strip() for cell in record]
            if header is None:
                header = [cell.lower() for cell in cells]
                for name in header:
                    if name not in known:
                        errors.append(
                            LineError(1, name or None, f"unknown column; known: {', '.join(known)}")
                        )
                for name in {n for n in header if header.count(n) > 1}:
                    errors.append(LineError(1, name, "column appears more than once"))
                for name in REQUIRED[kind]:
                    if name not in header:
                        errors.append(LineError(1, name, "required column is missing"))
                if errors:
                    return Parsed(0, [], errors)
                continue
            if not any(cells):
                continue  # an empty row (spreadsheets export trailing ones)
            rows += 1
            if rows > max_rows:
                raise TooManyRows(max_rows)
            if len(cells) > len(header):
                errors.append(
                    LineError(line, None, f"{len(cells)} fields, the header has {len(header)}")
                )
                continue
            row = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))
            missing = [name for name in REQUIRED[kind] if not row.get(name)]
            if missing:
                errors.extend(LineError(line, name, "required") for name in missing)
                continue
            raw = _row_data(kind, line, row, errors)
            if raw is None:
                continue
            try:
                data = msgspec.convert(raw, model)
            except (msgspec.ValidationError, ValueError) as exc:
                column, reason = _column_of(str(exc))
                errors.append(LineError(line, column, reason))
                continue
            entity = row[key]
            if entity in seen:
                errors.append(LineError(line, key, f"also on line {seen[entity]}"))
                continue
            seen[entity] = line
            events.append(
                envelope(
                    specversion="1.0",
                    id=event_id(kind, data),
                    source=SOURCE,
                    time=now,
                    data=data,  # type: ignore[arg-type]
                )
            )
    except csv.Error as exc:
        errors.append(LineError(line + 1, None, f"not valid CSV: {exc}"))
    if header is None:
        errors.append(LineError(1, None, "the file is empty: a header row is required"))
    if errors:
        return Parsed(rows, [], errors)
    return Parsed(rows, events, [])


def _dry_run(request: Request) -> bool:
    value = request.query_params.get("dry_run")
    if value is None:
        return False
    parsed = parse_bool(value)
    if parsed is None:
        raise ProblemError(
            422,
            "invalid-parameter",
            "Invalid parameter",
            "dry_run must be true or false",
            errors=[{"field": "dry_run", "detail": "must be true or false"}],
        )
    return parsed


class Imports:
    """The two import routes, publishing through ingest's own publish path (so employee
    rows feed the directory as upserts on ``/v1/events`` do)."""

    def __init__(self, settings: IngestSettings, database: Database, publish: Any) -> None:
        self.settings = settings
        self.database = database
        self._publish = publish  # Ingest._publish

    async def employees(self, request: Request) -> Response:
        return await self._import(request, "employees")

    async def jobs(self, request: Request) -> Response:
        return await self._import(request, "jobs")

    async def _import(self, request: Request, kind: Kind) -> Response:
        dry_run = _dry_run(request)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != MEDIA:
            raise ProblemError(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"send the file as {MEDIA} (got {media or 'no Content-Type'})",
            )
        body = await read_body(request, self.settings.import_max_bytes)
        try:
            parsed = parse(body, kind, datetime.now(UTC), self.settings.import_max_rows)
        except TooManyRows as exc:
            raise ProblemError(413, "too-many-rows", "Too many rows", str(exc)) from None
        if parsed.errors:
            lines = sorted({e.line for e in parsed.errors})
            shown = ", ".join(map(str, lines[:20])) + (" …" if len(lines) > 20 else "")
            raise ProblemError(
                422,
                "invalid-import",
                "Invalid file",
                f"{len(lines)} line(s) are invalid ({shown}); nothing was imported",
                errors=[e.as_dict() for e in parsed.errors],
            )
        if dry_run:
            fresh = await self._unknown(parsed.events)
            return json_response(
                {"rows": parsed.rows, "published": len(fresh), "dry_run": True}, 200
            )
        published = await self._publish_new(request, parsed.events)
        return json_response({"rows": parsed.rows, "published": published}, 202)

    async def _unknown(self, events: Sequence[Envelope]) -> list[Envelope]:
        try:
            rows = await self.database.pool.fetch(
                "select id from ingest_imports where id = any($1::text[])",
                [e.id for e in events],
            )
        except DB_ERRORS as exc:
            log.warning("imports not read", extra={"reason": type(exc).__name__})
            raise unavailable() from None
        known = {row["id"] for row in rows}
        return [e for e in events if e.id not in known]

    async def _publish_new(self, request: Request, events: list[Envelope]) -> int:
        """Publish the events whose id is not recorded yet; record them in the same
        transaction, committed only after the broker's acknowledgement (a concurrent import of
        the same file waits on the ids' index and then publishes nothing)."""
        if not events:
            return 0
        try:
            async with self.database.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    "insert into ingest_imports (id) select unnest($1::text[])"
                    " on conflict (id) do nothing returning id",
                    [e.id for e in events],
                )
                new = {row["id"] for row in rows}
                fresh = [e for e in events if e.id in new]
                step = self.settings.max_batch_events
                for start in range(0, len(fresh), step):
                    await self._publish(fresh[start : start + step], request, b"", "import")
        except DB_ERRORS as exc:
            log.warning("imports not recorded", extra={"reason": type(exc).__name__})
            raise unavailable() from None
        return len(fresh)
