"""``kubectl apply -k`` of the base and every overlay against a real API server.

The cluster (``cluster.py``) is one per module: the base is applied first, then each
overlay on top, as the README says to. After each apply: every object the
kustomization renders is in namespace ``kva`` and nothing of kva's lands anywhere
else, Deployments and StatefulSets roll out, every HPA and ScaledObject targets a
workload that exists, and the GPU overlay's model servers run only on the GPU node.
Broken copies of ``k8s/`` (a missing namespace, a selector that does not match) fail.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.real.cluster import GPU_LABEL, Cluster, keda_scaledobject_crd, missing_tools
from tests.deploy.validate import KEDA_SCHEMA, NAMESPACE, ROOT, WORKLOADS, kustomize_build
from tests.support.process import starts_processes

#: Objects the cluster makes itself outside ``kva`` (not kva's).
SYSTEM = {("Service", "default", "kubernetes")}
CHECKED_KINDS = "deployments,statefulsets,services,configmaps,horizontalpodautoscalers,ingresses"
OVERLAYS = ["hpa", "zookeeper", "ingress", "gpu"]


@pytest.fixture(scope="module")
@starts_processes
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    missing = missing_tools()
    assert not missing, f"not installed (make test-deploy builds them): {missing}"
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running.start()
    finally:
        running.stop()


def misplaced(cluster: Cluster, kinds: str = CHECKED_KINDS) -> list[str]:
    """kva objects outside namespace ``kva`` (ConfigMaps the cluster copies into each excepted)."""
    found = []
    for item in cluster.get(kinds):
        meta = item["metadata"]
        key = (item["kind"], meta["namespace"], meta["name"])
        if meta["namespace"] == NAMESPACE or key in SYSTEM or meta["name"] == "kube-root-ca.crt":
            continue
        if meta["namespace"] == "kube-system":
            continue
        found.append("/".join(key))
    return found


def absent(cluster: Cluster, objects: list[dict[str, Any]]) -> list[str]:
    """Rendered namespaced objects the API server does not have in ``kva``."""
    names = {
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["kind"] not in {"Namespace", "PersistentVolume"}
    }
    have = {
        (i["kind"], i["metadata"]["name"])
        for i in cluster.get(CHECKED_KINDS + _extra_kinds(objects))
        if i["metadata"]["namespace"] == NAMESPACE
    }
    kinds = (CHECKED_KINDS + _extra_kinds(objects)).split(",")
    checked = {n for n in names if any(k.startswith(n[0].lower()) for k in kinds)}
    return sorted(f"{k}/{n}" for k, n in checked - have)


def _extra_kinds(objects: list[dict[str, Any]]) -> str:
    return ",scaledobjects.keda.sh" if any(o["kind"] == "ScaledObject" for o in objects) else ""


def roll_out(cluster: Cluster, objects: list[dict[str, Any]], timeout: float = 90) -> None:
    """Wait until every Deployment and StatefulSet of ``objects`` has rolled out.

    No container runs on a kwok node, so a pod being deleted would wait out its whole grace
    period (30 s for Kafka, once per StatefulSet update); like a kubelet whose containers
    have stopped, :meth:`Cluster.finish_terminating` ends such pods while we wait.
    """
    for obj in objects:
        if obj["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        name = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        deadline = time.monotonic() + timeout
        while True:
            done = cluster.kubectl(
                "rollout", "status", "-n", NAMESPACE, name, "--timeout=3s", check=False
            )
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                state = cluster.kubectl(
                    "get", "pods,replicasets,hpa", "-n", NAMESPACE, "-o", "wide"
                )
                raise AssertionError(
                    f"{name} did not roll out in {timeout:.0f} s:\n"
                    f"{done.stdout}{done.stderr}\n{state.stdout}"
                )
            cluster.finish_terminating(NAMESPACE)


def dangling_targets(cluster: Cluster, objects: list[dict[str, Any]]) -> list[str]:
    """HPAs and ScaledObjects whose target workload is not in the cluster."""
    live = {
        (i["kind"], i["metadata"]["namespace"], i["metadata"]["name"])
        for i in cluster.get("deployments,statefulsets")
    }
    kinds = "horizontalpodautoscalers" + _extra_kinds(objects)
    errors = []
    for scaler in cluster.get(kinds):
        target = scaler["spec"]["scaleTargetRef"]
        key = (target.get("kind", "Deployment"), scaler["metadata"]["namespace"], target["name"])
        if key not in live:
            errors.append(f"{scaler['kind']}/{scaler['metadata']['name']} -> {key}")
    return errors


def apply(cluster: Cluster, directory: Path) -> list[dict[str, Any]]:
    objects = kustomize_build(directory)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(directory))
    return objects


def assert_deployed(cluster: Cluster, objects: list[dict[str, Any]]) -> None:
    assert misplaced(cluster) == []
    assert absent(cluster, objects) == []
    roll_out(cluster, objects)
    assert dangling_targets(cluster, objects) == []


def test_the_base_applies_and_rolls_out(cluster: Cluster) -> None:
    assert_deployed(cluster, apply(cluster, ROOT / "k8s" / "base"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_applies_on_top(cluster: Cluster, overlay: str) -> None:
    assert_deployed(cluster, apply(cluster, ROOT / "k8s" / "overlays" / overlay))


def test_the_keda_overlay_applies_once_the_keda_crd_is_installed(cluster: Cluster) -> None:
    keda = ROOT / "k8s" / "overlays" / "keda"
    refused = cluster.kubectl("apply", "--server-side", "-k", str(keda), check=False)
    assert refused.returncode != 0
    assert "ScaledObject" in refused.stderr, refused.stderr
    cluster.apply_objects([keda_scaledobject_crd(KEDA_SCHEMA)])
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=60s"
    )
    objects = apply(cluster, keda)
    assert_deployed(cluster, objects)
    assert {o["metadata"]["name"] for o in cluster.get("scaledobjects.keda.sh")} == {
        "model-server",
        "consumer",
    }


def test_gpu_model_servers_run_only_on_the_gpu_node(cluster: Cluster) -> None:
    assert_deployed(cluster, apply(cluster, ROOT / "k8s" / "overlays" / "gpu"))
    nodes = {i["metadata"]["name"]: i for i in cluster.get("nodes")}
    pods = [
        p
        for p in cluster.get("pods", "-l", "app.kubernetes.io/name=model-server")
        if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]
    ]
    assert pods, "no model-server pod runs"
    for pod in pods:
        node = nodes[pod["spec"]["nodeName"]]
        assert node["metadata"]["labels"].get(GPU_LABEL) == "true", pod["metadata"]["name"]
    others = [
        p
        for p in cluster.get("pods", "-n", NAMESPACE)
        if "model-server" not in p["metadata"]["name"]
    ]
    assert any(p["spec"].get("nodeName") == "kwok-cpu" for p in others)


# --- broken copies ---------------------------------------------------------------


@pytest.fixture
def broken_k8s(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s")
    return tmp_path / "k8s"


def test_an_overlay_without_its_namespace_is_caught(cluster: Cluster, broken_k8s: Path) -> None:
    kustomization = broken_k8s / "overlays" / "hpa" / "kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    del data["namespace"]
    kustomization.write_text(yaml.safe_dump(data))
    objects = apply(cluster, broken_k8s / "overlays" / "hpa")
    try:
        assert misplaced(cluster, "horizontalpodautoscalers") != []
        assert dangling_targets(cluster, objects) != []
    finally:
        cluster.kubectl("delete", "hpa", "--all", "-n", "default")


def test_a_deployment_whose_selector_does_not_match_is_refused(
    cluster: Cluster, broken_k8s: Path
) -> None:
    viewer = broken_k8s / "base" / "viewer.yaml"
    docs = list(yaml.safe_load_all(viewer.read_text()))
    deployment = next(d for d in docs if d["kind"] in WORKLOADS)
    deployment["metadata"]["name"] = "viewer-broken"
    deployment["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "not-the-viewer"}
    viewer.write_text(yaml.safe_dump_all(docs))
    with pytest.raises(AssertionError, match="selector.*does not match|`selector` does not match"):
        apply(cluster, broken_k8s / "base")
