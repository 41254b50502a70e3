"""Writes deploy/k8s/base/prometheus-rules.yaml: the alert rules of
deploy/prometheus/rules/ as a PrometheusRule for the Prometheus Operator (committed; a test
checks it holds exactly the same groups).

    python deploy/prometheus/prometheusrule.py [--runbook-base-url URL]

The rules' runbook_url is absolute (Alertmanager and Grafana show it as a link wherever the
alert lands): RUNBOOK_BASE_URL, the repository's deploy/RUNBOOK.md, by default. Where your
runbook lives elsewhere (a wiki, an internal Git host), render the PrometheusRule with
``--runbook-base-url`` (the compose Prometheus reads the rules file itself: edit its base).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

RUNBOOK_BASE_URL = "https://github.com/ripples/ripples/blob/main/deploy/RUNBOOK.md"

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent / "k8s" / "base" / "prometheus-rules.yaml"
HEADER = (
    "# Generated from deploy/prometheus/rules/*.yml by deploy/prometheus/prometheusrule.py;\n"
    "# edit the rules there and run it again.\n"
)


def prometheus_rule(runbook_base_url: str = RUNBOOK_BASE_URL) -> dict[str, Any]:
    groups = [
        group
        for path in sorted((HERE / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]
    for group in groups:
        for rule in group["rules"]:
            annotations = rule.get("annotations", {})
            if "runbook_url" in annotations:
                anchor = annotations["runbook_url"].removeprefix(RUNBOOK_BASE_URL)
                annotations["runbook_url"] = runbook_base_url + anchor
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "ripples", "labels": {"app.kubernetes.io/name": "ripples"}},
        "spec": {"groups": groups},
    }


def render(runbook_base_url: str = RUNBOOK_BASE_URL) -> str:
    return HEADER + yaml.safe_dump(prometheus_rule(runbook_base_url), sort_keys=False, width=100)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the PrometheusRule of the alert rules.")
    parser.add_argument("--runbook-base-url", default=RUNBOOK_BASE_URL)
    TARGET.write_text(render(parser.parse_args().runbook_base_url))
