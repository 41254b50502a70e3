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
import re
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
    "attribution.ripple_nodes": ("employee_id", "display_name", "ring", "inspired"),
    "attribution.ripple_edges": ("source", "target", "weight", "exposure"),
    # migration 0007
    "attribution.reach_per_origin_per_day": ("day", "origin", "posts", "impressions"),
    "attribution.employee_reach_per_day": ("day", "employee_id", "posts", "impressions",
                                           "followers"),
    "attribution.applicants_per_family_per_day": ("day", "family", "hard_to_recruit",
                                                  "applicants", "attributed"),
    "attribution.credit_per_family_per_day": ("day", "model", "family", "ring", "credit"),
    "attribution.sharer_figures_per_day": ("day", "employee_id", "display_name", "ring", "model",
                                           "posts", "impressions", "clicks", "applicant_credit",
                                           "hire_credit", "inspired"),
    "attribution.weekly_evidence": ("week_start", "statistic", "value", "low", "high"),
}  # fmt: skip

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
    # /v1/sharers over the time range under the chosen model (credit rounded as the API
    # rounds it, so ties order alike): applicant credit, impressions (descending), employee_id
    "top_sharers": """
select coalesce(display_name, employee_id) as sharer,
       coalesce(ring::text, 'independent') as ring,
       sum(posts) as posts, sum(impressions) as impressions, sum(clicks) as clicks,
       round(sum(applicant_credit)::numeric, 9) as applicant_credit,
       round(sum(hire_credit)::numeric, 9) as hire_credit,
       sum(inspired) as inspired
from attribution.sharer_figures_per_day
where $__timeFilter(day) and (model is null or model = '$model')
group by employee_id, display_name, ring
having sum(posts) > 0 or sum(applicant_credit) > 0 or sum(hire_credit) > 0
order by 6 desc, 4 desc, employee_id
limit 20""",
    "emv": """
select sum(impressions) / 1000.0 * $cpm + sum(clicks) * $cpc as emv
from attribution.reach_per_ring_per_day
where ring <> 'company' and $__timeFilter(day)""",
    # the node graph shows subtitles as they come: one query per dashboard language
    **{
        f"ripple_nodes_{lang}": f"""
select employee_id as id,
       coalesce(display_name, employee_id) as title,
       coalesce('{ring} ' || ring, '{independent}') as subtitle,
       inspired as mainstat
from attribution.ripple_nodes"""  # noqa: S608 (constants of this file)
        for lang, ring, independent in (("en", "ring", "independent"), ("da", "ring", "uafhængig"))
    },
    "ripple_edges": """
select source || '->' || target as id, source, target, weight as mainstat,
       exposure as secondarystat
from attribution.ripple_edges""",
    # §10 intervals per ISO week (the worker writes them from /v1/summary's code): the point
    # value and its interval, drawn as a band between low and high
    **{
        f"weekly_{statistic}": f"""
select week_start as time, value, low, high
from attribution.weekly_evidence
where statistic = '{statistic}' and $__timeFilter(week_start)
order by 1"""  # noqa: S608 (constants of this file)
        for statistic in ("reach_ratio", "lift", "baseline_adjusted", "own_vs_prepared")
    },
    # §10 content_origin over the time range
    "content_origin": """
select origin, sum(posts) as posts, sum(impressions) as impressions,
       round(sum(impressions)::numeric / nullif(sum(posts), 0), 1) as impressions_per_post
from attribution.reach_per_origin_per_day
where $__timeFilter(day)
group by 1
order by array_position(array['own', 'suggested', 'template'], origin)""",
    "own_vs_prepared": """
select (sum(impressions) filter (where origin = 'own'))::float8
         / nullif(sum(posts) filter (where origin = 'own'), 0)
       / nullif((sum(impressions) filter (where origin <> 'own'))::float8
         / nullif(sum(posts) filter (where origin <> 'own'), 0), 0) as own_vs_prepared
from attribution.reach_per_origin_per_day
where $__timeFilter(day)""",
    # §10 drivers: Spearman = Pearson (corr) of mean ranks over the employees with a post in
    # the time range; null under 5 employees, and corr is null when a variable is constant
    "drivers": """
with per as (
    select employee_id, sum(impressions)::float8 / sum(posts) as per_post,
           sum(posts)::float8 as posts, max(followers)::float8 as followers
    from attribution.employee_reach_per_day
    where $__timeFilter(day)
    group by employee_id
), activity as (
    select rank() over (order by per_post) + (count(*) over (partition by per_post) - 1) / 2.0
               as x,
           rank() over (order by posts) + (count(*) over (partition by posts) - 1) / 2.0 as y
    from per
), network as (
    select rank() over (order by per_post) + (count(*) over (partition by per_post) - 1) / 2.0
               as x,
           rank() over (order by followers) + (count(*) over (partition by followers) - 1) / 2.0
               as y
    from per where followers is not null
)
select (select count(*) from per) as employees,
       (select case when count(*) >= 5 then round(corr(x, y)::numeric, 3) end from network)
           as followers_spearman,
       (select case when count(*) >= 5 then round(corr(x, y)::numeric, 3) end from activity)
           as activity_spearman""",
    # §10 applicants.jobs over the time range, credit under the chosen model by author group;
    # hard-to-recruit families first, then applicants (descending), then family (none last)
    "job_families": """
with applied as (
    select family, bool_or(hard_to_recruit) as hard, sum(applicants) as applicants,
           sum(attributed) as attributed
    from attribution.applicants_per_family_per_day
    where $__timeFilter(day)
    group by family
), credit as (
    select family,
           sum(credit) filter (where ring = 'company') as company,
           sum(credit) filter (where ring = '1') as ambassadors,
           sum(credit) filter (where ring not in ('company', '1', 'independent')) as spillover,
           sum(credit) filter (where ring = 'independent') as independent
    from attribution.credit_per_family_per_day
    where model = '$model' and $__timeFilter(day)
    group by family
)
select coalesce(a.family, '—') as family, a.hard as hard_to_recruit, a.applicants, a.attributed,
       round(coalesce(c.company, 0)::numeric, 2) as company,
       round(coalesce(c.ambassadors, 0)::numeric, 2) as ambassadors,
       round(coalesce(c.spillover, 0)::numeric, 2) as spillover,
       round(coalesce(c.independent, 0)::numeric, 2) as independent
from applied a left join credit c on c.family is not distinct from a.family
order by a.hard desc, a.applicants desc, a.family is null, a.family""",
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


