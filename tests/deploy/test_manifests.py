"""deploy/k8s without a cluster: every document against the Kubernetes JSON schemas that
kubernetes-validate ships (strict: an unknown or misspelt field fails), the CRD objects (KEDA,
Prometheus Operator) against their documented fields and against what /metrics really exports,
the kustomizations against the files on disk, the containers' args through the real CLI parser,
and the worker's grace against WORKER_SHUTDOWN_GRACE_S."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import redis.asyncio as aioredis
import yaml
from kubernetes_validate.utils import latest_version

from graphworks_core.clock import SystemClock
from graphworks_core.payloads import PAYLOAD_MODELS
from graphworks_core.settings import Settings
from ops.metrics import families, metrics_router
from tests.deploy.files import (
    DEPLOY,
    K8S,
    Doc,
    deployment_running,
    docs,
    graphworks_containers,
    of_kind,
    option,
    parse_command,
    setting_names,
)
from webhooks.app import HEALTH_PATH, LIFECYCLE_PATH, NOTIFY_PATH
from worker.alerts import AlertsConfig
from worker.config_file import load_file_config
from worker.metrics_data import ClusterNumbers, TypeDepth

# The oldest Kubernetes the manifests promise to fit (unhealthyPodEvictionPolicy is 1.27+), and
# the newest schemas the installed kubernetes-validate has.
KUBERNETES_VERSIONS = ("1.29", latest_version())
CRDS = {("keda.sh/v1alpha1", "ScaledObject"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule")}  # fmt: skip
KUSTOMIZE = "kustomize.config.k8s.io/v1beta1"


def kubernetes_objects() -> list[Doc]:
    return [d for d in docs() if d.body["apiVersion"] != KUSTOMIZE and (d.body["apiVersion"], d.kind) not in CRDS]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_fits_the_kubernetes_schemas(version: str) -> None:
    objects = kubernetes_objects()
    for d in objects:
        try:
            kubernetes_validate.validate(d.body, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = f"{d.where()} against Kubernetes {version}"
            raise AssertionError(f"{where}: {exc.message} at {list(exc.path)}") from exc
    kinds = {d.kind for d in objects}
    assert kinds >= {"Deployment", "Service", "Ingress", "PodDisruptionBudget", "ConfigMap", "Secret", "StatefulSet"}


def test_only_known_custom_resources() -> None:
    """Every document is Kubernetes' own (validated above), a kustomization, or a CRD tested here."""
    custom = {(d.body["apiVersion"], d.kind) for d in docs()} - {(d.body["apiVersion"], d.kind) for d in
                                                                  kubernetes_objects()}  # fmt: skip
    assert custom == CRDS | {(KUSTOMIZE, "Kustomization")}


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def test_kustomizations_list_every_file_and_every_file_exists() -> None:
    reached: set[Path] = set()
    for k in kustomizations():
        body = yaml.safe_load(k.read_text())
        assert body["apiVersion"] == KUSTOMIZE and body["kind"] == "Kustomization", k
        for entry in body.get("resources", []):
            target = (k.parent / entry).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{k}: {entry} does not exist"
            reached.add(target)
        here = {p.resolve() for p in k.parent.glob("*.yaml")} - {k.resolve()}
        assert here <= reached, f"{k} does not list {sorted(p.name for p in here - reached)}"
    every = {p.resolve() for p in K8S.rglob("*.yaml")} - {k.resolve() for k in kustomizations()}
    templates = {p for p in every if p.name.endswith(".example.yaml")}  # filled in out of band, never applied
    assert every - templates <= reached, sorted(str(p) for p in every - templates - reached)
    assert templates == {(K8S / "secret.example.yaml").resolve()}


def base_objects() -> list[dict[str, Any]]:
    base = K8S / "base"
    body = yaml.safe_load((base / "kustomization.yaml").read_text())
    return [o for r in body["resources"] for o in yaml.safe_load_all((base / r).read_text()) if o]


def sentinel_patches() -> list[dict[str, Any]]:
    body = yaml.safe_load((K8S / "sentinel" / "kustomization.yaml").read_text())
    assert body["resources"] == ["../base"]
    return list(body["patches"])


