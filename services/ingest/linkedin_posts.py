"""LinkedIn post URLs → post URNs (pure; CONTRACT §8 ``POST /v1/linkedin/posts``).

The public URL forms of a post, as LinkedIn's share menu and feed hand them out:
- ``https://www.linkedin.com/feed/update/urn:li:activity:{id}/`` (also ``urn:li:share:`` and
  ``urn:li:ugcPost:``; the URN may be percent-encoded, ``urn%3Ali%3Aactivity%3A{id}``);
- ``https://www.linkedin.com/embed/feed/update/urn:li:…`` (the embed code's address);
- ``https://www.linkedin.com/posts/{slug}-activity-{id}-{suffix}`` (also ``-ugcPost-`` and
  ``-share-``), the "Copy link to post" form;
each with or without a query string or fragment, on ``linkedin.com`` or any of its
subdomains (``www.``, ``dk.``…), over https or http.

An ``urn:li:activity:`` names the feed's activity, not the post whose statistics LinkedIn
gives; :func:`activity_post` reads the post from LinkedIn's Activities API (DMA) answer
(https://learn.microsoft.com/en-us/linkedin/dma/content/activities): ``GET /rest/dmaActivities?
ids=List(urn%3Ali%3Aactivity%3A{id})`` is a Rest.li BATCH_GET "to resolve a batch of activities
and returns each activities' domain entity Urn", so the answer's ``results`` map holds, under
the activity's key, an object whose ``domainEntity`` is the share/ugcPost; "the DomainEntity
field will be empty when the author is opted out for sharing their data".
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

_KINDS = {"activity": "activity", "share": "share", "ugcpost": "ugcPost"}
_URN = re.compile(r"^urn:li:(activity|share|ugcPost):(\d{1,30})$", re.IGNORECASE)
_POST = re.compile(r"\Aurn:li:(share|ugcPost):\d{1,30}\Z")
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


def activity_post(document: Any, activity: str) -> str | None:
    """The ``urn:li:share:``/``urn:li:ugcPost:`` that a ``dmaActivities`` BATCH_GET answer
    gives for ``activity`` (its ``results`` keyed by the URN, plain or URL-encoded); None when
    the answer has none (the author opted out of data sharing, or the activity is not a post's:
    a comment's, an article's…)."""
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, dict):
        return None
    found = results.get(activity, results.get(quote(activity, safe="")))
    entity = found.get("domainEntity") if isinstance(found, dict) else None
    return entity if isinstance(entity, str) and _POST.match(entity) else None