# The Danish copy of the pipeline-health dashboard: the English build with every title,
# legend and label translated through this table (a string missing here fails the build).
PIPELINE_DA: dict[str, str] = {
    "Ripples / Pipeline health": "Ripples / Driftsstatus",
    "Prometheus": "Prometheus",
    "Availability": "Tilgængelighed",
    "Services up": "Tjenester oppe",
    "Connectors (ingest)": "Forbindelser (ingest)",
    "Dead letters": "Afviste hændelser (dead letters)",
    "Dead letters by service and reason": "Afviste hændelser efter tjeneste og årsag",
    "ingest": "ingest",
    "attribution": "attribution",
    "notifier": "notifier",
    "requests by status": "forespørgsler efter status",
    "5xx ratio": "andel 5xx",
    "latency p50 / p95 / p99": "svartid p50 / p95 / p99",
    "broker reachable": "broker kan nås",
    "events accepted by type": "hændelser modtaget efter type",
    "events rejected by reason": "hændelser afvist efter årsag",
    "broker acknowledgement p95": "brokerens kvittering p95",
    "events processed by outcome": "hændelser behandlet efter udfald",
    "consumer lag by topic": "forbrugerens efterslæb efter emne",
    "processing delay (event time → stored)": "behandlingstid (hændelsestid → gemt)",
    "batch size and duration": "batchstørrelse og -varighed",
    "seconds since last processed event": "sekunder siden sidste behandlede hændelse",
    "credits and recognitions": "kredit og anerkendelser",
    "deliveries by channel and outcome": "leveringer efter kanal og udfald",
    "failure ratio by channel": "fejlandel efter kanal",
    "attempts per delivery by channel": "forsøg pr. levering efter kanal",
    "delivery latency p95 (recognition → sent)": "leveringstid p95 (anerkendelse → sendt)",
    "queue depth and consumer lag": "kødybde og forbrugerens efterslæb",
    "webhook deliveries by vendor and outcome": "webhook-leveringer efter leverandør og udfald",
    "LinkedIn members skipped by reason": "LinkedIn-medlemmer sprunget over efter årsag",
    "LinkedIn polls by outcome": "LinkedIn-hentninger efter udfald",
    "time since the last LinkedIn poll": "tid siden sidste LinkedIn-hentning",
    "clicks dropped by reason, and the click buffer": "klik tabt efter årsag, og klikbufferen",
    # legends ({{…}} are the metrics' label values)
    "": "",
    "age": "alder",
    "buffered": "i buffer",
    "credits assigned": "kredit tildelt",
    "mean events per batch": "gennemsnitlige hændelser pr. batch",
    "p95 batch seconds": "p95 sekunder pr. batch",
    "pending deliveries": "ventende leveringer",
    "since last poll": "siden sidste hentning",
    "attribution {{reason}}": "attribution {{reason}}",
    "notifier {{reason}}": "notifier {{reason}}",
    "dropped {{reason}}": "tabt {{reason}}",
    "lag {{topic}}": "efterslæb {{topic}}",
    "recognitions {{kind}}": "anerkendelser {{kind}}",
}
_SERVICE_TITLE = re.compile(r"^(ingest|attribution|notifier): (.*)$")
_KEPT_LEGEND = re.compile(r"^(\{\{\w+\}\} ?)+$|^p\d\d$")


