"""Grafana dashboards as code and their provisioning: the committed JSON is what the
generator makes, uids are stable, panels use the datasource variables whose defaults are
the provisioned datasources' fixed uids, and the dashboards contain what their readers need."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import yaml

from tests.deploy.pydeps import ROOT
from tests.deploy.queries import DASHBOARDS, dashboards, panels

GRAFANA = ROOT / "deploy" / "grafana"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ripples_grafana", GRAFANA / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "ripples.yml").read_text())
    return {d["uid"]: d for d in config["datasources"]}


def test_committed_json_is_the_generated_json() -> None:
    module = generator()
    assert set(module.DASHBOARDS) == {p.name for p in DASHBOARDS.glob("*.json")}
    for name, build in module.DASHBOARDS.items():
        assert (DASHBOARDS / name).read_text() == module.render(build), (
            f"{name} is stale: run python deploy/grafana/generate.py"
        )


def test_committed_configmaps_are_the_generated_ones() -> None:
    module = generator()
    assert module.CONFIGMAPS.read_text() == module.configmaps(), (
        "deploy/k8s/base/grafana-dashboards.yaml is stale: run python deploy/grafana/generate.py"
    )
    docs = [d for d in yaml.safe_load_all(module.CONFIGMAPS.read_text()) if d]
    assert {n: t for d in docs for n, t in d["data"].items()} == {
        p.name: p.read_text() for p in DASHBOARDS.glob("*.json")
    }


def test_uids_titles_and_layout() -> None:
    uids = {d["uid"]: name for name, d in dashboards().items()}
    assert uids == {
        "ripples-advocacy-results": "ripples-advocacy-results.json",
        "ripples-pipeline-health": "ripples-pipeline-health.json",
    }
    for dashboard in dashboards().values():
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), "panel ids must be unique"
        for panel in panels(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24
            assert panel["title"]


def test_panels_use_datasource_variables_defaulting_to_fixed_uids() -> None:
    datasources = provisioned_datasources()
    by_type = {d["type"]: uid for uid, d in datasources.items()}
    assert set(by_type) == {"prometheus", "grafana-postgresql-datasource"}
    for name, dashboard in dashboards().items():
        variables = {
            v["name"]: v for v in dashboard["templating"]["list"] if v["type"] == "datasource"
        }
        assert variables, f"{name}: needs a datasource variable"
        for variable in variables.values():
            assert variable["current"]["value"] == by_type[variable["query"]]
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            for target in [panel, *panel["targets"]]:
                source = target["datasource"]
                assert source["uid"].startswith("${"), f"{name}/{panel['title']}: fixed uid"
                variable = variables[source["uid"][2:-1]]
                assert variable["query"] == source["type"]


def test_provisioning_matches_compose() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    grafana = compose["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if v.startswith(".")}
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "ripples.yml").read_text()
    )
    (provider,) = providers["providers"]
    path = provider["options"]["path"]
    assert (ROOT / mounts[path]).resolve() == DASHBOARDS
    assert (ROOT / mounts["/etc/grafana/provisioning"]).resolve() == GRAFANA / "provisioning"
    datasources = provisioned_datasources()
    prometheus = datasources["ripples-prometheus"]
    assert prometheus["url"] == "${PROMETHEUS_URL}"
    assert grafana["environment"]["PROMETHEUS_URL"] == "http://prometheus:9090"
    postgres = datasources["ripples-postgres"]
    assert postgres["url"] == "${POSTGRES_HOST}"
    assert grafana["environment"]["POSTGRES_HOST"] == "postgres:5432"
    secret = postgres["secureJsonData"]["password"]
    # Grafana's read-only role (services/attribution/migrations/0090_roles.sql)
    assert postgres["user"] == "ripples_grafana"
    assert secret == "$__file{/run/secrets/grafana_database_password}"
    assert "grafana_database_password" in grafana["secrets"]


def titles(name: str) -> list[str]:
    return [p["title"] for p in panels(dashboards()[name])]


def test_advocacy_results_has_what_communication_people_read() -> None:
    dashboard = dashboards()["ripples-advocacy-results.json"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for panel in panels(dashboard):
        by_type.setdefault(panel["type"], []).append(panel)
    text = json.dumps(dashboard)
    for needed in (
        "Impressions per day",
        "Reach ratio",
        "Applicants credited per ring",
        "Hires credited per ring",
        "Top sharers",
        "Earned media value",
    ):
        assert any(needed in t for t in titles("ripples-advocacy-results.json")), needed
    (graph,) = by_type["nodeGraph"]
    assert [t["refId"] for t in graph["targets"]] == ["nodes", "edges"]
    assert "attribution.ripple_nodes" in graph["targets"][0]["rawSql"]
    assert "attribution.ripple_edges" in graph["targets"][1]["rawSql"]
    assert "$model" in text, "credit follows the chosen model"


def test_pipeline_health_has_a_red_row_per_service() -> None:
    dashboard = dashboards()["ripples-pipeline-health.json"]
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows[:4] == ["Availability", "ingest", "attribution", "notifier"]
    for service in ("ingest", "attribution", "notifier"):
        exprs = " ".join(
            t["expr"]
            for p in panels(dashboard)
            if p["title"].startswith(f"{service}:")
            for t in p["targets"]
        )
        assert f"{service}_http_requests_total" in exprs
        assert f"{service}_http_request_duration_seconds_bucket" in exprs
        assert 'status=~"5.."' in exprs
    text = json.dumps(dashboard)
    for metric in (
        "attribution_consumer_lag_messages",
        "notifier_consumer_lag_messages",
        "attribution_processing_delay_seconds_bucket",
        "attribution_dead_letters_total",
        "notifier_dead_letters_total",
        "notifier_deliveries_total",
        # the connectors (alerts in ripples.connectors)
        "ingest_webhook_deliveries_total",
        "ingest_linkedin_members_skipped_total",
        "ingest_linkedin_last_poll_timestamp_seconds",
        "ingest_clicks_dropped_total",
    ):
        assert metric in text


def test_sql_lives_in_one_place() -> None:
    module = generator()
    shipped = {
        t["rawSql"]
        for d in dashboards().values()
        for p in panels(d)
        for t in p.get("targets", [])
        if "rawSql" in t
    }
    assert shipped == {sql.strip() for sql in module.SQL.values()}
    for sql in shipped:
        used = {v for v in module.VIEWS if v in sql}
        assert used, f"every SQL panel reads the reporting views: {sql}"


def test_dashboard_json_is_importable() -> None:
    for path in DASHBOARDS.glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["schemaVersion"] >= 36
        assert "id" not in dashboard, "no database id in a provisioned dashboard"
