"""Every query the deployment ships: PromQL of the dashboards and of the alert rules, SQL of
the dashboards' PostgreSQL panels; and how to turn Grafana's macros into plain queries."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.deploy.pydeps import ROOT

DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules"
SERVICE_PREFIXES = ("ingest", "attribution", "notifier")
METRIC = re.compile(r"\b((?:" + "|".join(SERVICE_PREFIXES) + r")_[a-z0-9_]+)\b")


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def targets(kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(dashboard file, panel title, target) of every target whose datasource type is kind."""
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == kind:
                    yield name, panel["title"], target


def dashboard_promql() -> list[str]:
    return [t["expr"] for _, _, t in targets("prometheus")]


def rule_promql() -> list[str]:
    return [
        rule["expr"]
        for path in sorted(RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def plain_promql(expr: str) -> str:
    """Grafana's interval variables replaced by what Grafana would put there."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
    )


def metric_names(expr: str) -> set[str]:
    """Names of the services' metrics an expression selects (the ``<service>_`` prefix is
    reserved for metric names, so every such word is one)."""
    return set(METRIC.findall(expr))


def dashboard_sql() -> list[tuple[str, str]]:
    return [(title, t["rawSql"]) for _, title, t in targets("grafana-postgresql-datasource")]


def plain_sql(sql: str, model: str = "last_touch") -> str:
    """Grafana's PostgreSQL macros and the dashboard variables replaced by literal SQL."""
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        r"\1 between '2000-01-01T00:00:00Z' and '2100-01-01T00:00:00Z'",
        sql,
    )
    sql = sql.replace("$__timeFrom()", "'2000-01-01T00:00:00Z'").replace(
        "$__timeTo()", "'2100-01-01T00:00:00Z'"
    )
    sql = sql.replace("$model", model).replace("$cpm", "220").replace("$cpc", "40")
    assert "$" not in sql, f"unhandled Grafana macro in {sql}"
    return sql
