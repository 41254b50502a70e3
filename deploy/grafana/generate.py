"""Grafana dashboards as code: builds the two Ripples dashboards and writes their JSON to
``deploy/grafana/dashboards/``, and the same JSON as ConfigMaps for the Grafana sidecar of
Kubernetes (label ``grafana_dashboard: "1"``) to ``deploy/k8s/base/grafana-dashboards.yaml``
(both committed; tests check the files equal this output).

    python deploy/grafana/generate.py

Every PromQL expression and every SQL query of the dashboards is in this file: ``SQL`` holds
the PostgreSQL panels' queries over the dashboard views of the attribution service
(``VIEWS``, listed in deploy/README.md); the panels below hold the PromQL.
Dashboards have stable uids and datasource variables whose defaults are the fixed uids of
``provisioning/datasources/ripples.yml``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
CONFIGMAPS = HERE.parent / "k8s" / "base" / "grafana-dashboards.yaml"

PROMETHEUS_UID = "ripples-prometheus"
POSTGRES_UID = "ripples-postgres"
POSTGRES_TYPE = "grafana-postgresql-datasource"
PROM = {"type": "prometheus", "uid": "${datasource}"}
PG = {"type": POSTGRES_TYPE, "uid": "${postgres}"}

# The views the SQL panels read: the attribution service's dashboard views (its migrations
# 0002 and 0003, documented in services/attribution/README.md), with the columns used here.
VIEWS = {
    "attribution.reach_per_ring_per_day": ("day", "ring", "posts", "impressions", "clicks"),
    "attribution.credit_per_ring_per_day": ("day", "conversion", "model", "ring", "credit"),
    "attribution.top_sharers": (
        "employee_id",
        "display_name",
        "ring",
        "posts",
        "impressions",
        "clicks",
        "applicant_credit",
        "hire_credit",
        "inspired",
    ),
    "attribution.ripple_nodes": ("employee_id", "display_name", "ring", "inspired"),
    "attribution.ripple_edges": ("source", "target", "weight"),
}

# Author groups of the reach panels from the views' ring labels: company = ring 'company',
# ambassadors = ring '1', independent = 'independent', spillover = every other ring. Rings in
# the bar charts are in reading order: company, 1, 2, ..., 10, ..., independent.
SQL: dict[str, str] = {
    "reach_over_time": """
select day::timestamptz as time,
       case ring when 'company' then 'company' when '1' then 'ambassadors'
            when 'independent' then 'independent' else 'spillover' end as metric,
       sum(impressions) as impressions
from attribution.reach_per_ring_per_day
where $__timeFilter(day)
group by 1, 2
order by 1""",
    "reach_ratio": """
select (sum(impressions) filter (where ring = '1'))::float8
         / nullif(sum(posts) filter (where ring = '1'), 0)
       / nullif((sum(impressions) filter (where ring = 'company'))::float8
         / nullif(sum(posts) filter (where ring = 'company'), 0), 0) as reach_ratio
from attribution.reach_per_ring_per_day
where $__timeFilter(day)""",
    "reach_by_group": """
select case ring when 'company' then 'company' when '1' then 'ambassadors'
            when 'independent' then 'independent' else 'spillover' end as "group",
       sum(posts) as posts, sum(impressions) as impressions, sum(clicks) as clicks,
       round(sum(impressions)::numeric / nullif(sum(posts), 0), 1) as impressions_per_post
from attribution.reach_per_ring_per_day
where $__timeFilter(day)
group by 1
order by 3 desc""",
    "applicants_by_ring": """
select ring, sum(credit) as applicants
from attribution.credit_per_ring_per_day
where conversion = 'applied' and model = '$model' and $__timeFilter(day)
group by 1
order by ring = 'independent', ring <> 'company', length(ring), ring""",
    "hires_by_ring": """
select ring, sum(credit) as hires
from attribution.credit_per_ring_per_day
where conversion = 'hired' and model = '$model' and $__timeFilter(day)
group by 1
order by ring = 'independent', ring <> 'company', length(ring), ring""",
    "top_sharers": """