def _da(text: str) -> str:
    found = _SERVICE_TITLE.match(text)
    if found:
        return f"{found[1]}: {PIPELINE_DA[found[2]]}"
    return text if _KEPT_LEGEND.match(text) else PIPELINE_DA[text]


def pipeline_health_da() -> Any:
    """The pipeline-health dashboard in Danish: the same panels, queries and layout."""
    built = pipeline_health()
    built["uid"] = "ripples-pipeline-health-da"
    built["title"] = _da(built["title"])
    for panel in [p for top in built["panels"] for p in (top, *top.get("panels", []))]:
        panel["title"] = _da(panel["title"])
        if panel.get("description"):
            panel["description"] = PIPELINE_DA[panel["description"]]
        for target in panel.get("targets", []):
            target["legendFormat"] = _da(target["legendFormat"])
    for variable in built["templating"]["list"]:
        variable["label"] = _da(variable["label"])
    return languages(built, "da", "ripples-pipeline-health")


def languages(built: dict[str, Any], lang: str, other_uid: str) -> dict[str, Any]:
    """Tag a dashboard with its language and link it to its copy in the other one."""
    built["tags"] = ["ripples", lang]
    built["links"] = [
        {
            "type": "link",
            "title": "English" if lang == "da" else "Dansk",
            "url": f"/d/{other_uid}",
            "keepTime": True,
            "includeVars": True,
            "targetBlank": False,
            "icon": "dashboard",
            "tags": [],
        }
    ]
    return built


# --- Advocacy results (English and Danish) -------------------------------------------------
#
# Two provisioned copies built from this one source, one per language, rather than one
# dashboard with a language variable: Grafana interpolates variables in titles, but not in
# units, axis labels, value mappings or legend names, and it has no translation mechanism for
# a dashboard's own text (its UI language covers only Grafana's chrome). Each copy is whole in
# its language, links to the other (keeping the time range and variables), and a team's or
# user's home dashboard can be set to its language's copy.

MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")
LANGUAGES = ("en", "da")

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "dashboard": "Ripples / Advocacy results",
        "row_reach": "Reach: company page vs ambassadors vs spillover",
        "impressions_per_day": "Impressions per day by author group",
        "impressions_per_day_help": "company = the company page; ambassadors = ring 1; "
        "spillover = ring ≥ 2; independent = employees sharing on their own.",
        "reach_ratio": "Reach ratio (ambassador post ÷ company post)",
        "times": "suffix: times",
        "emv": "Earned media value (employee posts)",
        "emv_help": "impressions / 1000 * CPM + clicks * CPC; the prices are variables.",
        "reach_by_group": "Reach by author group",
        "row_uncertainty": "How sure: 95 % bootstrap intervals per week",
        "uncertainty_help": "The point value per ISO week (Monday to Monday, UTC) and its "
        "interval as a band, exactly as /v1/summary gives them for that week (the worker "
        "refreshes them every ATTRIBUTION_EVIDENCE_REFRESH_S). A band that leaves out the "
        "no-effect line ({line}) is distinguishable from chance; one that includes it is not yet.",
        "weekly_reach_ratio": "Reach ratio per week, with its interval",
        "weekly_lift": "Spillover lift per week (exposed vs unexposed), with its interval",
        "weekly_baseline_adjusted": "Colleagues inspired beyond chance per week, with its interval",
        "weekly_own_vs_prepared": "Own words vs prepared posts per week, with its interval",
        "value": "value",
        "low": "low",
        "high": "high",
        "colleagues": "suffix: colleagues",
        "row_origin": "Content origin: own words vs prepared messages",
        "content_origin": "Employee posts by origin",
        "content_origin_help": "own = the employee's own words; suggested and template = "
        "prepared messages.",
        "own_vs_prepared": "Own words ÷ prepared (impressions per post)",
        "row_drivers": "What reach follows: network size or activity",
        "drivers": "Drivers (Spearman rank correlation)",
        "drivers_help": "Over the employees with a post in the time range: mean impressions "
        "per post against their followers (where known) and against their number of posts. "
        "Empty under 5 employees or when a figure is the same for all.",
        "row_credit": "Applicants and hires credited per ring",
        "applicants_by_ring": "Applicants credited per ring",
        "hires_by_ring": "Hires credited per ring",
        "job_families": "Applicants by job family (hard-to-recruit first)",
        "job_families_help": "Credit under the chosen credit model; a family is hard to "
        "recruit when any of its jobs is flagged.",
        "row_sharers": "Sharers and the ripple network",
        "top_sharers": "Top sharers (time range, chosen credit model)",
        "top_sharers_help": "Posts and reach by publication day, applicant and hire credit by "
        "application and hire day under the chosen credit model; inspired = colleagues whose "
        "first share in the time range names them as inspirer.",
        "network": "Ripple network (who inspired whom)",
        "network_help": "Nodes are sharers (subtitle: ring; main stat: colleagues they "
        "inspired); edges point from the inspirer to the colleague, weighted, with the kind "
        "of exposure. All time.",
        "model": "Credit model",
        "cpm": "CPM (DKK per 1000 impressions)",
        "cpc": "CPC (DKK per click)",
        # values and column names shown to the reader
        "company": "company",
        "ambassadors": "ambassadors",
        "spillover": "spillover",
        "independent": "independent",
        "ring": "ring",
        "group": "group",
        "posts": "posts",
        "impressions": "impressions",
        "clicks": "clicks",
        "impressions_per_post": "impressions per post",
        "origin": "origin",
        "own": "own words",
        "suggested": "suggested",
        "template": "template",
        "employees": "employees",
        "followers_spearman": "reach ~ followers",
        "activity_spearman": "reach ~ number of posts",
        "family": "job family",
        "hard_to_recruit": "hard to recruit",
        "yes": "yes",
        "no": "no",
        "applicants": "applicants",
        "attributed": "attributed",
        "hires": "hires",
        "sharer": "sharer",
        "applicant_credit": "applicant credit",
        "hire_credit": "hire credit",
        "inspired": "inspired",
    },
    "da": {
        "dashboard": "Ripples / Ambassadørresultater",
        "row_reach": "Rækkevidde: virksomhedssiden, ambassadører og spredning",
        "impressions_per_day": "Visninger pr. dag efter afsender",
        "impressions_per_day_help": "virksomhedssiden = virksomhedens side; ambassadører = "
        "ring 1; spredning = ring ≥ 2; uafhængige = medarbejdere, der deler på eget initiativ.",
        "reach_ratio": "Rækkeviddeforhold (ambassadøropslag ÷ virksomhedsopslag)",
        "times": "suffix: gange",
        "emv": "Værdi af omtale (medarbejderopslag)",
        "emv_help": "visninger / 1000 * CPM + klik * CPC; priserne er variabler.",
        "reach_by_group": "Rækkevidde efter afsender",
        "row_uncertainty": "Hvor sikkert: 95 %-bootstrapintervaller pr. uge",
        "uncertainty_help": "Punktværdien pr. ISO-uge (mandag til mandag, UTC) og dens "
        "interval som et bånd, præcis som /v1/summary giver dem for ugen (workeren "
        "opdaterer dem hvert ATTRIBUTION_EVIDENCE_REFRESH_S). Et bånd, der ikke rummer "
        "linjen for ingen effekt ({line}), kan skelnes fra tilfældighed; et, der rummer den, "
        "kan ikke endnu.",
        "weekly_reach_ratio": "Rækkeviddeforhold pr. uge med interval",
        "weekly_lift": "Spredningens løft pr. uge (eksponerede mod ikke-eksponerede) med interval",
        "weekly_baseline_adjusted": "Kolleger inspireret ud over tilfældighed pr. uge med interval",
        "weekly_own_vs_prepared": "Egne ord mod forberedte opslag pr. uge med interval",
        "value": "værdi",
        "low": "nedre",
        "high": "øvre",
        "colleagues": "suffix: kolleger",
        "row_origin": "Indholdets oprindelse: egne ord mod forberedte budskaber",
        "content_origin": "Medarbejderopslag efter oprindelse",
        "content_origin_help": "egne ord = medarbejderens egne ord; foreslået og skabelon = "
        "forberedte budskaber.",
        "own_vs_prepared": "Egne ord ÷ forberedte (visninger pr. opslag)",
        "row_drivers": "Hvad rækkevidden følger: netværkets størrelse eller aktivitet",
        "drivers": "Drivkræfter (Spearmans rangkorrelation)",
        "drivers_help": "Over medarbejderne med et opslag i perioden: gennemsnitlige "
        "visninger pr. opslag mod deres følgere (hvor de kendes) og mod deres antal opslag. "
        "Tom under 5 medarbejdere, eller når et tal er det samme for alle.",
        "row_credit": "Ansøgere og ansættelser krediteret pr. ring",
        "applicants_by_ring": "Ansøgere krediteret pr. ring",
        "hires_by_ring": "Ansættelser krediteret pr. ring",
        "job_families": "Ansøgere efter jobfamilie (svære at rekruttere først)",
        "job_families_help": "Kredit efter den valgte krediteringsmodel; en familie er svær "
        "at rekruttere til, når et af dens job er markeret.",
        "row_sharers": "Delere og ringenes netværk",
        "top_sharers": "Flest delinger (perioden, valgt krediteringsmodel)",
        "top_sharers_help": "Opslag og rækkevidde efter udgivelsesdag, ansøger- og "
        "ansættelseskredit efter ansøgnings- og ansættelsesdag under den valgte "
        "krediteringsmodel; inspirerede = kolleger, hvis første deling i perioden nævner dem "
        "som inspiration.",
        "network": "Ringenes netværk (hvem inspirerede hvem)",
        "network_help": "Knuderne er delere (undertitel: ring; hovedtal: kolleger, de "
        "inspirerede); kanterne peger fra den, der inspirerede, til kollegaen, vægtet, med "
        "eksponeringens art. Hele tiden.",
        "model": "Krediteringsmodel",
        "cpm": "CPM (kr. pr. 1000 visninger)",
        "cpc": "CPC (kr. pr. klik)",
        "company": "virksomhedssiden",
        "ambassadors": "ambassadører",
        "spillover": "spredning",
        "independent": "uafhængige",
        "ring": "ring",
        "group": "afsender",
        "posts": "opslag",
        "impressions": "visninger",
        "clicks": "klik",
        "impressions_per_post": "visninger pr. opslag",
        "origin": "oprindelse",
        "own": "egne ord",
        "suggested": "foreslået",
        "template": "skabelon",
        "employees": "medarbejdere",
        "followers_spearman": "rækkevidde ~ følgere",
        "activity_spearman": "rækkevidde ~ antal opslag",
        "family": "jobfamilie",
        "hard_to_recruit": "svær at rekruttere",
        "yes": "ja",
        "no": "nej",
        "applicants": "ansøgere",
        "attributed": "tilskrevet",
        "hires": "ansættelser",
        "sharer": "deler",
        "applicant_credit": "ansøgerkredit",
        "hire_credit": "ansættelseskredit",
        "inspired": "inspirerede",
    },
}
UIDS = {"en": "ripples-advocacy-results", "da": "ripples-advocacy-results-da"}