def test_the_sentinel_overlay_patches_what_the_base_has() -> None:
    """Each patch's target is in the base, each JSON patch's path resolves there, and the base's
    Redis objects (and only they) are deleted."""
    objects = base_objects()
    deleted = set()
    for patch in sentinel_patches():
        body = yaml.safe_load(patch["patch"])
        if isinstance(body, dict):  # strategic merge: here only `$patch: delete`
            assert body.pop("$patch") == "delete"
            key = (body["kind"], body["metadata"]["name"])
            assert key in {(o["kind"], o["metadata"]["name"]) for o in objects}, key
            deleted.add(key)
            continue
        target = patch["target"]
        matched = [o for o in objects if o["kind"] == target["kind"]
                   and re.fullmatch(target["name"], o["metadata"]["name"])]  # fmt: skip
        assert matched, target
        for op in body:
            parent, _, last = op["path"].rpartition("/")
            for o in matched:
                container = _pointer(o, parent)
                if op["op"] == "remove":
                    assert last in container, (op, o["metadata"]["name"])
                else:
                    into_list = last == "-" and isinstance(container, list)
                    assert op["op"] == "add" and (into_list or isinstance(container, dict)), op
    redis = {(o["kind"], o["metadata"]["name"]) for o in objects
             if o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "redis"}  # fmt: skip
    assert deleted == redis and redis


def test_the_sentinel_overlays_environment_loads_as_settings() -> None:
    (cm,) = [o for o in base_objects() if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "graphworks-env"]
    env = dict(cm["data"])
    for patch in sentinel_patches():
        if patch.get("target", {}).get("name") == "graphworks-env":
            for op in yaml.safe_load(patch["patch"]):
                key = op["path"].removeprefix("/data/")
                if op["op"] == "remove":
                    del env[key]
                else:
                    env[key] = op["value"]
    fields = {name.upper(): name for name in Settings.model_fields}
    settings = Settings(**{fields[k]: v for k, v in env.items() if k in fields})  # REDIS_URL and sentinels exclude
    assert settings.redis_url is None and settings.redis_sentinel_master and settings.sentinel_addresses


def _pointer(doc: Any, path: str) -> Any:
    for part in [p for p in path.split("/") if p]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def env_names_in_manifests() -> set[str]:
    """Every variable the manifests hand a graphworks container: ConfigMap graphworks-env's keys,
    the Secrets' keys, container env (and the Secret keys they read), the sentinel patches' adds."""
    names: set[str] = set()
    for d in of_kind("ConfigMap"):
        if d.name == "graphworks-env":
            names |= set(d.body["data"])
    for d in of_kind("Secret"):
        names |= set(d.body.get("stringData", {})) | set(d.body.get("data", {}))
    for d in of_kind("Deployment"):
        for c in graphworks_containers(d):
            for e in c.get("env", []):
                names.add(e["name"])
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["key"])
    for patch in sentinel_patches():
        for op in yaml.safe_load(patch["patch"]) if patch.get("target") else []:
            if op["op"] == "add" and op["path"].startswith("/data/"):
                names.add(op["path"].removeprefix("/data/"))
            elif op["op"] == "add":
                names |= {op["value"]["name"], op["value"]["valueFrom"]["secretKeyRef"]["key"]}
    return names


def test_every_variable_in_the_manifests_is_a_setting() -> None:
    names = env_names_in_manifests()
    assert {"REDIS_URL", "REDIS_SENTINELS", "VIEWER_TOKEN", "WORKER_SHUTDOWN_GRACE_S"} <= names  # found at all
    assert names - setting_names() == set()


def test_every_container_command_parses_in_the_cli() -> None:
    seen = set()
    for d in of_kind("Deployment"):
        for c in graphworks_containers(d):
            path, _ = parse_command(c["args"])
            seen.add(" ".join(path[1:]))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                command = c.get(probe, {}).get("exec", {}).get("command")
                if command and command[0] == "graphworks":
                    parse_command(command[1:])
    assert seen == {"worker", "serve"}