select coalesce(display_name, employee_id) as sharer,
       coalesce(ring::text, 'independent') as ring,
       posts, impressions, clicks, applicant_credit, hire_credit, inspired
from attribution.top_sharers
order by applicant_credit desc, impressions desc, sharer
limit 20""",
    "emv": """
select sum(impressions) / 1000.0 * $cpm + sum(clicks) * $cpc as emv
from attribution.reach_per_ring_per_day
where ring <> 'company' and $__timeFilter(day)""",
    "ripple_nodes": """
select employee_id as id,
       coalesce(display_name, employee_id) as title,
       coalesce('ring ' || ring, 'independent') as subtitle,
       inspired as mainstat
from attribution.ripple_nodes""",
    "ripple_edges": """
select source || '->' || target as id, source, target, weight as mainstat
from attribution.ripple_edges""",
}


# --- building blocks ---------------------------------------------------------------------


class Layout:
    """Places panels left to right on a 24-column grid, wrapping to new rows."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def place(self, panel: dict[str, Any], w: int, h: int) -> dict[str, Any]:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        return panel

    def row(self, title: str) -> dict[str, Any]:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel = {"type": "row", "title": title, "collapsed": False, "panels": []}
        placed = self.place(panel, 24, 1)
        self.x, self.y, self.row_height = 0, self.y + 1, 0
        return placed


def prom_target(expr: str, legend: str, ref: str = "A") -> dict[str, Any]:
    return {"datasource": PROM, "expr": expr, "legendFormat": legend, "refId": ref}


def timeseries(
    title: str, targets: list[dict[str, Any]], unit: str = "short", description: str = ""
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": targets[0]["datasource"],
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
    }


def stat(title: str, target: dict[str, Any], unit: str = "short") -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "datasource": target["datasource"],
        "targets": [target],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": ""}},
    }


def sql_target(name: str, ref: str = "A", fmt: str = "table") -> dict[str, Any]:
    return {
        "datasource": PG,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": SQL[name].strip(),
        "refId": ref,
    }


