"""The period report, served by attribution (CONTRACT §9): ``GET /v1/report`` in HTML, PDF,
CSV and Markdown, Danish and English, and the signed share links a person opens without a key.

``render`` is the one renderer: the routes (``routes.py``) serve it and ``ripples report``
fetches what they serve.
"""

from __future__ import annotations

from services.attribution.report.catalogue import LOCALES
from services.attribution.report.pdf import html_to_pdf
from services.attribution.report.render import (
    ReportData,
    Week,
    render_csv,
    render_html,
    render_markdown,
)

FORMATS = ("html", "pdf", "csv", "md")
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}

__all__ = ["FORMATS", "LOCALES", "MEDIA_TYPES", "ReportData", "Week", "render"]


def render(data: ReportData, fmt: str, locale: str = "en") -> bytes:
    """The report in ``fmt`` (one of :data:`FORMATS`) and ``locale`` (one of :data:`LOCALES`).
    The PDF is the HTML printed by WeasyPrint (CPU-bound: call it off the event loop)."""
    if fmt == "pdf":
        return html_to_pdf(render_html(data, locale))
    text = {"html": render_html, "csv": render_csv, "md": render_markdown}[fmt](data, locale)
    return text.encode("utf-8")
