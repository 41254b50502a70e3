"""Query and path parameters, checked as the OpenAPI documents describe them: every bad value
is a 422 problem+json whose ``errors[].field`` names the parameter, never a 5xx.

What counts as bad everywhere: an empty value (``?from=``), control characters (U+0000-U+001F,
U+007F-U+009F: PostgreSQL text cannot hold U+0000 and the others are never part of an id),
a value over its length, a timestamp that is not RFC 3339 or has no UTC equivalent
(``0001-01-01T00:00:00+01:00`` is year 0 in UTC), a value outside its set or range.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from shared.http import ProblemError

T = TypeVar("T", bound=str)

MAX_IDENTIFIER = 256
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
IDENTIFIER_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_IDENTIFIER,
    "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$",
}
"""The JSON Schema of what :func:`identifier` accepts."""
# RFC 3339 §5.6 date-time: full-date "T" full-time, the offset "Z" or ±hh:mm.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


_WHERE = {
    "query": ("invalid-parameter", "Invalid query parameter"),
    "body": ("invalid-body", "Invalid request body"),
}


def invalid(parameter: str, detail: str, where: Literal["query", "body"] = "query") -> ProblemError:
    """The 422 answer to a bad query parameter, or (``where="body"``) to a bad field of a
    JSON request body: the same shape, its own problem type."""
    problem, title = _WHERE[where]
    return ProblemError(
        422,
        problem,
        title,
        f"`{parameter}`: {detail}",
        errors=[{"field": parameter, "detail": detail}],
    )


def _present(raw: str, name: str) -> str:
    if raw == "":
        raise invalid(name, "must not be empty (leave the parameter out instead)")
    if _CONTROL.search(raw):
        raise invalid(name, "must not contain control characters")
    return raw


def identifier(raw: str | None, name: str, max_length: int = MAX_IDENTIFIER) -> str | None:
    """An id: 1 to ``max_length`` characters, no control characters; None when absent."""
    if raw is None:
        return None
    _present(raw, name)
    if len(raw) > max_length:
        raise invalid(name, f"must be at most {max_length} characters")
    return raw


def timestamp(raw: str | None, name: str) -> datetime | None:
    """An RFC 3339 date-time with ``Z`` or an offset that has a UTC equivalent; None when
    absent."""
    if raw is None:
        return None
    _present(raw, name)
    if not _RFC3339.fullmatch(raw):
        raise invalid(name, "must be an RFC 3339 timestamp, e.g. 2026-01-01T00:00:00Z")
    try:
        value = datetime.fromisoformat(raw.upper())
        value.astimezone(UTC)
    except ValueError:
        raise invalid(name, "is not a valid date and time") from None
    except OverflowError:
        raise invalid(name, "has no UTC equivalent (out of range)") from None
    return value


def choice(raw: str | None, name: str, options: Sequence[T], default: T) -> T:
    """One of ``options``; ``default`` when absent."""
    if raw is None:
        return default
    for option in options:
        if raw == option:
            return option
    _present(raw, name)
    raise invalid(name, f"must be one of {', '.join(options)}")


def integer(raw: str | None, name: str, low: int, high: int, default: int) -> int:
    """A whole number from ``low`` to ``high`` (decimal digits only); ``default`` when
    absent."""
    if raw is None:
        return default
    _present(raw, name)
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or not low <= int(raw) <= high:
        raise invalid(name, f"must be a whole number from {low} to {high}")
    return int(raw)


def period(start: datetime | None, end: datetime | None) -> None:
    """Refuse a period whose ``from`` is not before its ``to``."""
    if start is not None and end is not None and start >= end:
        raise invalid("to", "must be after `from`")
