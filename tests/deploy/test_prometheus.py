"""Prometheus configuration and alert rules: promtool checks them and runs their unit tests;
every alert is named, labelled and documented the same way."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.deploy.pydeps import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
RUNBOOK = ROOT / "deploy" / "RUNBOOK.md"
RUNBOOK_BASE_URL = "https://github.com/ripples/ripples/blob/main/deploy/RUNBOOK.md"


def alerts() -> list[dict[str, object]]:
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_config(promtool: str) -> None:
    result = run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_can_fail(promtool: str, tmp_path: Path) -> None:
    """The same unit tests against rules with a threshold moved: promtool must report it."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in RULES:
        text = path.read_text().replace("> 10000", "> 50000")
        (tmp_path / "rules" / path.name).write_text(text)
    for path in UNIT_TESTS:
        (tmp_path / "tests" / path.name).write_text(path.read_text())
    result = run(promtool, "test", "rules", *(str(tmp_path / "tests" / p.name) for p in UNIT_TESTS))
    assert result.returncode != 0
    assert "RipplesAttributionConsumerLagHigh" in result.stdout + result.stderr


def test_the_required_alerts_exist() -> None:
    names = {str(a["alert"]) for a in alerts()}
    assert {
        "RipplesIngestErrorRatioHigh",
        "RipplesAttributionConsumerLagHigh",
        "RipplesAttributionProcessingDelayHigh",
        "RipplesDeadLettersAppearing",
        "RipplesNotifierDeliveryFailureRatioHigh",
        "RipplesServiceDown",
    } <= names


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the RUNBOOK headings."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_alert_is_named_labelled_and_documented() -> None:
    anchors = runbook_anchors()
    for alert in alerts():
        name = str(alert["alert"])
        assert re.fullmatch(r"Ripples(?:[A-Z][a-z0-9]+)+", name), f"{name}: Ripples + CamelCase"
        labels = alert["labels"]
        assert isinstance(labels, dict)
        assert labels.get("severity") in {"critical", "warning"}, name
        annotations = alert["annotations"]
        assert isinstance(annotations, dict)
        assert {"summary", "description", "runbook_url"} <= annotations.keys(), name
        url = str(annotations["runbook_url"])
        base, _, anchor = url.partition("#")
        # absolute (a link wherever the alert lands): the repository's deploy/RUNBOOK.md
        assert base == RUNBOOK_BASE_URL, f"{name}: runbook_url must point to RUNBOOK"
        assert base.endswith("/" + str(RUNBOOK.relative_to(ROOT)))
        assert anchor == name.lower(), f"{name}: runbook_url anchor"
        assert anchor in anchors, f"deploy/RUNBOOK.md has no section {name}"
        section = RUNBOOK.read_text().split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        for part in ("What it means", "How to check", "How to fix"):
            assert part in section, f"RUNBOOK {name}: missing '{part}'"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {str(a["alert"]) for a in alerts()}
    assert names - fires == set(), "alerts without a test where they fire"
    assert names - quiet == set(), "alerts without a test where they stay quiet"


def test_compose_scrape_targets_are_the_services() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for job in config["scrape_configs"]:
        if job["job_name"] == "prometheus":
            continue
        (target,) = [t for c in job["static_configs"] for t in c["targets"]]
        host, port = target.split(":")
        assert host == job["job_name"]
        assert host in compose
        assert any(p.endswith(f":{port}") for p in compose[host]["ports"])
        assert compose[host]["environment"][f"{host.upper()}_PORT"] == port
