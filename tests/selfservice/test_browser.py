"""Issue 21 "Done when", as a person does it, in a real browser (Debian's chromium driven by
chromedriver through selenium, both installed by `make tools` and the `dev` extra) on the real
stack: a broker, PostgreSQL, and the ingest, attribution and notifier processes.

An employee opens their page (Danish), makes a tracked link for a job with the keyboard,
copies it, follows it (the redirect lands on the careers site with `ripples_ref`, and the click
lands in attribution's database), switches to Slack, opts out and to English; then HR's next
`employee.upserted` arrives with other values and the notifier still holds Slack and the
opt-out (its effective settings, services/notifier/store.employees); the overview, opened
through a share link, shows the employee with the page link opened and the link made — in
English and in Danish. Screenshots of each language are checked for being real pictures;
RIPPLES_WRITE_SCREENSHOTS=docs/images writes the ones the README shows.

The figures on the page are the attribution process's own (its GET
/v1/employees/{employee_id}/ripples): the employee's post reaches it through the broker, and
the page shows exactly the route's answer for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import Select, WebDriverWait

from services.notifier import store as notifier_store
from tests.conftest import AUTH, Running, fresh_database, start_broker, start_service
from tests.selfservice.conftest import (
    event,
    expected_figures,
    hr_employee,
    my_ripples,
    page_env,
    page_link,
    posted,
    send,
)

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="chromium or chromium-driver missing: run 'make tools' as root",
    ),
]

FAST = {
    "KAFKA_SESSION_TIMEOUT_S": "6",
    "KAFKA_HEARTBEAT_INTERVAL_S": "1",
    "KAFKA_REBALANCE_TIMEOUT_S": "6",
    "NOTIFIER_DISPATCH_INTERVAL_S": "0.2",
}
SLACK = "https://hooks.slack.com/services/T0001/B0001/abcdefabcdef"


class Careers:
    """The careers site a job link leads to: a small page per job on 127.0.0.1."""

    def __init__(self) -> None:
        self.paths: list[str] = []

        seen = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                body = b"<!doctype html><html lang='da'><title>Job</title><h1>Stilling</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Stack:
    def __init__(
        self, ingest: Running, attribution: Running, databases: dict[str, str], careers: Careers
    ) -> None:
        self.ingest = ingest
        self.attribution = attribution
        self.databases = databases
        self.careers = careers


@pytest.fixture(scope="module")
async def stack(
    postgres: Running, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    broker = start_broker(tmp_path_factory.mktemp("browser-broker"))
    careers = Careers()
    started: list[Running] = []
    async with contextlib.AsyncExitStack() as exits:
        databases = {
            name: await exits.enter_async_context(fresh_database(postgres, f"browser_{name}"))
            for name in ("ingest", "attribution", "notifier")
        }
        try:
            env = page_env("") | FAST  # attribution's address: known once it started
            env["INGEST_JOB_URL_TEMPLATE"] = careers.address + "/jobs/{job_id}"
            env["INGEST_LINK_ALLOWED_HOSTS"] = "127.0.0.1"
            # started side by side, ingest first: the consumers ask it for the keys of
            # sealed records (tests/conftest.py start_service)
            for name in ("ingest", "attribution", "notifier"):
                started.append(
                    start_service(
                        name,
                        tmp_path_factory.mktemp(f"browser-{name}"),
                        broker,
                        wait_ready=False,
                        DATABASE_URL=databases[name],
                        **env,
                    )
                )
            ingest, attribution = started[0], started[1]
            # The links and the page are under the address the browser reaches (known once
            # the port is chosen); the figures come from the attribution process.
            ingest.stop()
            ingest.env["INGEST_PUBLIC_BASE_URL"] = ingest.address
            ingest.env["INGEST_ATTRIBUTION_URL"] = attribution.address
            ingest.start(wait_ready=False)
            for service in started:
                service.component.wait_ready(60)
            yield Stack(ingest, attribution, databases, careers)
        finally:
            for service in started:
                service.stop()
            careers.stop()
            broker.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1000,1500",
        "--lang=da-DK",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def shoot(browser: webdriver.Chrome, tmp: Path, name: str) -> Path:
    """A screenshot of the whole page as a small palette PNG; written to
    $RIPPLES_WRITE_SCREENSHOTS too when set."""
    browser.set_window_size(1000, 400)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1000, min(max(int(height) + 160, 400), 2400))
    browser.execute_script("window.scrollTo(0, 0)")
    raw = tmp / f"{name}-raw.png"
    browser.save_screenshot(str(raw))
    picture = Image.open(raw).convert("RGB").quantize(colors=64)
    out = tmp / f"{name}.png"
    picture.save(out, optimize=True)
    target = os.environ.get("RIPPLES_WRITE_SCREENSHOTS")
    if target:
        shutil.copy(out, Path(target) / f"{name}.png")
    with Image.open(out) as check:
        assert check.size[0] >= 900
        assert len(check.convert("RGB").getcolors(maxcolors=4096) or []) > 4  # not blank
    browser.set_window_size(1000, 1500)
    return out


async def until(check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail("not seen in time")
        await asyncio.sleep(0.3)


async def test_an_employee_uses_their_page_and_the_overview_shows_it(
    stack: Stack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=stack.ingest.address, timeout=15) as http:
        job = f"job-{uuid.uuid4().hex[:6]}"
        await send(http, event("job.upserted", {"job_id": job, "title": "Sygeplejerske"}))
        employee = await hr_employee(
            http,
            "Søren Ærø",
            "da",
            ambassador=True,
            notify={"channel": "email", "address": "soren@example.com"},
        )
        await send(http, *posted(employee, 23456))
        answer = await my_ripples(
            stack.attribution.address, employee, lambda a: a["reach"]["impressions"] == 23456
        )
        url, _ = await page_link(http, employee)

        # The page, in Danish, with attribution's figures for this employee.
        browser.get(url)
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "da"
        assert browser.find_element(By.TAG_NAME, "h1").text == "Hej Søren Ærø"
        section = browser.find_element(By.ID, "figures-title").find_element(By.XPATH, "..")
        cards = [e.text for e in section.find_elements(By.CSS_SELECTOR, "dd.figure")]
        rings = [e.text for e in section.find_elements(By.CSS_SELECTOR, "ul li")]
        assert cards + rings == expected_figures(answer, "da")
        assert cards[0] == "23.456"
        shoot(browser, tmp_path, "page-da")

        # Make my tracked link, with the keyboard only: the job's label, then Tab, Enter.
        label = browser.find_element(By.CSS_SELECTOR, "label[for=job_id]")
        assert label.text == "Stilling"
        Select(browser.find_element(By.ID, "job_id")).select_by_value(job)
        browser.find_element(By.ID, "job_id").send_keys(Keys.TAB)
        active = browser.switch_to.active_element
        assert active.text == "Lav link"
        active.send_keys(Keys.ENTER)
        field = WebDriverWait(browser, 10).until(
            shown.presence_of_element_located((By.ID, "link-url")), browser.page_source
        )
        link = field.get_attribute("value") or ""
        assert link.startswith(f"{stack.ingest.address}/r/")
        assert field.get_attribute("readonly") is not None
        copy = browser.find_element(By.ID, "copy")
        assert copy.is_displayed()  # the script showed it (progressive enhancement)
        copy.click()
        assert copy.text == "Kopieret"
        assert link in (browser.find_element(By.ID, "paste").get_attribute("value") or "")
        shoot(browser, tmp_path, "page-link-da")
        page = browser.current_url

        # Follow it: the redirect to the careers site, the click in attribution.
        code = link.rsplit("/", 1)[1]
        browser.get(link)
        landed = urlsplit(browser.current_url)
        assert landed.path == f"/jobs/{job}"
        assert parse_qs(landed.query)["ripples_ref"] == [code]

        async def clicked() -> bool:
            conn = await asyncpg.connect(stack.databases["attribution"])
            try:
                return bool(
                    await conn.fetchval(
                        "select count(*) from attribution.clicks where link_code = $1", code
                    )
                )
            finally:
                await conn.close()

        await until(clicked)

        # My preferences: Slack, opted out, English.
        browser.get(page)
        Select(browser.find_element(By.ID, "channel")).select_by_value("slack")
        address = browser.find_element(By.ID, "address")
        address.clear()
        address.send_keys(SLACK)
        browser.find_element(By.ID, "opt_out").click()
        Select(browser.find_element(By.ID, "locale")).select_by_value("en")
        browser.find_element(By.ID, "address").submit()
        WebDriverWait(browser, 10).until(shown.url_contains("notice=saved"))
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        assert "Your preferences are saved." in browser.find_element(By.TAG_NAME, "main").text
        assert browser.find_element(By.ID, "opt_out").is_selected()
        shoot(browser, tmp_path, "page-en")

        # HR's next sync, later, with other values: the preferences stay.
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        await hr_employee(
            http,
            "Søren Ærø Madsen",
            "da",
            time=now,
            employee_id=employee,
            ambassador=True,
            notify={"channel": "email", "address": "soren@example.com"},
            recognition_opt_out=False,
        )

        async def settled() -> notifier_store.Employee | None:
            pool = await asyncpg.create_pool(stack.databases["notifier"], min_size=1, max_size=1)
            try:
                async with pool.acquire() as conn:
                    found = (await notifier_store.employees(conn, [employee])).get(employee)
            finally:
                await pool.close()
            if found is None or found.display_name != "Søren Ærø Madsen":
                return None  # the HR upsert has not arrived yet
            return found

        person = await until(settled, 45)
        assert (person.channel, person.address, person.opt_out) == ("slack", SLACK, True)
        assert person.locale == "en"
        browser.get(page)
        assert browser.find_element(By.ID, "opt_out").is_selected()
        chosen = Select(browser.find_element(By.ID, "channel")).first_selected_option
        assert chosen.get_attribute("value") == "slack"

        # The overview, through a share link, in English and in Danish.
        for locale, heading in (("en", "Programme overview"), ("da", "Programmets overblik")):
            made = await http.post("/v1/overview/links", json={"locale": locale}, headers=AUTH)
            assert made.status_code == 201, made.text
            browser.get(made.json()["url"])
            assert browser.find_element(By.TAG_NAME, "h1").text == heading
            row = browser.find_element(
                By.XPATH, "//tr[th[@scope='row' and text()='Søren Ærø Madsen']]"
            )
            cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            assert cells[0] in ("yes", "ja")
            assert cells[3] == "1 / 1"  # the page link sent and opened
            assert cells[5] == "1 / 1"  # the link made, this month
            assert cells[6] in (  # Slack and the opt-out, as the employee set them
                "Slack, opted out of recognitions",
                "Slack, frameldt anerkendelser",
            )
            shoot(browser, tmp_path, f"overview-{locale}")
    assert time.monotonic() - started < 90
