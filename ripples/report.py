"""``ripples report``: the period report as the attribution service serves it (CONTRACT §9).

``ripples report [--from] [--to] [--model] [--locale da|en] [--format md|html|pdf|csv]
[--out FILE] [--share SECONDS]``

A thin client: the report is rendered once, by attribution's ``GET /v1/report`` (see
``services/attribution/report/``), so the CLI, a browser and a share link show the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

FORMATS = ("md", "html", "pdf", "csv")
LOCALES = ("en", "da")
MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _period(start: datetime | None, end: datetime | None) -> dict[str, str]:
    return {k: _stamp(v) for k, v in (("from", start), ("to", end)) if v is not None}


def fetch(
    attribution: str,
    api_key: str,
    start: datetime | None,
    end: datetime | None,
    model: str = "last_touch",
    locale: str = "en",
    fmt: str = "md",
    timeout_s: float = 120.0,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """The served report, as bytes (the PDF is binary; the other formats are UTF-8)."""
    params = {"model": model, "locale": locale, "format": fmt} | _period(start, end)
    with httpx.Client(
        base_url=attribution,
        timeout=timeout_s,
        headers={"Authorization": f"Bearer {api_key}"},
        transport=transport,
    ) as client:
        response = client.get("/v1/report", params=params)
        response.raise_for_status()
        return response.content


def share_link(
    attribution: str,
    api_key: str,
    start: datetime | None,
    end: datetime | None,
    model: str = "last_touch",
    locale: str = "en",
    expires_in_s: int = 7 * 86400,
    timeout_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """A signed link to the HTML report that opens without a key: ``{"url","expires_at"}``."""
    body = {"model": model, "locale": locale, "expires_in_s": expires_in_s}
    with httpx.Client(
        base_url=attribution,
        timeout=timeout_s,
        headers={"Authorization": f"Bearer {api_key}"},
        transport=transport,
    ) as client:
        response = client.post("/v1/report/links", json=body | _period(start, end))
        response.raise_for_status()
        link: dict[str, Any] = response.json()
        return link
