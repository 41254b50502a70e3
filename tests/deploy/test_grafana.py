"""Grafana dashboards as code and their provisioning: the committed JSON is what the
generator makes, uids are stable, panels use the datasource variables whose defaults are
the provisioned datasources' fixed uids, and the dashboards contain what their readers need."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest
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
        "ripples-advocacy-results-da": "ripples-advocacy-results-da.json",
        "ripples-pipeline-health": "ripples-pipeline-health.json",
        "ripples-pipeline-health-da": "ripples-pipeline-health-da.json",
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


NEEDED = {
    "ripples-advocacy-results.json": (
        "Impressions per day",
        "Reach ratio",
        "Applicants credited per ring",
        "Hires credited per ring",
        "Top sharers",
        "Earned media value",
        "Reach ratio per week, with its interval",
        "Own words vs prepared posts per week",
        "Spillover lift per week",
        "Employee posts by origin",
        "Drivers (Spearman",
        "Applicants by job family (hard-to-recruit first)",
        "Ripple network",
    ),
    "ripples-advocacy-results-da.json": (
        "Visninger pr. dag",
        "Rækkeviddeforhold",
        "Ansøgere krediteret pr. ring",
        "Ansættelser krediteret pr. ring",
        "Flest delinger",
        "Værdi af omtale",
        "Rækkeviddeforhold pr. uge med interval",
        "Egne ord mod forberedte opslag pr. uge",
        "Spredningens løft pr. uge",
        "Medarbejderopslag efter oprindelse",
        "Drivkræfter (Spearman",
        "Ansøgere efter jobfamilie (svære at rekruttere først)",
        "Ringenes netværk",
    ),
}


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_advocacy_results_has_what_communication_people_read(name: str) -> None:
    dashboard = dashboards()[name]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for panel in panels(dashboard):
        by_type.setdefault(panel["type"], []).append(panel)
    text = json.dumps(dashboard)
    for needed in NEEDED[name]:
        assert any(needed in t for t in titles(name)), needed
    (graph,) = by_type["nodeGraph"]
    assert [t["refId"] for t in graph["targets"]] == ["nodes", "edges"]
    assert "attribution.ripple_nodes" in graph["targets"][0]["rawSql"]
    assert "attribution.ripple_edges" in graph["targets"][1]["rawSql"]
    assert "$model" in text, "credit follows the chosen model"
    (top,) = [p for p in by_type["table"] if "top_sharers" in p["targets"][0]["rawSql"] or
              "sharer_figures_per_day" in p["targets"][0]["rawSql"]]  # fmt: skip
    assert "$__timeFilter" in top["targets"][0]["rawSql"], "top sharers follow the time range"
    assert "$model" in top["targets"][0]["rawSql"], "and the credit model"
    bands = [p for p in by_type["timeseries"] if "weekly_evidence" in p["targets"][0]["rawSql"]]
    assert len(bands) == 4
    for band in bands:
        high = [o for o in band["fieldConfig"]["overrides"] if o["matcher"]["options"] == "high"]
        fill = {p["id"]: p["value"] for o in high for p in o["properties"]}
        low = next(o for o in band["fieldConfig"]["overrides"] if o["matcher"]["options"] == "low"
                   and o["properties"][0]["id"] == "displayName")  # fmt: skip
        assert fill["custom.fillBelowTo"] == low["properties"][0]["value"], "a band, low to high"


PAIRS = [
    ("ripples-advocacy-results.json", "ripples-advocacy-results-da.json"),
    ("ripples-pipeline-health.json", "ripples-pipeline-health-da.json"),
]


@pytest.mark.parametrize(("english", "danish"), PAIRS)
def test_the_two_languages_are_one_dashboard(english: str, danish: str) -> None:
    """Generated from one source: the same panels, queries, layout and variables, every
    title, description, unit and label in the other language; each copy links to the other."""
    en, da = dashboards()[english], dashboards()[danish]

    def shape(d: dict[str, Any]) -> list[Any]:
        return [(p["type"], p["gridPos"], [t.get("refId") for t in p.get("targets", [])])
                for p in panels(d)]  # fmt: skip

    assert shape(en) == shape(da)
    assert en["title"] != da["title"]
    same_sql = {"ripple_nodes"}  # the node graph's subtitles are in its query
    services = ("ingest", "attribution", "notifier")
    for a, b in zip(panels(en), panels(da), strict=True):
        if a["title"] not in services:  # the pipeline rows named after a service
            assert a["title"] != b["title"], a["title"]
        if a.get("description"):
            assert a["description"] != b["description"], a["title"]
        for x, y in zip(a.get("targets", []), b.get("targets", []), strict=True):
            if "rawSql" in x and not any(n in x["rawSql"] for n in same_sql):
                assert x["rawSql"] == y["rawSql"]
            assert x.get("expr") == y.get("expr")
        if a["type"] == "row":
            continue
        units = (a["fieldConfig"]["defaults"].get("unit"), b["fieldConfig"]["defaults"].get("unit"))
        if units[0] and units[0].startswith("suffix:"):
            assert units[0] != units[1], f"{a['title']}: unit {units[0]} not translated"
        else:
            assert units[0] == units[1]
    assert (en["tags"], da["tags"]) == (["ripples", "en"], ["ripples", "da"])
    assert en["links"][0]["url"] == f"/d/{da['uid']}"
    assert da["links"][0]["url"] == f"/d/{en['uid']}"
    assert en["links"][0]["keepTime"]
    assert en["links"][0]["includeVars"]


def test_danish_values_and_labels() -> None:
    en = dashboards()["ripples-advocacy-results.json"]
    da = dashboards()["ripples-advocacy-results-da.json"]
    assert "uafhængig" in json.dumps(da, ensure_ascii=False)
    assert "uafhængig" not in json.dumps(en, ensure_ascii=False)
    labels = [[v.get("label") for v in d["templating"]["list"]] for d in (en, da)]
    assert labels[0][1:] != labels[1][1:]


def test_a_pipeline_title_without_translation_fails_the_build() -> None:
    module = generator()
    module.PIPELINE_DA.pop("Services up")
    with pytest.raises(KeyError, match="Services up"):
        module.pipeline_health_da()


@pytest.mark.parametrize(
    ("name", "availability"),
    [("ripples-pipeline-health.json", "Availability"),
     ("ripples-pipeline-health-da.json", "Tilgængelighed")],
)  # fmt: skip
def test_pipeline_health_has_a_red_row_per_service(name: str, availability: str) -> None:
    dashboard = dashboards()[name]
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows[:4] == [availability, "ingest", "attribution", "notifier"]
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
