"""Kubernetes: every overlay renders with kustomize (kubectl kustomize, offline) and its
objects validate against the Kubernetes schemas (kubernetes-validate, strict); the custom
resources (ServiceMonitor, ScaledObject) and the cross-references are checked here."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ripples import stack
from shared.events import APPLICANTS, EMPLOYEES, LINKS, POSTS, RECOGNITIONS
from tests.deploy.pydeps import ROOT, settings_fields

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
KUBERNETES_VERSION = "1.32.0"
SERVICES = {s.name: s for s in stack.ALL_SERVICES}
# Topics each faust app consumes; KEDA must not scale past the smallest partition count.
INPUT_TOPICS = {
    "attribution": (EMPLOYEES, POSTS, LINKS, APPLICANTS),
    # applicants: the erasures (services/notifier/worker.py's applicants agent)
    "notifier": (RECOGNITIONS, EMPLOYEES, APPLICANTS),
}
CUSTOM_KINDS = {"ServiceMonitor", "ScaledObject", "PrometheusRule", "TriggerAuthentication"}

Doc = dict[str, Any]


def render(kubectl: str, folder: Path) -> list[Doc]:
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, kubectl: str) -> tuple[str, list[Doc]]:
    name: str = request.param
    return name, render(kubectl, K8S / "overlays" / name)


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = find(docs, kind, name)
    return doc


def config(docs: list[Doc], name: str = "ripples-config") -> dict[str, str]:
    """The data of a generated ConfigMap (its name carries kustomize's hash suffix)."""
    (configmap,) = [d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith(name)]
    data: dict[str, str] = configmap["data"]
    return data


def test_dev_and_prod_exist() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


def test_objects_validate_against_the_kubernetes_schemas(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    validated = 0
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        validated += 1
    assert validated >= 11


def test_the_schema_validation_is_real(kubectl: str) -> None:
    docs = render(kubectl, K8S / "overlays" / "prod")
    deployment = one(docs, "Deployment", "ingest")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = (
        "/livez"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(find(docs, "ScaledObject")[0], KUBERNETES_VERSION)


def test_every_object_is_in_the_overlay_namespace(overlay: tuple[str, list[Doc]]) -> None:
    name, docs = overlay
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert len(namespaces) == 1
    assert namespaces.pop().startswith("ripples")
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ripples", name


def test_deployments_are_hardened_and_probed(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    configmaps = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in find(docs, "ConfigMap")}
    configmap_name = configmaps["ripples-config"]["metadata"]["name"]
    for service, spec in SERVICES.items():
        deployment = one(docs, "Deployment", service)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
        (container,) = pod["containers"]
        assert container["image"].split("/")[-1].startswith(f"ripples-{service}:")
        assert not container["image"].endswith(":latest")
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        (port,) = container["ports"]
        assert port == {"name": "metrics", "containerPort": spec.port, "protocol": "TCP"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= container["resources"][kind].keys()
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp"
        wanted = [{"configMapRef": {"name": configmap_name}}]
        if f"{service}-config" in configmaps:  # the service's own settings
            own = configmaps[f"{service}-config"]["metadata"]["name"]
            wanted.append({"configMapRef": {"name": own}})
        assert container["envFrom"] == wanted
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        # a value from elsewhere comes from one of the pod's ConfigMaps, never a Secret
        for item in container["env"]:
            if "value" not in item:
                ref = item["valueFrom"]["configMapKeyRef"]
                assert ref["name"] in {c["metadata"]["name"] for c in configmaps.values()}, item
        assert env[f"{service.upper()}_HOST"] == "0.0.0.0"
        assert env[spec.port_variable] == str(spec.port)
        # Secrets arrive as files from the Secret, never as values in the manifests.
        secret_mount = next(p for p, n in mounts.items() if "secret" in volumes[n])
        secret = volumes[mounts[secret_mount]]["secret"]
        keys = {item["key"] for item in secret["items"]}
        assert secret["secretName"] == "ripples-secrets"
        for variable, value in env.items():
            if variable.endswith("_FILE"):
                assert value.startswith(secret_mount + "/")
                assert value.rsplit("/", 1)[1] in keys


def test_every_variable_is_a_setting(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    # the ConfigMaps the containers take their environment from (not the dashboards')
    env_maps = {
        source["configMapRef"]["name"]
        for d in find(docs, "Deployment") + find(docs, "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
        for source in c.get("envFrom", [])
    }
    assert len(env_maps) >= 2
    for key in (
        k for c in find(docs, "ConfigMap") if c["metadata"]["name"] in env_maps for k in c["data"]
    ):
        fields = settings_fields(key.split("_", 1)[0] + "_")
        assert fields is not None
        assert key.split("_", 1)[1] in fields, f"ConfigMap: {key} is not a setting"
    for service in SERVICES:
        (container,) = one(docs, "Deployment", service)["spec"]["template"]["spec"]["containers"]
        for variable in (e["name"] for e in container["env"]):
            prefix = variable.split("_", 1)[0] + "_"
            assert prefix in ("KAFKA_", "DATABASE_", f"{service.upper()}_"), variable
            fields = settings_fields(prefix)
            if fields is not None:  # None: that service is not in this checkout yet
                assert variable.removeprefix(prefix).removesuffix("_FILE") in fields, variable
    assert config(docs)["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert config(docs)["KAFKA_CREATE_TOPICS"] == "false"


def test_services_budgets_and_monitors(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    for service, spec in SERVICES.items():
        pod_labels = one(docs, "Deployment", service)["spec"]["template"]["metadata"]["labels"]
        svc = one(docs, "Service", service)
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        (port,) = svc["spec"]["ports"]
        assert port["name"] == "metrics"
        assert port["port"] == spec.port
        assert port["targetPort"] == "metrics"
        budget = one(docs, "PodDisruptionBudget", service)
        assert budget["spec"]["maxUnavailable"] == 1
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        monitor = one(docs, "ServiceMonitor", service)
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert (
            monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        )
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics"
        assert endpoint["path"] == "/metrics"
        # job = service name, as the alert rules expect
        assert svc["metadata"]["labels"][monitor["spec"]["jobLabel"]] == service


def test_keda_scales_consumers_on_their_group_lag(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    assert {d["metadata"]["name"] for d in find(docs, "ScaledObject")} == set(INPUT_TOPICS)
    for service, topics in INPUT_TOPICS.items():
        scaled = one(docs, "ScaledObject", service)
        assert scaled["apiVersion"] == "keda.sh/v1alpha1"
        assert scaled["spec"]["scaleTargetRef"]["name"] == service
        one(docs, "Deployment", service)
        maximum = scaled["spec"]["maxReplicaCount"]
        assert 1 <= scaled["spec"]["minReplicaCount"] <= maximum
        assert maximum <= min(t.partitions for t in topics), "replicas beyond partitions idle"
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        metadata = trigger["metadata"]
        assert metadata["consumerGroup"] == f"ripples-{service}"  # the faust app id
        assert int(metadata["lagThreshold"]) > 0
        assert metadata["bootstrapServers"] == config(docs)["KAFKA_BOOTSTRAP_SERVERS"]
        assert "topic" not in metadata, "lag of every topic of the group"


def test_topics_job(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    job = one(docs, "Job", "ripples-topics")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ingest_image = one(docs, "Deployment", "ingest")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    assert container["image"] == ingest_image
    code = container["command"][-1]
    assert container["command"][:2] == ["python", "-c"]
    assert "ensure_topics(kafka_settings())" in code
    compile(code, "topics", "exec")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["restartPolicy"] in ("OnFailure", "Never")


def test_images_share_one_pinned_version(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    tags = set()
    for doc in find(docs, "Deployment") + find(docs, "Job"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            tag = container["image"].rsplit(":", 1)[1]
            assert re.fullmatch(r"\d+\.\d+\.\d+", tag), container["image"]
            tags.add(tag)
    assert len(tags) == 1


def test_the_secret_script_creates_the_keys_the_pods_mount(kubectl: str) -> None:
    """deploy/k8s/create-secret.sh (what both READMEs tell the operator to run) creates
    exactly the keys the Deployments and Jobs mount."""
    from tests.deploy import smoke

    docs = render(kubectl, K8S / "overlays" / "prod")
    mounted = {
        item["key"]
        for d in find(docs, "Deployment") + find(docs, "Job")
        for v in d["spec"]["template"]["spec"].get("volumes", [])
        if "secret" in v
        for item in v["secret"]["items"]
    }
    (secret,) = smoke.k8s_secrets(kubectl, "ripples", {})
    assert secret["metadata"] == {
        "name": "ripples-secrets",
        "namespace": "ripples",
        "creationTimestamp": None,
    }
    assert set(secret["data"]) == mounted
    for readme in (ROOT / "README.md", ROOT / "deploy" / "README.md"):
        text = readme.read_text()
        assert "deploy/k8s/create-secret.sh ripples" in text, readme
        assert "kubectl apply -k deploy/k8s/overlays/prod" in text
        assert "deploy/compose/init-secrets.sh" in text
        assert "docker compose up -d --build" in text
    for key in mounted:
        assert f"`{key}`" in (ROOT / "deploy" / "README.md").read_text(), f"{key} undocumented"


def test_grafana_dashboards_are_configmaps_for_the_sidecar(
    overlay: tuple[str, list[Doc]],
) -> None:
    """Each dashboard JSON of deploy/grafana/dashboards is, byte for byte, in one ConfigMap
    labelled grafana_dashboard: "1" (what the Grafana sidecar loads), and only those."""
    _, docs = overlay
    files = (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")
    dashboards = {p.name: p.read_text() for p in files}
    labelled = [
        d for d in find(docs, "ConfigMap") if "grafana_dashboard" in d["metadata"].get("labels", {})
    ]
    assert all(d["metadata"]["labels"]["grafana_dashboard"] == "1" for d in labelled)
    found = {name: text for d in labelled for name, text in d["data"].items()}
    assert sum(len(d["data"]) for d in labelled) == len(found)
    assert found == dashboards
    # A ConfigMap holds at most 1 MiB.
    assert all(len(text.encode()) < 1024 * 1024 for text in found.values())


def test_prometheus_rule_carries_the_alert_rules(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    spec = importlib.util.spec_from_file_location(
        "ripples_prometheusrule", ROOT / "deploy" / "prometheus" / "prometheusrule.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.TARGET.read_text() == module.render(), "run deploy/prometheus/prometheusrule.py"
    # the documented setting: another runbook base rewrites every runbook_url
    elsewhere = module.prometheus_rule("https://wiki.example/ripples-runbook")
    urls = [
        r["annotations"]["runbook_url"] for g in elsewhere["spec"]["groups"] for r in g["rules"]
    ]
    assert urls
    assert all(u.startswith("https://wiki.example/ripples-runbook#ripples") for u in urls)
    rule = one(docs, "PrometheusRule", "ripples")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = [
        group
        for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]
    assert rule["spec"]["groups"] == groups