def test_a_renamed_option_fails_the_parse() -> None:
    import click

    with pytest.raises(click.UsageError):
        parse_command(["serve", "--rolle", "api"])
    with pytest.raises(click.UsageError):
        parse_command(["serve", "--role", "receiver"])
    assert parse_command(["serve", "--role", "api", "--port", "8080"])[1]["role"] == "api"


def service_for(deployment: Doc) -> Doc:
    labels = deployment.body["spec"]["template"]["metadata"]["labels"]
    found = [s for s in of_kind("Service") if s.body["spec"]["selector"].items() <= labels.items()]
    assert len(found) == 1, (deployment.where(), [s.where() for s in found])
    return found[0]


@pytest.mark.parametrize("role", ["webhooks", "api"])
def test_serve_roles_listen_where_their_service_and_probes_say(role: str) -> None:
    d = deployment_running("serve", role)
    (c,) = graphworks_containers(d)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == int(option(c["args"], "--port"))
    assert c["readinessProbe"]["httpGet"] == {"path": HEALTH_PATH, "port": "http"}
    assert d.body["spec"]["replicas"] >= 2  # a PodDisruptionBudget of minAvailable 1 leaves a drain room
    service = service_for(d)
    assert service.body["spec"]["type"] == "ClusterIP"
    assert [p["targetPort"] for p in service.body["spec"]["ports"]] == ["http"]


def test_the_ingress_routes_graph_to_the_webhooks_role_only() -> None:
    (ingress,) = of_kind("Ingress")
    webhooks = service_for(deployment_running("serve", "webhooks")).name
    paths = [p for rule in ingress.body["spec"]["rules"] for p in rule["http"]["paths"]]
    assert sorted(p["path"] for p in paths) == sorted([NOTIFY_PATH, LIFECYCLE_PATH])
    assert {p["pathType"] for p in paths} == {"Exact"}
    assert {p["backend"]["service"]["name"] for p in paths} == {webhooks}
    hosts = {rule["host"] for rule in ingress.body["spec"]["rules"]}
    assert hosts <= {h for tls in ingress.body["spec"]["tls"] for h in tls["hosts"]}  # HTTPS only
    (env,) = [d for d in of_kind("ConfigMap") if d.name == "graphworks-env"]
    assert {urlsplit(env.body["data"]["WEBHOOK_PUBLIC_URL"]).hostname} == hosts  # what subscriptions tell Graph