def value_mappings(words: dict[str, str], values: tuple[str, ...]) -> list[dict[str, Any]]:
    """Grafana value mappings showing the SQL's English labels in the dashboard's language."""
    return [
        {
            "type": "value",
            "options": {v: {"text": words[v], "index": i} for i, v in enumerate(values)},
        }
    ]


def display_names(words: dict[str, str], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Overrides naming each column (or series) in the dashboard's language."""
    return [
        {
            "matcher": {"id": "byName", "options": c},
            "properties": [{"id": "displayName", "value": words[c]}],
        }
        for c in columns
    ]


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


def bars(title: str, name: str, words: dict[str, str], value: str) -> dict[str, Any]:
    return {
        "type": "barchart",
        "title": title,
        "datasource": PG,
        "targets": [sql_target(name)],
        "fieldConfig": {
            "defaults": {
                "unit": "short",
                "decimals": 1,
                "mappings": value_mappings(words, ("company", "independent")),
            },
            "overrides": display_names(words, ("ring", value)),
        },
        "options": {"xField": "ring", "orientation": "horizontal", "showValue": "always"},
    }


def band(
    statistic: str, words: dict[str, str], unit: str, line: float, help_line: str
) -> dict[str, Any]:
    """A weekly point value with its interval drawn as a band: the high series filled down
    to the low one, the bounds without lines of their own, and the no-effect line dashed."""
    panel = timeseries(
        words[f"weekly_{statistic}"],
        [sql_target(f"weekly_{statistic}", fmt="table")],
        unit,
        words["uncertainty_help"].format(line=help_line),
    )
    bound = [{"id": "custom.lineWidth", "value": 0}, {"id": "custom.fillOpacity", "value": 25}]
    panel["fieldConfig"]["defaults"]["custom"] = {
        "drawStyle": "line",
        "showPoints": "always",
        "spanNulls": False,
        "thresholdsStyle": {"mode": "dashed"},
    }
    panel["fieldConfig"]["defaults"]["thresholds"] = {
        "mode": "absolute",
        "steps": [{"color": "transparent", "value": None}, {"color": "red", "value": line}],
    }
    panel["fieldConfig"]["overrides"] = [
        *display_names(words, ("value", "low", "high")),
        {
            "matcher": {"id": "byName", "options": "high"},
            "properties": [*bound, {"id": "custom.fillBelowTo", "value": words["low"]}],
        },
        {"matcher": {"id": "byName", "options": "low"}, "properties": bound},
    ]
    return panel


def advocacy_results(lang: str) -> Any:
    words = WORDS[lang]
    groups = ("company", "ambassadors", "spillover", "independent")
    layout = Layout()
    panels: list[dict[str, Any]] = [layout.row(words["row_reach"])]
    reach = timeseries(
        words["impressions_per_day"],
        [sql_target("reach_over_time", fmt="time_series")],
        description=words["impressions_per_day_help"],
    )
    reach["fieldConfig"]["defaults"]["custom"] = {"axisLabel": words["impressions"]}
    reach["fieldConfig"]["overrides"] = display_names(words, groups)
    panels.append(layout.place(reach, 16, 8))
    ratio = stat(words["reach_ratio"], sql_target("reach_ratio"))
    ratio["fieldConfig"]["defaults"] |= {"decimals": 1, "unit": words["times"]}
    panels.append(layout.place(ratio, 8, 4))
    emv = stat(words["emv"], sql_target("emv"))
    emv["fieldConfig"]["defaults"] |= {"decimals": 0, "unit": "currencyDKK"}
    emv["description"] = words["emv_help"]
    panels.append(layout.place(emv, 8, 4))
    by_group = table(words["reach_by_group"], "reach_by_group")
    by_group["fieldConfig"]["defaults"]["mappings"] = value_mappings(words, groups)
    by_group["fieldConfig"]["overrides"] = display_names(
        words, ("group", "posts", "impressions", "clicks", "impressions_per_post")
    )
    panels.append(layout.place(by_group, 24, 6))

    panels.append(layout.row(words["row_uncertainty"]))
    for statistic, unit, line, shown in (
        ("reach_ratio", words["times"], 1.0, "1×"),
        ("own_vs_prepared", words["times"], 1.0, "1×"),
        ("lift", words["times"], 1.0, "1×"),
        ("baseline_adjusted", words["colleagues"], 0.0, "0"),
    ):
        panels.append(layout.place(band(statistic, words, unit, line, shown), 12, 8))

    panels.append(layout.row(words["row_origin"]))
    origin = table(words["content_origin"], "content_origin", words["content_origin_help"])
    origin["fieldConfig"]["defaults"]["mappings"] = value_mappings(
        words, ("own", "suggested", "template")
    )
    origin["fieldConfig"]["overrides"] = display_names(
        words, ("origin", "posts", "impressions", "impressions_per_post")
    )
    panels.append(layout.place(origin, 16, 6))
    own = stat(words["own_vs_prepared"], sql_target("own_vs_prepared"))
    own["fieldConfig"]["defaults"] |= {"decimals": 2, "unit": words["times"]}
    panels.append(layout.place(own, 8, 6))

    panels.append(layout.row(words["row_drivers"]))
    drivers = table(words["drivers"], "drivers", words["drivers_help"])
    drivers["fieldConfig"]["defaults"] |= {"decimals": 2, "min": -1, "max": 1}
    drivers["fieldConfig"]["overrides"] = display_names(
        words, ("employees", "followers_spearman", "activity_spearman")
    )
    panels.append(layout.place(drivers, 24, 4))

    panels.append(layout.row(words["row_credit"]))
    panels.append(
        layout.place(
            bars(words["applicants_by_ring"], "applicants_by_ring", words, "applicants"), 12, 8
        )
    )
    panels.append(
        layout.place(bars(words["hires_by_ring"], "hires_by_ring", words, "hires"), 12, 8)
    )
    families = table(words["job_families"], "job_families", words["job_families_help"])
    families["fieldConfig"]["defaults"]["mappings"] = [
        {"type": "value", "options": {"true": {"text": words["yes"], "index": 0},
                                      "false": {"text": words["no"], "index": 1}}}
    ]  # fmt: skip
    families["fieldConfig"]["overrides"] = display_names(
        words, ("family", "hard_to_recruit", "applicants", "attributed", *groups)
    )
    panels.append(layout.place(families, 24, 7))

    panels.append(layout.row(words["row_sharers"]))
    top = table(words["top_sharers"], "top_sharers", words["top_sharers_help"])
    top["fieldConfig"]["defaults"]["mappings"] = value_mappings(words, ("independent",))
    top["fieldConfig"]["overrides"] = display_names(
        words,
        ("sharer", "ring", "posts", "impressions", "clicks", "applicant_credit", "hire_credit",
         "inspired"),
    )  # fmt: skip
    panels.append(layout.place(top, 24, 9))
    network = {
        "type": "nodeGraph",
        "title": words["network"],
        "description": words["network_help"],
        "datasource": PG,
        "targets": [
            sql_target(f"ripple_nodes_{lang}", "nodes"),
            sql_target("ripple_edges", "edges"),
        ],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    panels.append(layout.place(network, 24, 14))

    variables = [
        datasource_variable("postgres", "PostgreSQL", POSTGRES_TYPE, POSTGRES_UID),
        {
            "name": "model",
            "label": words["model"],
            "type": "custom",
            "query": ",".join(MODELS),
            "current": {"text": "last_touch", "value": "last_touch"},
            "options": [{"text": m, "value": m, "selected": m == "last_touch"} for m in MODELS],
            "hide": 0,
        },
        {
            "name": "cpm",
            "label": words["cpm"],
            "type": "textbox",
            "query": "220",
            "current": {"text": "220", "value": "220"},
            "hide": 0,
        },
        {
            "name": "cpc",
            "label": words["cpc"],
            "type": "textbox",
            "query": "40",
            "current": {"text": "40", "value": "40"},
            "hide": 0,
        },
    ]
    built = dashboard(UIDS[lang], words["dashboard"], panels, variables)
    return languages(built, lang, UIDS[next(o for o in LANGUAGES if o != lang)])


DASHBOARDS = {
    "ripples-pipeline-health.json": lambda: languages(
        pipeline_health(), "en", "ripples-pipeline-health-da"
    ),
    "ripples-pipeline-health-da.json": pipeline_health_da,
    "ripples-advocacy-results.json": lambda: advocacy_results("en"),
    "ripples-advocacy-results-da.json": lambda: advocacy_results("da"),
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
