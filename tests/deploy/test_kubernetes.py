"""Every kustomization renders and validates strictly offline; broken copies fail."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.real.cluster import VOLUME_GIB
from tests.deploy.test_compose import _parse_error, _require_commands
from tests.deploy.validate import (
    ROOT,
    consistency_errors,
    kubernetes_errors,
    kubernetes_kva_commands,
    kustomizations,
    kustomize_build,
)
from tests.support.process import starts_processes

KUSTOMIZATIONS = kustomizations()


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT / "k8s")) for p in paths]


@pytest.fixture(scope="module")
@starts_processes  # kustomize build
def rendered() -> dict[Path, list[dict]]:
    return {path: kustomize_build(path) for path in KUSTOMIZATIONS}


def test_there_are_the_promised_variants() -> None:
    names = set(_ids(KUSTOMIZATIONS))
    assert {
        "base",
        "overlays/keda",
        "overlays/hpa",
        "overlays/zookeeper",
        "overlays/gpu",
        "overlays/ingress",
    } <= names


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=_ids(KUSTOMIZATIONS))
def test_rendered_objects_validate_strictly(path: Path, rendered) -> None:  # type: ignore[no-untyped-def]
    assert kubernetes_errors(rendered[path]) == []


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=_ids(KUSTOMIZATIONS))
def test_every_container_is_bounded_and_non_root(path: Path, rendered) -> None:  # type: ignore[no-untyped-def]
    for obj in rendered[path]:
        pod = ((obj.get("spec") or {}).get("template") or {}).get("spec")
        if pod is None:
            continue
        assert pod["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{obj['metadata']['name']}/{container['name']}"
            assert {"requests", "limits"} <= set(container.get("resources", {})), where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where


def test_autoscaling_uses_frame_metrics_not_kafka_lag(rendered) -> None:  # type: ignore[no-untyped-def]
    scaled = [o for o in rendered[ROOT / "k8s/overlays/keda"] if o["kind"] == "ScaledObject"]
    assert {o["spec"]["scaleTargetRef"]["name"] for o in scaled} == {"model-server", "consumer"}
    triggers = [t for o in scaled for t in o["spec"]["triggers"]]
    assert all(t["type"] == "prometheus" for t in triggers)
    hpas = [
        o for o in rendered[ROOT / "k8s/overlays/hpa"] if o["kind"] == "HorizontalPodAutoscaler"
    ]
    assert {o["apiVersion"] for o in hpas} == {"autoscaling/v2"}


def test_viewer_is_on_node_port_30163(rendered) -> None:  # type: ignore[no-untyped-def]
    services = [o for o in rendered[ROOT / "k8s/base"] if o["kind"] == "Service"]
    viewer = next(s for s in services if s["metadata"]["name"] == "viewer")
    assert viewer["spec"]["type"] == "NodePort"
    assert viewer["spec"]["ports"][0]["nodePort"] == 30163


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=_ids(KUSTOMIZATIONS))
def test_container_commands_are_kva_commands_the_cli_accepts(path: Path, rendered) -> None:  # type: ignore[no-untyped-def]
    _require_commands([argv for _name, argv in kubernetes_kva_commands(rendered[path])])
    errors = {
        name: err
        for name, argv in kubernetes_kva_commands(rendered[path])
        if (err := _parse_error(argv))
    }
    assert errors == {}


def _break(objects: list[dict], kind: str, name: str, mutate) -> list[dict]:  # type: ignore[no-untyped-def]
    broken = copy.deepcopy(objects)
    mutate(next(o for o in broken if o["kind"] == kind and o["metadata"]["name"] == name))
    return broken


@pytest.mark.parametrize(
    ("kind", "name", "mutate", "expected"),
    [
        (
            "Deployment",
            "model-server",
            lambda o: o["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
                containerPort="http"
            ),
            "containerPort",
        ),
        ("Deployment", "consumer", lambda o: o["spec"].update(replicaz=2), "replicaz"),
        (
            "Service",
            "viewer",
            lambda o: o["spec"]["ports"][0].update(nodePort="30163x"),
            "nodePort",
        ),
    ],
)
def test_strict_validation_catches_a_broken_manifest(
    rendered, kind, name, mutate, expected
) -> None:  # type: ignore[no-untyped-def]
    errors = kubernetes_errors(_break(rendered[ROOT / "k8s/base"], kind, name, mutate))
    assert any(expected in e for e in errors), errors


def test_keda_schema_catches_a_misspelt_trigger(rendered) -> None:  # type: ignore[no-untyped-def]
    objects = rendered[ROOT / "k8s/overlays/keda"]
    broken = _break(objects, "ScaledObject", "consumer", lambda o: o["spec"].update(maxReplicas=4))
    assert any("maxReplicas" in e for e in kubernetes_errors(broken))


def test_unknown_kinds_are_failures_not_warnings(rendered) -> None:  # type: ignore[no-untyped-def]
    unknown = [{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}]
    assert kubernetes_errors(unknown) == ["Widget/w: no schema for this kind in Kubernetes 1.32"]


@pytest.mark.subprocess
def test_a_broken_kustomization_fails_to_render(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s")
    kustomization = tmp_path / "k8s/base/kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    data["resources"].append("missing.yaml")
    kustomization.write_text(yaml.safe_dump(data))
    with pytest.raises(RuntimeError, match="missing.yaml"):
        kustomize_build(tmp_path / "k8s/base")


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=_ids(KUSTOMIZATIONS))
def test_objects_are_in_kva_with_matching_selectors_and_existing_targets(
    path: Path, rendered: dict[Path, list[dict]]
) -> None:
    assert consistency_errors(rendered[path]) == []


def _without_namespace(o: dict) -> None:
    del o["metadata"]["namespace"]


@pytest.mark.parametrize(
    ("overlay", "kind", "name", "mutate", "expected"),
    [
        (
            "overlays/hpa",
            "HorizontalPodAutoscaler",
            "consumer",
            _without_namespace,
            "HorizontalPodAutoscaler/consumer: namespace None",
        ),
        (
            "overlays/zookeeper",
            "StatefulSet",
            "zookeeper",
            _without_namespace,
            "StatefulSet/zookeeper: namespace None",
        ),
        (
            "base",
            "Deployment",
            "viewer",
            lambda o: o["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "x"}),
            "Deployment/viewer: selector",
        ),
        (
            "overlays/keda",
            "ScaledObject",
            "model-server",
            lambda o: o["spec"]["scaleTargetRef"].update(name="model-servers"),
            "targets Deployment/model-servers in 'kva', which is not there",
        ),
    ],
)
def test_consistency_checks_catch_a_broken_copy(  # type: ignore[no-untyped-def]
    rendered, overlay, kind, name, mutate, expected
) -> None:
    broken = _break(rendered[ROOT / "k8s" / overlay], kind, name, mutate)
    errors = consistency_errors(broken)
    assert any(expected in e for e in errors), errors


_UNITS_GIB = {"Mi": 1 / 1024, "Gi": 1, "Ti": 1024}


def _claims_gib(objects: list[dict]) -> dict[str, float]:
    """``object/claim -> GiB`` of every PersistentVolumeClaim and StatefulSet claim template."""
    claims = {}
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "PersistentVolumeClaim":
            specs = [(name, obj["spec"])]
        elif obj["kind"] == "StatefulSet":
            templates = obj["spec"].get("volumeClaimTemplates", [])
            specs = [(f"{name}/{t['metadata']['name']}", t["spec"]) for t in templates]
        else:
            continue
        for claim, spec in specs:
            size = spec["resources"]["requests"]["storage"]
            claims[claim] = float(size[:-2]) * _UNITS_GIB[size[-2:]]
    return claims


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=_ids(KUSTOMIZATIONS))
def test_the_real_clusters_volumes_hold_every_claim(path: Path, rendered) -> None:  # type: ignore[no-untyped-def]
    """tests/deploy/real's PersistentVolumes stand in for storage: a larger claim would pend."""
    claims = _claims_gib(rendered[path])
    assert claims, "no claim: Kafka's data volume is missing"
    assert {c: gib for c, gib in claims.items() if gib > VOLUME_GIB} == {}