def datasource_variable(name: str, label: str, kind: str, uid: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "datasource",
        "query": kind,
        "current": {"text": uid, "value": uid},
        "hide": 0,
        "refresh": 1,
        "regex": "",
    }


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], variables: list[Any]) -> Any:
    return {
        "uid": uid,
        "title": title,
        "tags": ["ripples"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


# --- Pipeline health -----------------------------------------------------------------------

HEALTH_ROUTES = 'route!~"/livez|/readyz|/metrics"'


def red_row(layout: Layout, service: str) -> list[dict[str, Any]]:
    """Rate, errors, duration of one service's HTTP API."""
    requests = f"{service}_http_requests_total{{{HEALTH_ROUTES}}}"
    errors = f'{service}_http_requests_total{{status=~"5..", {HEALTH_ROUTES}}}'
    return [
        layout.place(
            timeseries(
                f"{service}: requests by status",
                [
                    prom_target(
                        f"sum by (status) (rate({requests}[$__rate_interval]))", "{{status}}"
                    )
                ],
                "reqps",
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                f"{service}: 5xx ratio",
                [
                    prom_target(
                        f"sum(rate({errors}[$__rate_interval]))"
                        f" / sum(rate({requests}[$__rate_interval]))",
                        "5xx ratio",
                    )
                ],
                "percentunit",
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                f"{service}: latency p50 / p95 / p99",
                [
                    prom_target(
                        f"histogram_quantile({q}, sum by (le) (rate("
                        f"{service}_http_request_duration_seconds_bucket{{{HEALTH_ROUTES}}}"
                        "[$__rate_interval])))",
                        f"p{round(q * 100)}",
                        ref,
                    )
                    for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
                ],
                "s",
            ),
            8,
            7,
        ),
    ]


def pipeline_health() -> Any:
    layout = Layout()
    panels: list[dict[str, Any]] = [layout.row("Availability")]
    panels.append(
        layout.place(
            timeseries(
                "Services up",
                [prom_target('up{job=~"ingest|attribution|notifier"}', "{{job}} {{instance}}")],
            ),
            16,
            6,
        )
    )
    panels.append(
        layout.place(
            stat("ingest: broker reachable", prom_target("min(ingest_broker_up)", "")), 8, 6
        )
    )

    panels.append(layout.row("ingest"))
    panels += red_row(layout, "ingest")
    panels.append(
        layout.place(
            timeseries(
                "ingest: events accepted by type",
                [
                    prom_target(
                        "sum by (type) (rate(ingest_events_accepted_total[$__rate_interval]))",
                        "{{type}}",
                    )
                ],
                "ops",
            ),
            8,
            7,
        )
    )
    panels.append(
        layout.place(
            timeseries(
                "ingest: events rejected by reason",
                [
                    prom_target(
                        "sum by (reason) (rate(ingest_events_rejected_total[$__rate_interval]))",
                        "{{reason}}",
                    )
                ],
                "ops",
            ),
            8,
            7,
        )
    )
    panels.append(
        layout.place(
            timeseries(
                "ingest: broker acknowledgement p95",
                [
                    prom_target(
                        "histogram_quantile(0.95, sum by (le) "
                        "(rate(ingest_publish_duration_seconds_bucket[$__rate_interval])))",
                        "p95",
                    )
                ],
                "s",
            ),
            8,
            7,
        )
    )

    panels.append(layout.row("attribution"))
    panels += red_row(layout, "attribution")
    panels += [
        layout.place(
            timeseries(
                "attribution: events processed by outcome",
                [
                    prom_target(
                        "sum by (outcome) "
                        "(rate(attribution_events_processed_total[$__rate_interval]))",
                        "{{outcome}}",
                    )
                ],
                "ops",
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                "attribution: consumer lag by topic",
                [prom_target("sum by (topic) (attribution_consumer_lag_messages)", "{{topic}}")],
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                "attribution: processing delay (event time → stored)",
                [
                    prom_target(
                        f"histogram_quantile({q}, sum by (le) (rate("
                        "attribution_processing_delay_seconds_bucket[$__rate_interval])))",
                        f"p{round(q * 100)}",
                        ref,
                    )
                    for q, ref in ((0.5, "A"), (0.95, "B"))
                ],
                "s",
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                "attribution: batch size and duration",
                [
                    prom_target(
                        "sum(rate(attribution_batch_size_events_sum[$__rate_interval]))"
                        " / sum(rate(attribution_batch_size_events_count[$__rate_interval]))",
                        "mean events per batch",
                    ),
                    prom_target(
                        "histogram_quantile(0.95, sum by (le) "
                        "(rate(attribution_batch_duration_seconds_bucket[$__rate_interval])))",
                        "p95 batch seconds",
                        "B",
                    ),
                ],
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                "attribution: seconds since last processed event",
                [prom_target("time() - max(attribution_last_processed_timestamp_seconds)", "age")],
                "s",
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                "attribution: credits and recognitions",
                [
                    prom_target(
                        "sum(rate(attribution_credits_assigned_total[$__rate_interval]))",
                        "credits assigned",
                    ),
                    prom_target(
                        "sum by (kind) "
                        "(rate(attribution_recognitions_emitted_total[$__rate_interval]))",
                        "recognitions {{kind}}",
                        "B",
                    ),
                ],
                "ops",
            ),
            8,
            7,
        ),
    ]

    panels.append(layout.row("notifier"))
    panels += red_row(layout, "notifier")
    panels += [
        layout.place(
            timeseries(
                "notifier: deliveries by channel and outcome",
                [
                    prom_target(
                        "sum by (channel, outcome) "
                        "(rate(notifier_deliveries_total[$__rate_interval]))",
                        "{{channel}} {{outcome}}",
                    )
                ],
                "ops",
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                "notifier: failure ratio by channel",
                [
                    prom_target(
                        "sum by (channel) "
                        '(rate(notifier_deliveries_total{outcome="failed"}[$__rate_interval]))'
                        " / sum by (channel) (rate(notifier_deliveries_total"
                        '{outcome=~"sent|failed"}[$__rate_interval]))',
                        "{{channel}}",
                    )
                ],
                "percentunit",
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                "notifier: attempts per delivery by channel",
                [
                    prom_target(
                        "sum by (channel) "
                        "(rate(notifier_delivery_attempts_total[$__rate_interval]))"
                        " / sum by (channel) (rate(notifier_deliveries_total"
                        '{outcome=~"sent|failed"}[$__rate_interval]))',
                        "{{channel}}",
                    )
                ],
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                "notifier: delivery latency p95 (recognition → sent)",
                [
                    prom_target(
                        "histogram_quantile(0.95, sum by (le, channel) "
                        "(rate(notifier_delivery_latency_seconds_bucket[$__rate_interval])))",
                        "{{channel}}",
                    )
                ],
                "s",
            ),
            8,
            7,
        ),
        layout.place(
            timeseries(
                "notifier: queue depth and consumer lag",
                [
                    prom_target("sum(notifier_queue_depth)", "pending deliveries"),
                    prom_target(
                        "sum by (topic) (notifier_consumer_lag_messages)", "lag {{topic}}", "B"
                    ),
                ],
            ),
            8,
            7,
        ),
    ]

    panels.append(layout.row("Connectors (ingest)"))
    for title, expr, legend, unit in (
        (
            "webhook deliveries by vendor and outcome",
            "sum by (vendor, outcome) (rate(ingest_webhook_deliveries_total[$__rate_interval]))",
            "{{vendor}} {{outcome}}",
            "ops",
        ),
        (
            "LinkedIn members skipped by reason",
            "sum by (reason) (increase(ingest_linkedin_members_skipped_total[$__rate_interval]))",
            "{{reason}}",
            "short",
        ),
        (
            "LinkedIn polls by outcome",
            "sum by (outcome) (increase(ingest_linkedin_polls_total[$__rate_interval]))",
            "{{outcome}}",
            "short",
        ),
        (
            "time since the last LinkedIn poll",
            "time() - max(ingest_linkedin_last_poll_timestamp_seconds > 0)",
            "since last poll",
            "s",
        ),
        (
            "clicks dropped by reason, and the click buffer",
            "sum by (reason) (rate(ingest_clicks_dropped_total[$__rate_interval]))",
            "dropped {{reason}}",
            "ops",
        ),
    ):
        targets = [prom_target(expr, legend)]
        if title.startswith("clicks"):
            targets.append(prom_target("sum(ingest_click_buffer_depth)", "buffered", "B"))
        panels.append(layout.place(timeseries(f"ingest: {title}", targets, unit), 8, 7))

    panels.append(layout.row("Dead letters"))
    panels.append(
        layout.place(
            timeseries(
                "Dead letters by service and reason",
                [
                    prom_target(
                        "sum by (reason) (increase(attribution_dead_letters_total[$__range]))",
                        "attribution {{reason}}",
                    ),
                    prom_target(
                        "sum by (reason) (increase(notifier_dead_letters_total[$__range]))",
                        "notifier {{reason}}",
                        "B",
                    ),
                ],
            ),
            24,
            7,
        )
    )
    variables = [datasource_variable("datasource", "Prometheus", "prometheus", PROMETHEUS_UID)]
    return dashboard("ripples-pipeline-health", "Ripples / Pipeline health", panels, variables)


# --- Advocacy results ----------------------------------------------------------------------

MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")


def table(title: str, name: str, description: str = "") -> dict[str, Any]:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": PG,
        "targets": [sql_target(name)],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
    }


def bars(title: str, name: str) -> dict[str, Any]:
    return {
        "type": "barchart",
        "title": title,
        "datasource": PG,
        "targets": [sql_target(name)],
        "fieldConfig": {"defaults": {"unit": "short", "decimals": 1}, "overrides": []},
        "options": {"xField": "ring", "orientation": "horizontal", "showValue": "always"},
    }


def advocacy_results() -> Any:
    layout = Layout()
    panels: list[dict[str, Any]] = [layout.row("Reach: company page vs ambassadors vs spillover")]
    reach = timeseries(
        "Impressions per day by author group",
        [sql_target("reach_over_time", fmt="time_series")],
        description="company = the company page; ambassadors = ring 1; spillover = ring ≥ 2; "
        "independent = employees sharing on their own.",
    )
    panels.append(layout.place(reach, 16, 8))
    ratio = stat("Reach ratio (ambassador post ÷ company post)", sql_target("reach_ratio"))
    ratio["fieldConfig"]["defaults"] |= {"decimals": 1, "unit": "suffix: times"}
    panels.append(layout.place(ratio, 8, 4))
    emv = stat("Earned media value (employee posts)", sql_target("emv"))
    emv["fieldConfig"]["defaults"] |= {"decimals": 0, "unit": "currencyDKK"}
    emv["description"] = "impressions / 1000 * CPM + clicks * CPC; the prices are variables."
    panels.append(layout.place(emv, 8, 4))
    panels.append(layout.place(table("Reach by author group", "reach_by_group"), 24, 6))

    panels.append(layout.row("Applicants and hires credited per ring"))
    panels.append(layout.place(bars("Applicants credited per ring", "applicants_by_ring"), 12, 8))
    panels.append(layout.place(bars("Hires credited per ring", "hires_by_ring"), 12, 8))

    panels.append(layout.row("Sharers and the ripple network"))
    top = table(
        "Top sharers (all time, linear credit)",
        "top_sharers",
        "All time, whatever the time range; applicant and hire credit under the linear model, "
        "whatever the credit model chosen; inspired = colleagues naming them as inspirer.",
    )
    panels.append(layout.place(top, 24, 9))
    network = {
        "type": "nodeGraph",
        "title": "Ripple network (who inspired whom)",
        "description": "Nodes are sharers (subtitle: ring; main stat: colleagues they "
        "inspired); edges point from the inspirer to the colleague, weighted. All time.",
        "datasource": PG,
        "targets": [sql_target("ripple_nodes", "nodes"), sql_target("ripple_edges", "edges")],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    panels.append(layout.place(network, 24, 14))

    variables = [
        datasource_variable("postgres", "PostgreSQL", POSTGRES_TYPE, POSTGRES_UID),
        {
            "name": "model",
            "label": "Credit model",
            "type": "custom",
            "query": ",".join(MODELS),
            "current": {"text": "last_touch", "value": "last_touch"},
            "options": [{"text": m, "value": m, "selected": m == "last_touch"} for m in MODELS],
            "hide": 0,
        },
        {
            "name": "cpm",
            "label": "CPM (DKK per 1000 impressions)",
            "type": "textbox",
            "query": "220",
            "current": {"text": "220", "value": "220"},
            "hide": 0,
        },
        {
            "name": "cpc",
            "label": "CPC (DKK per click)",
            "type": "textbox",
            "query": "40",
            "current": {"text": "40", "value": "40"},
            "hide": 0,
        },
    ]
    return dashboard("ripples-advocacy-results", "Ripples / Advocacy results", panels, variables)


DASHBOARDS = {
    "ripples-pipeline-health.json": pipeline_health,
    "ripples-advocacy-results.json": advocacy_results,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def configmaps() -> str:
    """One ConfigMap per dashboard, its JSON (exactly the file's) under the file's name: the
    Grafana sidecar (kiwigrid k8s-sidecar, as in the grafana and kube-prometheus-stack Helm
    charts) loads every ConfigMap labelled ``grafana_dashboard: "1"``."""
    docs = [
        "# Generated by deploy/grafana/generate.py from the dashboards it builds (a test keeps\n"
        "# them equal to deploy/grafana/dashboards/*.json): edit generate.py, not this file.\n"
    ]
    for name, build in DASHBOARDS.items():
        body = "".join("    " + line + "\n" for line in render(build).splitlines())
        docs.append(
            "apiVersion: v1\n"
            "kind: ConfigMap\n"
            "metadata:\n"
            f"  name: {name.removesuffix('.json')}\n"
            "  labels:\n"
            '    grafana_dashboard: "1"\n'
            "data:\n"
            f"  {name}: |\n{body}"
        )
    return docs[0] + "---\n".join(docs[1:])


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, build in DASHBOARDS.items():
        (OUT / name).write_text(render(build))
        sys.stdout.write(f"wrote {OUT / name}\n")
    CONFIGMAPS.write_text(configmaps())
    sys.stdout.write(f"wrote {CONFIGMAPS}\n")


if __name__ == "__main__":
    main()
