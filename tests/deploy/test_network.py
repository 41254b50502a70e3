"""The NetworkPolicy set, evaluated as the NetworkPolicy API defines it (a pod selected by no
policy of a direction is open in that direction; selected pods allow the union of their
policies' rules; a connection needs the source's egress and the destination's ingress) over
the rendered overlays, for the connections that must work and the ones that must not."""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.deploy.pydeps import ROOT

Doc = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)
    ip: str = "10.1.2.3"

    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _peer_matches(peer: Doc, pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(pod.ip)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(c) for c in block.get("except", []))
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], pod.namespace_labels()):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return _selects(peer.get("podSelector", {}), pod.labels)


def _port_matches(rule: Doc, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(
        p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in ports
    )


def _allowed(
    policies: list[Doc], pod: Pod, direction: str, peer: Pod, port: int, protocol: str
) -> bool:
    kind, key, peers = (
        ("Ingress", "ingress", "from") if direction == "in" else ("Egress", "egress", "to")
    )
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and kind in p["spec"].get("policyTypes", ["Ingress"])
        and _selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            if not _port_matches(rule, port, protocol):
                continue
            if peers not in rule or any(
                _peer_matches(x, peer, policy["metadata"]["namespace"]) for x in rule[peers]
            ):
                return True
    return False


def connects(policies: list[Doc], source: Pod, dest: Pod, port: int, protocol: str = "TCP") -> bool:
    return _allowed(policies, source, "out", dest, port, protocol) and _allowed(
        policies, dest, "in", source, port, protocol
    )


@pytest.fixture(scope="module", params=["prod", "dev"])
def cluster(request: pytest.FixtureRequest) -> tuple[list[Doc], str]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / request.param)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    (namespace,) = {d["metadata"]["namespace"] for d in docs}
    return policies, namespace


def ripples(namespace: str, name: str) -> Pod:
    return Pod(namespace, {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "ripples"})


def test_every_pod_is_covered_by_default_deny(cluster: tuple[list[Doc], str]) -> None:
    policies, namespace = cluster
    stranger = Pod(namespace, {"app": "something-else"})
    attacker = Pod("default", {"app": "shell"})
    assert not connects(policies, attacker, stranger, 80)
    assert not connects(policies, stranger, Pod("elsewhere", {}, ip="10.9.9.9"), 443)