def test_every_deployment_has_a_disruption_budget() -> None:
    budgets = of_kind("PodDisruptionBudget")
    for d in of_kind("Deployment"):
        labels = d.body["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if b.body["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(mine) == 1, d.where()
    worker = next(b for b in budgets if b.name == deployment_running("worker").name)
    # maxUnavailable, not minAvailable: a lone worker (KEDA's minimum) can still be drained.
    assert worker.body["spec"]["maxUnavailable"] == 1 and "minAvailable" not in worker.body["spec"]


def worker_env(name: str) -> str | None:
    (c,) = graphworks_containers(deployment_running("worker"))
    return next((e["value"] for e in c.get("env", []) if e["name"] == name), None)


def test_worker_grace_exceeds_worker_shutdown_grace() -> None:
    pod = deployment_running("worker").body["spec"]["template"]["spec"]
    default = Settings.model_fields["worker_shutdown_grace_s"].default
    grace = float(worker_env("WORKER_SHUTDOWN_GRACE_S") or default)
    # Kubernetes SIGKILLs after terminationGracePeriodSeconds: the worker needs its grace plus time
    # to hand the rest back and exit.
    assert pod["terminationGracePeriodSeconds"] >= grace + 10
    assert pod["terminationGracePeriodSeconds"] > default


def test_keda_scales_the_worker_on_the_ready_now_gauge() -> None:
    (so,) = of_kind("ScaledObject")
    assert so.body["apiVersion"] == "keda.sh/v1alpha1"
    spec = so.body["spec"]
    assert spec["scaleTargetRef"]["name"] == deployment_running("worker").name
    assert spec.get("scaleTargetRef", {}).get("kind", "Deployment") == "Deployment"
    assert spec["minReplicaCount"] >= 1  # workers promote retries: with none, nothing becomes ready
    assert spec["maxReplicaCount"] >= spec["minReplicaCount"]
    assert [t["type"] for t in spec["triggers"]] == ["prometheus"]  # not a redis list/zset trigger
    meta = spec["triggers"][0]["metadata"]
    assert set(meta) <= {"serverAddress", "query", "threshold", "activationThreshold", "ignoreNullValues",
                         "namespace", "customHeaders", "unsafeSsl", "queryParameters"}  # fmt: skip
    assert re.fullmatch(r"https?://[^/\s]+(/\S*)?", meta["serverAddress"])
    max_jobs = worker_env("WORKER_MAX_JOBS") or Settings.model_fields["worker_max_jobs"].default
    assert int(meta["threshold"]) == int(max_jobs)
    (metric,) = set(re.findall(r"\bgraphworks_[a-z_]+\b", meta["query"]))
    # Each api pod exports the same cluster-wide numbers: one scrape per pod must not add up.
    assert re.search(rf"max by \(type\) \({metric}\)", meta["query"]), meta["query"]
    # The metric is one /metrics exports, and counts ready-now jobs alone: of 20 due, 3 running,
    # 2 parked (paused type), none of the 50 deferred.
    t = sorted(PAYLOAD_MODELS)[0]
    depth = {name: TypeDepth() for name in PAYLOAD_MODELS}
    depth[t] = TypeDepth(queued=20, scheduled=50, running=3, parked=2)
    numbers = ClusterNumbers(now=0.0, counters={}, graph={}, webhooks={}, depth=depth, queued_total=20,
                             scheduled_total=50, dead_letters={}, dead_letters_unreviewed=0, dead_letters_total=0,
                             workers=1, workers_last_seen_at=None, soonest_subscription_expiry=None)  # fmt: skip
    exported = {f.name: f for f in families(numbers, [])}
    assert metric in exported, f"{metric} is not among /metrics' families {sorted(exported)}"
    assert exported[metric].type == "gauge"
    assert {s.labels["type"]: s.value for s in exported[metric].samples if s.value} == {t: 15}


def test_the_servicemonitor_scrapes_the_api_role_with_the_viewer_token() -> None:
    (sm,) = of_kind("ServiceMonitor")
    assert sm.body["apiVersion"] == "monitoring.coreos.com/v1"
    api = deployment_running("serve", "api")
    service = service_for(api)
    assert sm.body["spec"]["selector"]["matchLabels"].items() <= service.body["metadata"]["labels"].items()
    wanted = sm.body["spec"]["selector"]["matchLabels"].items()
    other = [s for s in of_kind("Service") if s.name != service.name and wanted <= s.body["metadata"]["labels"].items()]
    assert not other, [s.where() for s in other]  # the webhooks role has no /metrics
    (endpoint,) = sm.body["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service.body["spec"]["ports"]}
    paths = {r.path for r in metrics_router(aioredis.Redis(), AlertsConfig(), SystemClock()).routes}
    assert endpoint["path"] in paths
    auth = endpoint["authorization"]
    assert auth["type"] == "Bearer"
    (c,) = graphworks_containers(api)
    viewer = next(e for e in c["env"] if e["name"] == "VIEWER_TOKEN")["valueFrom"]["secretKeyRef"]
    assert (auth["credentials"]["name"], auth["credentials"]["key"]) == (viewer["name"], viewer["key"])
    (secret,) = [s for s in of_kind("Secret") if s.name == viewer["name"]]
    assert set(secret.body["stringData"]) == {"VIEWER_TOKEN"}  # Prometheus reads no other secret


def test_the_prometheusrule_is_alerts_yaml() -> None:
    (rule,) = of_kind("PrometheusRule")
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    assert rule.body["spec"]["groups"] == alerts["groups"], "copy deploy/prometheus/alerts.yaml's groups into it"


def test_the_toml_copies_are_one_and_load() -> None:
    (cm,) = [d for d in of_kind("ConfigMap") if d.name == "graphworks-config"]
    in_k8s = cm.body["data"]["graphworks.toml"]
    compose = (DEPLOY / "graphworks.toml").read_text()
    assert tomllib.loads(in_k8s) == tomllib.loads(compose)
    load_file_config(DEPLOY / "graphworks.toml")  # raises ConfigError naming a bad table or field
