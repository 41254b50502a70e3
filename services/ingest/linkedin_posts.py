"""LinkedIn post URLs → post URNs (pure; CONTRACT §8 ``POST /v1/linkedin/posts``).

The public URL forms of a post, as LinkedIn's share menu and feed hand them out:
- ``https://www.linkedin.com/feed/update/urn:li:activity:{id}/`` (also ``urn:li:share:`` and
  ``urn:li:ugcPost:``; the URN may be percent-encoded, ``urn%3Ali%3Aactivity%3A{id}``);
- ``https://www.linkedin.com/embed/feed/update/urn:li:…`` (the embed code's address);
- ``https://www.linkedin.com/posts/{slug}-activity-{id}-{suffix}`` (also ``-ugcPost-`` and
  ``-share-``), the "Copy link to post" form;
each with or without a query string or fragment, on ``linkedin.com`` or any of its
subdomains (``www.``, ``dk.``…), over https or http.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_KINDS = {"activity": "activity", "share": "share", "ugcpost": "ugcPost"}
_URN = re.compile(r"^urn:li:(activity|share|ugcPost):(\d{1,30})$", re.IGNORECASE)
_SLUG = re.compile(r"-(activity|share|ugcPost)-(\d{1,30})(?:-[A-Za-z0-9_-]*)?$", re.IGNORECASE)


class NotAPostUrl(ValueError):
    pass


def post_urn(url: str) -> str:
    """The URN (``urn:li:activity:…``, ``urn:li:share:…`` or ``urn:li:ugcPost:…``) that a
    public LinkedIn post URL names; :class:`NotAPostUrl` for anything else."""
    if not isinstance(url, str) or len(url) > 2048 or not url.isprintable():
        raise NotAPostUrl("not a URL")
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        raise NotAPostUrl("not a URL") from None
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("https", "http") or not (
        host == "linkedin.com" or host.endswith(".linkedin.com")
    ):
        raise NotAPostUrl("not a linkedin.com URL")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if segments[:1] == ["embed"]:
        segments = segments[1:]
    if len(segments) == 3 and segments[:2] == ["feed", "update"]:
        match = _URN.match(segments[2])
        if match:
            return f"urn:li:{_KINDS[match.group(1).lower()]}:{match.group(2)}"
    if len(segments) == 2 and segments[0] == "posts":
        match = _SLUG.search(segments[1])
        if match:
            return f"urn:li:{_KINDS[match.group(1).lower()]}:{match.group(2)}"
    raise NotAPostUrl("not the address of a LinkedIn post")
