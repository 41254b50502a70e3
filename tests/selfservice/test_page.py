"""The employee's page and the overview (CONTRACT §11) through the real ingest process, the
broker and PostgreSQL, with the employee's figures from the real attribution process (its
``GET /v1/employees/{employee_id}/ripples``; tests/selfservice/conftest.py): page links, the
page in da/en, its forms (tracked link, preferences, post registration), their CSRF
defences, a refused or expired link, attribution down or not knowing the employee yet, and
the overview as JSON, HTML and through a share link."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from services.ingest.page.overview import OVERVIEW
from services.ingest.page.routes import FORM
from shared import signing
from shared.events import EmployeePreferencesEvent, LinkCreatedEvent
from tests.conftest import API_KEYS, AUTH, Running, read_events
from tests.connectors.conftest import wait_for
from tests.selfservice.conftest import (
    PAGE_SECRET,
    event,
    expected_figures,
    form_token,
    hr_employee,
    my_ripples,
    page_link,
    posted,
    send,
    shown_figures,
)

pytestmark = pytest.mark.integration


def path_of(url: str) -> str:
    return urlsplit(url).path


async def opened(
    http: httpx.AsyncClient, name: str = "Søren Ærø", locale: str = "da"
) -> tuple[str, str, str]:
    """(employee id, page path, the page's HTML) of a new employee who opened their page."""
    employee = await hr_employee(http, name, locale)
    url, _ = await page_link(http, employee)
    page = await http.get(path_of(url))
    assert page.status_code == 200, page.text
    return employee, path_of(url), page.text


async def test_a_page_link_is_signed_expiring_and_only_for_known_employees(
    http: httpx.AsyncClient,
) -> None:
    employee = await hr_employee(http, "Mette Holm")
    url, expires = await page_link(http, employee)
    assert url.startswith("http://go.example.com/me/")
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    token = path_of(url).rsplit("/", 1)[1]
    assert signing.page_employee(token, (PAGE_SECRET,), datetime.now(UTC)) == employee

    unknown = await http.post("/v1/employees/nobody-here/page-links", headers=AUTH)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    keyless = await http.post(f"/v1/employees/{employee}/page-links")
    assert keyless.status_code == 401


async def test_the_page_shows_my_figures_from_attribution(
    http: httpx.AsyncClient, page_attribution: Running
) -> None:
    """The figures on the page are attribution's answer for this employee, in Danish."""
    employee = await hr_employee(http, "Søren Ærø", "da", ambassador=True)
    await send(http, *posted(employee, 12345))
    answer = await my_ripples(
        page_attribution.address, employee, lambda a: a["reach"]["impressions"] == 12345
    )
    url, _ = await page_link(http, employee)
    page = await http.get(path_of(url))
    assert page.status_code == 200
    html = page.text
    assert '<html lang="da">' in html
    assert "Hej Søren Ærø" in html
    assert "Mine tal" in html
    assert shown_figures(html) == expected_figures(answer, "da")
    assert shown_figures(html)[0] == "12.345"  # the reach, in Danish digits
    assert '<td class="n">12.345</td>' in html  # the post's impressions
    assert '<td class="n">210</td>' in html  # its reactions
    assert "Egne ord" in html  # its origin: the employee's own words
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_english_page_with_my_figures(
    http: httpx.AsyncClient, page_attribution: Running
) -> None:
    employee = await hr_employee(http, "Jane Doe", "en")
    answer = await my_ripples(page_attribution.address, employee)  # known: zeros
    url, _ = await page_link(http, employee)
    html = (await http.get(path_of(url))).text
    assert '<html lang="en">' in html
    assert "Hello Jane Doe" in html
    assert "My figures" in html
    assert shown_figures(html) == expected_figures(answer, "en")
    assert 'type="checkbox" value="true">' in html  # not opted out


async def test_no_figures_yet_while_attribution_does_not_know_me(
    page_db: str, page_attribution: Running, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Attribution answers 404 for an employee it has not heard of (here: HR's upsert went
    through a broker attribution does not read): the page says there are no figures yet."""
    from tests.conftest import start_broker, start_service
    from tests.selfservice.conftest import page_env

    lone = start_broker(tmp_path_factory.mktemp("page-lone-broker"))
    running = start_service(
        "ingest", tmp_path_factory.mktemp("page-lone"), lone, DATABASE_URL=page_db,
        **page_env(page_attribution.address),
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=running.address, timeout=15) as client:
            employee = await hr_employee(client, "Jane Doe", "en")
            url, _ = await page_link(client, employee)
            page = await client.get(path_of(url))
            async with httpx.AsyncClient(base_url=page_attribution.address) as attribution:
                unknown = await attribution.get(f"/v1/employees/{employee}/ripples", headers=AUTH)
        assert unknown.status_code == 404
        assert page.status_code == 200
        assert "There are no figures for you yet." in page.text
        assert shown_figures(page.text) == []
    finally:
        running.stop()
        lone.stop()


async def test_the_form_starts_from_hrs_opt_out(http: httpx.AsyncClient) -> None:
    """Saving only another language must not opt an employee HR opted out back in."""
    employee = await hr_employee(http, "Ole Opt", "da", recognition_opt_out=True)
    url, _ = await page_link(http, employee)
    html = (await http.get(path_of(url))).text
    assert 'id="opt_out" name="opt_out" type="checkbox" value="true" checked' in html


async def test_the_page_works_when_attribution_is_down(
    broker: Running, page_db: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.conftest import start_service
    from tests.selfservice.conftest import page_env

    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    running = start_service(
        "ingest", tmp_path_factory.mktemp("page-down"), broker, DATABASE_URL=page_db,
        **page_env(dead),
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=running.address, timeout=15) as client:
            employee = await hr_employee(client, "Ib Ødegaard", "da")
            url, _ = await page_link(client, employee)
            page = await client.get(path_of(url))
        assert page.status_code == 200
        assert "Dine tal kan ikke vises lige nu" in page.text
        assert "Lav mit sporede link" in page.text
    finally:
        running.stop()


async def test_a_tampered_or_expired_link_gets_a_403_page_in_the_employees_language(
    http: httpx.AsyncClient,
) -> None:
    employee = await hr_employee(http, "Søren Ærø", "da")
    url, _ = await page_link(http, employee)
    tampered = path_of(url)[:-2] + ("AA" if not path_of(url).endswith("AA") else "BB")
    refused = await http.get(tampered, headers={"Accept-Language": "en-GB"})
    assert refused.status_code == 403
    assert '<html lang="en">' in refused.text
    assert "not valid" in refused.text
    assert "Søren" not in refused.text

    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = signing.page_token(employee, past, PAGE_SECRET)
    answer = await http.get(f"/me/{expired}", headers={"Accept-Language": "en"})
    assert answer.status_code == 403
    assert '<html lang="da">' in answer.text
    assert "udløbet" in answer.text

    other_purpose = signing.sign(
        FORM, {"employee_id": employee}, past + timedelta(days=1), PAGE_SECRET
    )
    assert (await http.get(f"/me/{other_purpose}")).status_code == 403


async def test_make_my_tracked_link_for_a_job(
    http: httpx.AsyncClient, broker: Running, page_db: str
) -> None:
    job = f"job-{uuid.uuid4().hex[:8]}"
    await send(http, event("job.upserted", {"job_id": job, "title": "Sygeplejerske"}))
    employee, page, html = await opened(http)
    assert f'<option value="{job}">Sygeplejerske</option>' in html
    made = await http.post(
        f"{page}/links",
        data={"form_token": form_token(html), "job_id": job},
        headers={"Origin": "http://go.example.com", "Sec-Fetch-Site": "same-origin"},
    )
    assert made.status_code == 303, made.text
    location = made.headers["location"]
    code = parse_qs(urlsplit(location).query)["link"][0]
    shown = await http.get(location)
    assert f'value="http://go.example.com/r/{code}"' in shown.text
    assert "readonly" in shown.text
    assert 'id="copy" hidden' in shown.text
    assert "Sygeplejerske" in shown.text

    # The same code path as POST /v1/links: stored, announced, and the redirect works.
    found = await read_events(broker.address, "ripples.links", {f"link-created:{code}"})
    ((_, created),) = found.values()
    assert isinstance(created, LinkCreatedEvent)
    assert (created.data.employee_id, created.data.job_id) == (employee, job)
    assert created.data.target_url == f"https://careers.example.com/jobs/{job}"
    follow = await http.get(f"/r/{code}")
    assert follow.status_code == 302
    assert parse_qs(urlsplit(follow.headers["location"]).query)["utm_campaign"] == [job]

    # Another employee's page never shows this link.
    _, other, _ = await opened(http, "Anden Person")
    assert code not in (await http.get(f"{other}?link={code}")).text

    unknown_job = await http.post(
        f"{page}/links", data={"form_token": form_token(html), "job_id": "no-such-job"}
    )
    assert unknown_job.status_code == 422
    assert "Vælg en af de viste stillinger." in unknown_job.text


async def test_forms_refuse_cross_site_requests_and_foreign_form_tokens(
    http: httpx.AsyncClient,
) -> None:
    _, page, html = await opened(http)
    _, _, other_html = await opened(http, "Anden Person")
    body = {"locale": "en", "channel": "none", "address": "", "opt_out": "true"}
    cases = {
        "no form token": ({**body}, {}),
        "another page's form token": ({**body, "form_token": form_token(other_html)}, {}),
        "cross-site origin": (
            {**body, "form_token": form_token(html)},
            {"Origin": "https://evil.example.net"},
        ),
        "cross-site fetch": (
            {**body, "form_token": form_token(html)},
            {"Sec-Fetch-Site": "cross-site"},
        ),
    }
    for case, (data, headers) in cases.items():
        answer = await http.post(f"{page}/preferences", data=data, headers=headers)
        assert answer.status_code == 403, case
        assert "Formularen er udløbet eller ugyldig" in answer.text, case
    json_body = await http.post(
        f"{page}/preferences", json={**body, "form_token": form_token(html)}
    )
    assert json_body.status_code == 415


async def test_preferences_are_published_and_shown(
    http: httpx.AsyncClient, broker: Running
) -> None:
    employee, page, html = await opened(http)
    saved = await http.post(
        f"{page}/preferences",
        data={
            "form_token": form_token(html),
            "locale": "en",
            "channel": "slack",
            "address": "U024BE7LH",
            "opt_out": "true",
        },
    )
    assert saved.status_code == 303, saved.text
    (published,) = await wait_for(
        broker.address,
        "ripples.employees",
        lambda e: isinstance(e, EmployeePreferencesEvent) and e.data.employee_id == employee,
    )
    assert isinstance(published, EmployeePreferencesEvent)
    assert published.data.locale == "en"
    assert published.data.notify is not None
    assert (published.data.notify.channel, published.data.notify.address) == ("slack", "U024BE7LH")
    assert published.data.recognition_opt_out is True
    shown = (await http.get(saved.headers["location"])).text
    assert '<html lang="en">' in shown
    assert "Your preferences are saved." in shown
    assert '<option value="slack" selected>' in shown
    assert 'value="U024BE7LH"' in shown
    assert 'id="opt_out" name="opt_out" type="checkbox" value="true" checked' in shown

    missing = await http.post(
        f"{page}/preferences",
        data={"form_token": form_token(shown), "locale": "en", "channel": "email", "address": ""},
    )
    assert missing.status_code == 422
    assert 'aria-invalid="true" aria-describedby="address-error"' in missing.text


async def test_register_a_post_needs_a_connection(http: httpx.AsyncClient) -> None:
    _, page, html = await opened(http)
    url = "https://www.linkedin.com/feed/update/urn:li:share:7094637247487995904/"
    answer = await http.post(f"{page}/posts", data={"form_token": form_token(html), "url": url})
    assert answer.status_code == 409
    assert "Forbind LinkedIn først." in answer.text
    bad = await http.post(
        f"{page}/posts", data={"form_token": form_token(html), "url": "https://example.com/x"}
    )
    assert bad.status_code == 422
    connect = await http.post(f"{page}/linkedin", data={"form_token": form_token(html)})
    assert connect.status_code == 303  # the connect flow is not configured here: a notice
    assert "notice=linkedin_unavailable" in connect.headers["location"]


async def test_the_overview_as_json_html_and_through_a_share_link(
    http: httpx.AsyncClient, page_db: str
) -> None:
    employee, page, _html = await opened(http, "Overblik Olsen")
    keyless = await http.get("/v1/overview")
    assert keyless.status_code == 401
    document = (await http.get("/v1/overview", headers=AUTH)).json()
    (row,) = [r for r in document["employees"] if r["employee_id"] == employee]
    assert row["display_name"] == "Overblik Olsen"
    assert row["linkedin"] == {"status": "none", "expires_at": None}
    assert row["page_links"] == {"sent": 1, "opened": 1}
    assert row["links"] == {"total": 0, "this_month": 0}
    assert row["preferences"] == {"channel": None, "opt_out": None}

    as_html = await http.get(
        "/v1/overview", params={"locale": "da"}, headers={**AUTH, "Accept": "text/html"}
    )
    assert as_html.headers["content-type"].startswith("text/html")
    assert "Programmets overblik" in as_html.text
    assert "Overblik Olsen" in as_html.text
    bad = await http.get("/v1/overview", params={"locale": "xx"}, headers=AUTH)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "locale"

    link = await http.post("/v1/overview/links", json={"locale": "en"}, headers=AUTH)
    assert link.status_code == 201, link.text
    shared = await http.get(path_of(link.json()["url"]))
    assert shared.status_code == 200
    assert "Programme overview" in shared.text
    assert "Overblik Olsen" in shared.text
    expired = signing.sign(OVERVIEW, {}, datetime.now(UTC) - timedelta(seconds=1), PAGE_SECRET)
    assert (await http.get(f"/overview/{expired}")).status_code == 403
    # A page token opens no overview, an overview token no page.
    token = page.rsplit("/", 1)[1]
    assert (await http.get(f"/overview/{token}")).status_code == 403
    assert (
        await http.get(f"/me/{path_of(link.json()['url']).rsplit('/', 1)[1]}")
    ).status_code == 403


async def test_a_removed_employee_loses_the_page_and_their_rows(
    http: httpx.AsyncClient, page_db: str
) -> None:
    employee, page, _ = await opened(http, "Fjernet Fjeldsted")
    await send(http, event("employee.removed", {"employee_id": employee}, "2026-07-01T08:00:00Z"))
    assert (await http.get(page)).status_code == 403
    conn = await asyncpg.connect(page_db)
    try:
        for table in ("ingest_people", "ingest_preferences", "ingest_page_links"):
            count = await conn.fetchval(
                f"select count(*) from {table} where employee_id = $1",  # noqa: S608
                employee,
            )
            assert count == 0, table
    finally:
        await conn.close()


async def test_without_the_database_a_person_gets_a_page_not_a_problem(
    broker: Running, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.conftest import free_port, start_service
    from tests.selfservice.conftest import page_env

    running = start_service(
        "ingest",
        tmp_path_factory.mktemp("page-nodb"),
        broker,
        wait_ready=False,
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        **page_env("http://127.0.0.1:9"),
    )
    try:
        async with httpx.AsyncClient(base_url=running.address, timeout=15) as client:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/livez")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            token = signing.page_token("emp-1", datetime.now(UTC) + timedelta(days=1), PAGE_SECRET)
            page = await client.get(f"/me/{token}", headers={"Accept-Language": "da"})
            assert page.status_code == 503
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["retry-after"] == "5"
            assert "Prøv igen om et øjeblik." in page.text
            api = await client.post("/v1/employees/emp-1/page-links", headers=AUTH)
            assert api.status_code == 503
            assert api.headers["content-type"] == "application/problem+json"
    finally:
        running.stop()


async def test_the_demo_prints_an_ambassadors_page_link(
    http: httpx.AsyncClient, page_ingest: Running, page_attribution: Running
) -> None:
    """`make demo`'s line with one ambassador's page (ripples/demo/run.py page_line), made and
    opened through the real ingest with the figures from attribution."""
    from ripples.demo.run import page_line

    employee = await hr_employee(http, "Ane Ambassadør", "da", ambassador=True)
    await my_ripples(page_attribution.address, employee)
    line = await page_line(page_ingest.address, API_KEYS[0], employee, "Ane Ambassadør")
    assert line.startswith("Ane Ambassadør's own page, with their figures (valid 30 days): ")
    url = line.rsplit(" ", 1)[1]
    assert url.startswith("http://go.example.com/me/")
    assert (await http.get(path_of(url))).status_code == 200
    unknown = await page_line(page_ingest.address, API_KEYS[0], "nobody-here", "Nobody")
    assert unknown == "(no page link for Nobody: ingest answered 404)"
