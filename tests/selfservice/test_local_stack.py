"""`ripples up` gives ingest and the notifier the employee's page (CONTRACT §11): a generated
local page-link secret shared by both, attribution's local address and the stack's key for the
figures, and ingest's own address as the base of the link under the notifier's messages —
read back through the services' own settings loaders. (The page itself on the real services:
tests/selfservice/test_page.py; the demo's page line there too.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ripples import stack
from services.ingest.settings import IngestSettings
from services.notifier.settings import NotifierSettings
from shared import signing
from shared.settings import load


def test_up_wires_the_page_for_ingest_and_the_notifier(tmp_path: Path) -> None:
    built = stack.build(stack.State(tmp_path / "state"), {"INGEST_PORT": "18080"})
    addresses = {s.name: s.address for s in built.services}
    ingest = load(IngestSettings, "INGEST_", built.env)
    notifier = load(NotifierSettings, "NOTIFIER_", built.env)

    assert ingest.public_base_url == addresses["ingest"] == "http://127.0.0.1:18080"
    assert notifier.page_base_url == ingest.public_base_url
    assert ingest.attribution_url == addresses["attribution"]
    assert ingest.attribution_api_key == built.api_key  # attribution accepts the stack's key
    assert ingest.job_url_template.replace("{job_id}", "x").startswith("https://careers.")
    # one generated secret: what the notifier signs, ingest verifies
    assert ingest.page_link_secrets
    assert notifier.page_link_secrets == ingest.page_link_secrets
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    token = signing.page_token("emp-1", expires, notifier.page_link_secrets[0])
    assert signing.page_employee(token, ingest.page_link_secrets, datetime.now(UTC)) == "emp-1"
    # kept for the next `up` (links sent stay valid), and never the other stack's
    again = stack.build(stack.State(tmp_path / "state"), {})
    assert again.env["INGEST_PAGE_LINK_SECRETS"] == built.env["INGEST_PAGE_LINK_SECRETS"]
    other = stack.build(stack.State(tmp_path / "other"), {})
    assert other.env["INGEST_PAGE_LINK_SECRETS"] != built.env["INGEST_PAGE_LINK_SECRETS"]


def test_the_environment_wins(tmp_path: Path) -> None:
    built = stack.build(
        stack.State(tmp_path),
        {
            "INGEST_PAGE_LINK_SECRETS": "mine",
            "INGEST_PUBLIC_BASE_URL": "https://go.example.com",
            "NOTIFIER_PAGE_BASE_URL": "https://go.example.com",
        },
    )
    assert built.env["INGEST_PAGE_LINK_SECRETS"] == built.env["NOTIFIER_PAGE_LINK_SECRETS"]
    assert built.env["NOTIFIER_PAGE_LINK_SECRETS"] == "mine"
    assert built.env["NOTIFIER_PAGE_BASE_URL"] == "https://go.example.com"