CASES = [
    # (source, destination, port, allowed)
    (("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}), "ingest", 8080, True),
    (("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}), "attribution", 8081, False),
    (("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}), "notifier", 8082, False),
    (("monitoring", {"app.kubernetes.io/name": "prometheus"}), "ingest", 8080, True),
    (("monitoring", {"app.kubernetes.io/name": "prometheus"}), "attribution", 8081, True),
    (("monitoring", {"app.kubernetes.io/name": "prometheus"}), "notifier", 8082, True),
    (("monitoring", {"app.kubernetes.io/name": "grafana"}), "attribution", 8081, True),
    (("monitoring", {"app.kubernetes.io/name": "grafana"}), "notifier", 8082, True),
    (("monitoring", {"app.kubernetes.io/name": "alertmanager"}), "attribution", 8081, False),
    (("reports", {"ripples.io/client": "attribution"}), "attribution", 8081, True),
    (("reports", {"ripples.io/client": "attribution"}), "notifier", 8082, False),
    (("reports", {"ripples.io/client": "notifier"}), "notifier", 8082, True),
    (("default", {"app": "shell"}), "attribution", 8081, False),
    (("default", {"app": "shell"}), "notifier", 8082, False),
    (("default", {"app": "shell"}), "ingest", 8080, False),
    (("monitoring", {"app.kubernetes.io/name": "prometheus"}), "attribution", 5432, False),
]


@pytest.mark.parametrize(("source", "dest", "port", "allowed"), CASES)
def test_who_reaches_the_services(
    cluster: tuple[list[Doc], str],
    source: tuple[str, dict[str, str]],
    dest: str,
    port: int,
    allowed: bool,
) -> None:
    policies, namespace = cluster
    assert connects(policies, Pod(*source), ripples(namespace, dest), port) is allowed


# The paths between the services that exist, each for one reason; every other stays closed.
SERVICE_PATHS = {
    ("notifier", "attribution"),
    ("ingest", "attribution"),
    ("attribution", "ingest"),  # the keys of sealed records
    ("notifier", "ingest"),  # the keys of sealed records
}


@pytest.mark.parametrize("source", ["ingest", "attribution", "notifier"])
def test_services_do_not_reach_each_other(cluster: tuple[list[Doc], str], source: str) -> None:
    policies, namespace = cluster
    for dest, port in (("ingest", 8080), ("attribution", 8081), ("notifier", 8082)):
        if dest != source and (source, dest) not in SERVICE_PATHS:
            assert not connects(
                policies, ripples(namespace, source), ripples(namespace, dest), port
            )


def test_the_notifier_reaches_attribution_for_the_scheduled_report(
    cluster: tuple[list[Doc], str],
) -> None:
    """The notifier fetches the report's PDF and share link (port 8081)."""
    policies, namespace = cluster
    notifier, attribution = ripples(namespace, "notifier"), ripples(namespace, "attribution")
    assert connects(policies, notifier, attribution, 8081)
    assert not connects(policies, notifier, attribution, 5432)
    assert not connects(policies, attribution, notifier, 8082)


def test_ingest_reaches_attribution_for_the_employees_page(
    cluster: tuple[list[Doc], str],
) -> None:
    """The employee's page (/me/{token}) fetches their figures from attribution's API
    (port 8081), and nothing else of attribution."""
    policies, namespace = cluster
    ingest, attribution = ripples(namespace, "ingest"), ripples(namespace, "attribution")
    assert connects(policies, ingest, attribution, 8081)
    assert not connects(policies, ingest, attribution, 5432)


def test_the_consumers_reach_ingest_for_the_keys_of_sealed_records(
    cluster: tuple[list[Doc], str],
) -> None:
    """Attribution and the notifier ask ingest's key API (port 8080, POST /v1/keys:lookup;
    docs/security.md "Topics"), and nothing else of ingest; ingest does not call the
    notifier. Failed before the policies allowed it (attribution had no egress rule)."""
    policies, namespace = cluster
    ingest = ripples(namespace, "ingest")
    for name in ("attribution", "notifier"):
        consumer = ripples(namespace, name)
        assert connects(policies, consumer, ingest, 8080), name
        assert not connects(policies, consumer, ingest, 5432), name
    assert not connects(policies, ingest, ripples(namespace, "notifier"), 8082)


@pytest.mark.parametrize(
    "name", ["ingest", "attribution", "notifier", "ripples-topics", "ripples-migrate"]
)
def test_ripples_pods_reach_dns_kafka_and_postgres(
    cluster: tuple[list[Doc], str], name: str
) -> None:
    policies, namespace = cluster
    pod = ripples(namespace, name)
    dns = Pod("kube-system", {"k8s-app": "kube-dns"})
    assert connects(policies, pod, dns, 53, "UDP")
    assert connects(policies, pod, dns, 53, "TCP")
    kafka = Pod("ripples-kafka", {"app": "kafka"}, ip="10.20.0.4")
    assert connects(policies, pod, kafka, 9092)
    database = Pod("databases", {"app": "postgres"}, ip="10.30.0.5")
    assert connects(policies, pod, database, 5432)
    assert not connects(policies, pod, Pod("kube-system", {"k8s-app": "other"}), 53, "UDP")


@pytest.mark.parametrize(
    ("ip", "port", "allowed"),
    [
        ("203.0.113.10", 443, True),  # a public address: Slack, Teams, a webhook receiver
        ("203.0.113.10", 80, False),  # https only
        # e-mail: SMTP submission (587 STARTTLS, 465 implicit TLS) to a public relay, never
        # port 25 nor a private address
        ("203.0.113.10", 587, True),
        ("203.0.113.10", 465, True),
        ("203.0.113.10", 25, False),
        ("203.0.113.10", 2525, False),
        ("10.0.0.1", 587, False),
        ("169.254.169.254", 465, False),
        ("169.254.169.254", 443, False),  # cloud metadata
        ("10.0.0.1", 443, False),
        ("172.16.5.5", 443, False),
        ("192.168.1.1", 443, False),
        ("127.0.0.1", 443, False),
    ],
)
def test_notifier_goes_out_only_on_443_and_smtp_to_public_addresses(
    cluster: tuple[list[Doc], str], ip: str, port: int, allowed: bool
) -> None:
    policies, namespace = cluster
    outside = Pod("", {}, ip=ip)
    assert (
        _allowed(policies, ripples(namespace, "notifier"), "out", outside, port, "TCP") is allowed
    )


def test_attribution_does_not_go_out(cluster: tuple[list[Doc], str]) -> None:
    policies, namespace = cluster
    outside = Pod("", {}, ip="203.0.113.10")
    assert not _allowed(policies, ripples(namespace, "attribution"), "out", outside, 443, "TCP")


def test_the_evaluator_is_real() -> None:
    """Without policies everything connects; a default deny stops it."""
    a, b = Pod("x", {"app": "a"}), Pod("x", {"app": "b"})
    assert connects([], a, b, 80)
    deny = {
        "metadata": {"namespace": "x"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    assert not connects([deny], a, b, 80)
