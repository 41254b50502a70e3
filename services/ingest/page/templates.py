"""The HTML of the employee's page, the overview and the refusal page: pure functions of what
they show. Every value is escaped (:func:`e`); the only script is the copy button's
progressive enhancement, allowed by the response's CSP nonce. Works without JavaScript: the
link is in a read-only field, every action a plain form.

Accessibility: ``lang`` on the document, a label for every field, errors tied to their field
(``aria-describedby``, ``aria-invalid``), status messages in ``role=status``, a visible focus
ring, colours of at least 7:1 contrast, tables with captions and header cells.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal

from services.ingest.page.texts import CHANNELS, TEXTS

BABEL = {"da": "da_DK", "en": "en_GB"}

CSS = """
:root { color: #1b1b1b; background: #ffffff; font: 1rem/1.5 system-ui, sans-serif; }
body { margin: 0 auto; max-width: 52rem; padding: 1rem; }
body.wide { max-width: 72rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
section { border-top: 1px solid #6b6b6b; }
label { display: block; font-weight: 600; margin-top: .75rem; }
label.inline { display: inline; font-weight: 400; }
input, select, textarea { font: inherit; padding: .4rem; border: 1px solid #4a4a4a;
  border-radius: 4px; max-width: 100%; color: #1b1b1b; background: #ffffff; }
input[type=url], input[type=text], textarea, select { width: 32rem; }
button { font: inherit; margin-top: .75rem; padding: .45rem 1rem; border: 0;
  border-radius: 4px; background: #0b4f8a; color: #ffffff; cursor: pointer; }
:focus-visible { outline: 3px solid #b34700; outline-offset: 2px; }
.notice { background: #e6f2e6; color: #0f3d0f; padding: .5rem .75rem; border-radius: 4px; }
.error { color: #8f0000; font-weight: 600; }
table { border-collapse: collapse; margin-top: .5rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #8a8a8a; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; }
.figure { font-size: 1.4rem; font-weight: 700; }
"""

COPY_SCRIPT = """
(function () {
  var button = document.getElementById("copy"), field = document.getElementById("link-url");
  if (!button || !field) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    var done = function () { button.textContent = button.getAttribute("data-done"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done);
    } else { field.select(); document.execCommand("copy"); done(); }
  });
})();
"""


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(value: float, locale: str, decimals: int = 0) -> str:
    fmt = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=fmt, locale=BABEL[locale])


def day(value: str | date | datetime | None, locale: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return ""
    return format_date(value, format="long", locale=BABEL[locale])


def document(
    locale: str, title: str, body: str, nonce: str, script: bool = False, wide: bool = False
) -> str:
    tail = f'<script nonce="{e(nonce)}">{COPY_SCRIPT}</script>' if script else ""
    opening = '<body class="wide">' if wide else "<body>"
    return (
        f'<!doctype html><html lang="{e(locale)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="same-origin"><title>{e(title)}</title>'
        f'<style nonce="{e(nonce)}">{CSS}</style></head>{opening}<main>{body}</main>{tail}'
        "</body></html>"
    )


def denied(locale: str, expired: bool, nonce: str) -> str:
    t = TEXTS[locale]
    text = t["denied_expired"] if expired else t["denied_invalid"]
    body = f"<h1>{e(t['denied_title'])}</h1><p>{e(text)}</p>"
    return document(locale, t["denied_title"], body, nonce)


def unavailable(locale: str, nonce: str) -> str:
    t = TEXTS[locale]
    body = f"<h1>{e(t['unavailable_title'])}</h1><p>{e(t['unavailable'])}</p>"
    return document(locale, t["unavailable_title"], body, nonce)


@dataclass
class PageView:
    """Everything the page shows; ``errors`` maps a form field to the text key of its error."""

    locale: str
    token: str
    form_token: str
    name: str | None
    figures: Mapping[str, Any] | None  # None: attribution did not answer
    figures_missing: bool  # attribution knows no figures for the employee yet
    jobs: Sequence[tuple[str, str | None]]
    link: tuple[str, str] | None  # (public url, job title) just made
    connection: Mapping[str, Any] | None
    channel: str | None
    address: str | None
    opt_out: bool
    notice: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _error(view: PageView, name: str) -> tuple[str, str]:
    """(attributes of the field, the error paragraph) for form field ``name``."""
    key = view.errors.get(name)
    if key is None:
        return "", ""
    text = TEXTS[view.locale][key]
    return (
        f' aria-invalid="true" aria-describedby="{name}-error"',
        f'<p class="error" id="{name}-error" role="alert">{e(text)}</p>',
    )


def _form(view: PageView, action: str, inner: str, label: str) -> str:
    return (
        f'<form method="post" action="/me/{e(view.token)}/{action}">'
        f'<input type="hidden" name="form_token" value="{e(view.form_token)}">'
        f'{inner}<button type="submit">{e(label)}</button></form>'
    )


def _figures(view: PageView) -> str:
    t, loc = TEXTS[view.locale], view.locale
    if view.figures is None:
        return f'<p role="status">{e(t["figures_unavailable"])}</p>'
    if view.figures_missing:
        return f"<p>{e(t['figures_none'])}</p>"
    f = view.figures
    period = t["figures_period"].format(start=day(f.get("from"), loc), end=day(f.get("to"), loc))
    out = [f"<p>{e(period)}</p>"]
    reach = f.get("reach") or {}
    applicants, hires = f.get("applicants") or {}, f.get("hires") or {}
    inspired = f.get("inspired") or {}
    cards = [
        (t["reach"], number(reach.get("impressions", 0), loc)),
        (t["inspired"], number(inspired.get("total", 0), loc)),
        (
            t["applicants"],
            f"{number(applicants.get('attributed', 0), loc)} "
            f"({t['credit'].format(credit=number(applicants.get('credit', 0), loc, 2))})",
        ),
        (
            t["hires"],
            f"{number(hires.get('attributed', 0), loc)} "
            f"({t['credit'].format(credit=number(hires.get('credit', 0), loc, 2))})",
        ),
        (t["emv"], number(reach.get("emv", 0), loc, 2)),
    ]
    out.append("<dl>")
    for label, value in cards:
        out.append(f'<dt>{e(label)}</dt><dd class="figure">{e(value)}</dd>')
    out.append("</dl>")
    rings = inspired.get("by_ring") or {}
    if rings:
        items = "".join(
            f"<li>{e(t['ring'].format(ring=ring))}: {e(number(n, loc))}</li>"
            for ring, n in sorted(rings.items(), key=lambda kv: int(kv[0]))
        )
        out.append(f'<ul aria-label="{e(t["inspired"])}">{items}</ul>')
    posts = f.get("posts") or []
    if posts:
        head = "".join(
            f'<th scope="col">{e(t[k])}</th>'
            for k in ("published", "origin", "impressions", "reactions", "comments", "reshares")
        )
        rows = []
        for post in posts:
            origin = t.get(f"origin_{post.get('origin') or 'unknown'}", t["origin_unknown"])
            cells = "".join(
                f'<td class="n">{e(number(post.get(k, 0) or 0, loc))}</td>'
                for k in ("impressions", "reactions", "comments", "reshares")
            )
            rows.append(
                f"<tr><td>{e(day(post.get('published_at'), loc))}</td><td>{e(origin)}</td>"
                f"{cells}</tr>"
            )
        out.append(
            f"<table><caption>{e(t['posts'])}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    return "".join(out)


def _link(view: PageView) -> str:
    t = TEXTS[view.locale]
    out = []
    if view.link is not None:
        url, job = view.link
        paste = t["paste"].format(job=job, url=url)
        out.append(
            f'<div id="made"><label for="link-url">{e(t["your_link"].format(job=job))}</label>'
            f'<input id="link-url" type="text" readonly value="{e(url)}">'
            f'<button type="button" id="copy" hidden data-done="{e(t["copied"])}">'
            f"{e(t['copy'])}</button>"
            f'<label for="paste">{e(t["paste_text"])}</label>'
            f'<textarea id="paste" readonly rows="3">{e(paste)}</textarea></div>'
        )
    if not view.jobs:
        out.append(f"<p>{e(t['no_jobs'])}</p>")
        return "".join(out)
    attributes, error = _error(view, "job_id")
    options = "".join(
        f'<option value="{e(job_id)}">{e(title or job_id)}</option>' for job_id, title in view.jobs
    )
    inner = (
        f'<label for="job_id">{e(t["job"])}</label>'
        f'<select id="job_id" name="job_id" required{attributes}>{options}</select>{error}'
    )
    out.append(_form(view, "links", inner, t["make_link_button"]))
    return "".join(out)


def _linkedin(view: PageView) -> str:
    t, loc = TEXTS[view.locale], view.locale
    connection = view.connection
    status = connection.get("status") if connection else None
    when = day(connection.get("expires_at"), loc) if connection else ""
    text = t.get(f"status_{status}", t["status_unknown"]).format(date=when)
    label = t["linkedin_connect"] if status in (None, "none") else t["linkedin_reconnect"]
    out = [f'<p id="linkedin-status">{e(text)}</p>']
    if status != "connected":
        out.append(_form(view, "linkedin", "", label))
    attributes, error = _error(view, "url")
    inner = (
        f'<h3 id="register">{e(t["register_post"])}</h3>'
        f'<label for="url">{e(t["post_url"])}</label>'
        f'<input id="url" name="url" type="url" required maxlength="2048"'
        f' value="{e(view.values.get("url", ""))}"'
        f' placeholder="https://www.linkedin.com/feed/update/urn:li:share:…"{attributes}>{error}'
    )
    out.append(_form(view, "posts", inner, t["register_button"]))
    return "".join(out)


def _preferences(view: PageView) -> str:
    t = TEXTS[view.locale]
    languages = "".join(
        f'<option value="{code}"{" selected" if code == view.locale else ""}>{name}</option>'
        for code, name in (("da", "Dansk"), ("en", "English"))
    )
    chosen = view.values.get("channel", view.channel or "")
    channels = "".join(
        f'<option value="{c}"{" selected" if c == chosen else ""}>'
        f"{e(t['channel_' + (c or 'hr')])}</option>"
        for c in ("", *CHANNELS)
    )
    channel_attributes, channel_error = _error(view, "channel")
    address_attributes, address_error = _error(view, "address")
    address = view.values.get("address", view.address or "")
    checked = " checked" if view.opt_out else ""
    inner = (
        f'<label for="locale">{e(t["language"])}</label>'
        f'<select id="locale" name="locale">{languages}</select>'
        f'<label for="channel">{e(t["channel"])}</label>'
        f'<select id="channel" name="channel"{channel_attributes}>{channels}</select>'
        f"{channel_error}"
        f'<label for="address">{e(t["address"])}</label>'
        f'<input id="address" name="address" type="text" maxlength="2048" autocomplete="email"'
        f' value="{e(address)}"{address_attributes}>{address_error}'
        f'<p><input id="opt_out" name="opt_out" type="checkbox" value="true"{checked}> '
        f'<label class="inline" for="opt_out">{e(t["opt_out"])}</label></p>'
    )
    return _form(view, "preferences", inner, t["save"])


def page(view: PageView, nonce: str) -> str:
    t = TEXTS[view.locale]
    hello = t["hello"].format(name=view.name) if view.name else t["hello_anonymous"]
    notice = (
        f'<p class="notice" role="status">{e(t["notice_" + view.notice])}</p>'
        if view.notice
        else ""
    )
    form_error = (
        f'<p class="error" role="alert">{e(t[view.errors["form"]])}</p>'
        if "form" in view.errors
        else ""
    )
    sections = [
        ("figures", t["figures"], _figures(view)),
        ("link", t["make_link"], _link(view)),
        ("linkedin", t["linkedin"], _linkedin(view)),
        ("preferences", t["preferences"], _preferences(view)),
    ]
    body = f"<h1>{e(hello)}</h1><p>{e(t['intro'])}</p>{notice}{form_error}" + "".join(
        f'<section aria-labelledby="{key}-title"><h2 id="{key}-title">{e(title)}</h2>'
        f"{content}</section>"
        for key, title, content in sections
    )
    return document(view.locale, t["title"], body, nonce, script=view.link is not None)


def _messages(t: Mapping[str, str], preferences: Mapping[str, Any]) -> str:
    """What the employee set themselves: a channel (else HR's), and an opt-out."""
    channel = preferences.get("channel")
    parts = [t["channel_" + channel] if channel else t["channel_hr"]]
    if preferences.get("opt_out"):
        parts.append(t["opted_out"])
    return ", ".join(parts)


def overview(locale: str, document_: Mapping[str, Any], nonce: str) -> str:
    """The overview's HTML from its JSON document (:func:`services.ingest.page.routes`)."""
    t = TEXTS[locale]
    month = format_date(
        datetime.fromisoformat(document_["month_start"].replace("Z", "+00:00")),
        format="LLLL yyyy",
        locale=BABEL[locale],
    )
    head = "".join(
        f'<th scope="col">{e(text)}</th>'
        for text in (
            t["employee"],
            t["ambassador"],
            t["connection"],
            t["invitations"],
            t["page_links"],
            t["posts_this_month"].format(month=month),
            t["links_made"],
            t["messages"],
        )
    )
    rows = []
    for person in document_["employees"]:
        linkedin = person["linkedin"]
        status = t.get(f"status_{linkedin['status']}", linkedin["status"]).format(
            date=day(linkedin["expires_at"], locale)
        )
        invitations, pages, links = person["invitations"], person["page_links"], person["links"]
        name = person["display_name"] or person["employee_id"]
        rows.append(
            f'<tr><th scope="row">{e(name)}</th>'
            f"<td>{e(t['yes'] if person['ambassador'] else t['no'])}</td><td>{e(status)}</td>"
            f'<td class="n">{invitations["sent"]} / {invitations["opened"]}</td>'
            f'<td class="n">{pages["sent"]} / {pages["opened"]}</td>'
            f'<td class="n">{person["posts_this_month"]}</td>'
            f'<td class="n">{links["total"]} / {links["this_month"]}</td>'
            f"<td>{e(_messages(t, person['preferences']))}</td></tr>"
        )
    count = t["in_programme"].format(n=len(document_["employees"]))
    body = (
        f"<h1>{e(t['overview'])}</h1><p>{e(t['overview_intro'])}</p>"
        f"<table><caption>{e(count)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return document(locale, t["overview"], body, nonce, wide=True)
