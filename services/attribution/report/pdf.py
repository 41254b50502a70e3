"""The PDF report: the HTML report printed by WeasyPrint (its ``@page``/``@media print``
stylesheet; inline SVG charts drawn as vectors). WeasyPrint needs Pango from the system
(Debian: libpango-1.0-0, libpangoft2-1.0-0; ``make tools`` installs them when missing)."""

from __future__ import annotations

from typing import Any


def html_to_pdf(page: str) -> bytes:
    # Imported here: loading WeasyPrint loads Pango, which only the PDF needs.
    import weasyprint  # type: ignore[import-untyped]

    document: Any = weasyprint.HTML(string=page, base_url=None)
    pdf: bytes = document.write_pdf()
    return pdf
