"""Recognition messages: the templates a communication adviser edits, rendered per locale.

The words live in ``templates/<locale>.toml`` (one table per kind with a ``title`` and a
``text``). Rendering is pure: the employee's name and the recognition's facts go in, a title
and a text come out. Numbers are formatted for the locale ("10.000" in Danish, "10,000" in
English). There is no placeholder for an applicant, so a message cannot name or describe one.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.events import CONNECTION_KINDS, RECOGNITION_KINDS, Locale, RecognitionFacts

TEMPLATES = Path(__file__).parent / "templates"
LOCALES: tuple[Locale, ...] = ("da", "en")
DIGEST = "digest"

# Placeholders each table may use; anything else in a template is an error at load time.
_COMMON = {"name"}
_ALLOWED: dict[str, set[str]] = {
    "first_post": _COMMON | {"post_count"},
    "reach_milestone": _COMMON | {"threshold", "impressions"},
    "first_applicant": _COMMON,
    "hire": _COMMON,
    "inspired_colleague": _COMMON | {"colleague"},
    "inspired_colleague_unnamed": _COMMON,
    DIGEST: _COMMON | {"count", "items", "title"},
}
# Messages about the employee's own LinkedIn connection (from ingest): the link to open and
# the day it stops working. ``linkedin_reconnect`` says the connection is about to expire;
# ``linkedin_reconnect_stopped`` that it has expired or LinkedIn refused it.
RECONNECT_STOPPED = "linkedin_reconnect_stopped"
CONNECTION_TABLES = (*CONNECTION_KINDS, RECONNECT_STOPPED)
_ALLOWED |= dict.fromkeys(CONNECTION_TABLES, _COMMON | {"url", "expires"})
# The line with the employee's own page, added under every message when the notifier is
# configured to sign page links (NOTIFIER_PAGE_BASE_URL, NOTIFIER_PAGE_LINK_SECRETS).
PAGE_LINK = "page_link"
_ALLOWED[PAGE_LINK] = _COMMON | {"page_url"}
_MONTHS: dict[Locale, tuple[str, ...]] = {
    "da": ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august",
           "september", "oktober", "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}  # fmt: skip
# The scheduled period report (schedule.py): with the PDF attached, or with a share link.
REPORT_KINDS = ("report_email", "report_link")
_ALLOWED["report_email"] = {"period"}
_ALLOWED["report_link"] = {"period", "url", "expires"}
_THOUSANDS: dict[Locale, str] = {"da": ".", "en": ","}


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Message:
    title: str
    text: str


@dataclass(frozen=True)
class Templates:
    """The loaded templates of every locale: ``tables[locale][kind] = {"title":…, "text":…}``."""

    tables: Mapping[str, Mapping[str, Mapping[str, str]]]

    @classmethod
    def load(cls, folder: Path = TEMPLATES) -> Templates:
        tables: dict[str, dict[str, dict[str, str]]] = {}
        for locale in LOCALES:
            path = folder / f"{locale}.toml"
            try:
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise TemplateError(f"{path.name}: {exc}") from None
            tables[locale] = _check(path.name, raw)
        return cls(tables)

    def render(self, kind: str, locale: Locale, name: str, facts: RecognitionFacts) -> Message:
        """The message of one recognition for one employee."""
        if kind == "inspired_colleague" and not facts.colleague_display_name:
            kind = "inspired_colleague_unnamed"
        table = self.tables[locale][kind]
        values = {
            "name": name,
            "post_count": format_number(facts.post_count or 1, locale),
            "threshold": format_number(facts.threshold or 0, locale),
            "impressions": format_number(facts.impressions or facts.threshold or 0, locale),
            "colleague": facts.colleague_display_name or "",
        }
        return Message(table["title"].format_map(values), table["text"].format_map(values))

    def render_connection(
        self, kind: str, locale: Locale, name: str, url: str, expires_at: datetime, reason: str
    ) -> Message:
        """A message about the employee's LinkedIn connection (an invitation, or a reconnect
        with a fresh invitation link)."""
        if kind == "linkedin_reconnect" and reason in ("expired", "revoked"):
            kind = RECONNECT_STOPPED
        table = self.tables[locale][kind]
        values = {"name": name, "url": url, "expires": format_date(expires_at, locale)}
        return Message(table["title"].format_map(values), table["text"].format_map(values))

    def with_page(self, message: Message, locale: Locale, name: str, page_url: str) -> Message:
        """``message`` with the line that links the employee's page under its text."""
        line = self.tables[locale][PAGE_LINK]["text"].format_map(
            {"name": name, "page_url": page_url}
        )
        return Message(message.title, f"{message.text}\n\n{line}")

    def render_digest(self, locale: Locale, name: str, titles: Sequence[str]) -> Message:
        """One message folding several recognitions (the daily cap's next-day digest)."""
        table = self.tables[locale][DIGEST]
        items = "\n".join(table["item"].format_map({"title": t, "name": name}) for t in titles)
        values = {"name": name, "count": format_number(len(titles), locale), "items": items}
        return Message(table["title"].format_map(values), table["text"].format_map(values))

    def render_report(self, kind: str, locale: Locale, values: Mapping[str, str]) -> Message:
        """A scheduled report's message (``report_email`` or ``report_link``)."""
        table = self.tables[locale][kind]
        return Message(table["title"].format_map(values), table["text"].format_map(values))


def locale_of(value: str) -> Locale:
    """An employee's stored locale; anything but Danish reads English (the contract default)."""
    return "da" if value == "da" else "en"


def format_number(value: int, locale: Locale) -> str:
    """``10000`` → ``10.000`` (da) or ``10,000`` (en)."""
    return f"{value:,}".replace(",", _THOUSANDS[locale])


def format_date(value: datetime, locale: Locale) -> str:
    """The UTC day of ``value``: ``8. december 2026`` (da) or ``8 December 2026`` (en)."""
    day = value.astimezone(UTC)
    month = _MONTHS[locale][day.month - 1]
    return f"{day.day}. {month} {day.year}" if locale == "da" else f"{day.day} {month} {day.year}"


def _check(file: str, raw: Mapping[str, object]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for kind in (
        *RECOGNITION_KINDS,
        "inspired_colleague_unnamed",
        DIGEST,
        *CONNECTION_TABLES,
        PAGE_LINK,
        *REPORT_KINDS,
    ):
        table = raw.get(kind)
        if not isinstance(table, dict):
            raise TemplateError(f"{file}: the table [{kind}] is missing")
        fields = {DIGEST: ("title", "text", "item"), PAGE_LINK: ("text",)}.get(
            kind, ("title", "text")
        )
        entry: dict[str, str] = {}
        for field in fields:
            value = table.get(field)
            if not isinstance(value, str) or not value.strip():
                raise TemplateError(f"{file}: [{kind}] needs a non-empty `{field}`")
            for _, placeholder, _, _ in string.Formatter().parse(value):
                if placeholder is not None and placeholder not in _ALLOWED[kind]:
                    allowed = ", ".join(sorted(_ALLOWED[kind]))
                    raise TemplateError(
                        f"{file}: [{kind}] {field} uses {{{placeholder}}}; allowed: {allowed}"
                    )
            entry[field] = value
        needed = "{url}" if kind in CONNECTION_TABLES else "{page_url}" if kind == PAGE_LINK else ""
        if needed and needed not in entry["text"]:
            raise TemplateError(f"{file}: [{kind}] text must contain {needed}: the link to open")
        out[kind] = entry
    return out
