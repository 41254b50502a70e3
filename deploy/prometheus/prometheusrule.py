"""Writes deploy/k8s/base/prometheus-rules.yaml: the alert rules of
deploy/prometheus/rules/ as a PrometheusRule for the Prometheus Operator (committed; a test
checks it holds exactly the same groups).

    python deploy/prometheus/prometheusrule.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent / "k8s" / "base" / "prometheus-rules.yaml"
HEADER = (
    "# Generated from deploy/prometheus/rules/*.yml by deploy/prometheus/prometheusrule.py;\n"
    "# edit the rules there and run it again.\n"
)


def prometheus_rule() -> dict[str, Any]:
    groups = [
        group
        for path in sorted((HERE / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "ripples", "labels": {"app.kubernetes.io/name": "ripples"}},
        "spec": {"groups": groups},
    }


def render() -> str:
    return HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=100)


if __name__ == "__main__":
    TARGET.write_text(render())
