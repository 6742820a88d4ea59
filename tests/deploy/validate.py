"""Offline validation of the Compose and Kubernetes files (no Docker engine, no cluster).

- Compose: the compose-spec JSON schema (``check-jsonschema --builtin-schema
  vendor.compose-spec``) plus semantic checks the schema cannot make
  (references to services/volumes/networks, numeric ports and replicas,
  healthchecks behind ``service_healthy``, build files that exist).
- Kubernetes: every kustomization rendered with kustomize, each object checked
  with ``kubernetes-validate`` in strict mode for a current Kubernetes; kinds
  it has no schema for are failures, except KEDA ScaledObjects, checked
  against the ScaledObject CRD schema (strict copy in ``schemas/``).
- Commands: what the images run are ``kva`` commands that kva's own parser accepts.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
KEDA_SCHEMA = Path(__file__).with_name("schemas") / "keda-scaledobject-v1alpha1-strict.json"
KUBERNETES_VERSION = "1.32"
KVA_IMAGES = re.compile(r"^(ghcr\.io/kva-project/)?kva-(serve|producer|consumer|video)(:.*)?$")
_PORT = re.compile(
    r"^(?:(?:\d{1,3}\.){3}\d{1,3}:)?(?:(\d+)(?:-\d+)?:)?(\d+)(?:-\d+)?(?:/(tcp|udp))?$"
)


# --- Compose -----------------------------------------------------------------


def compose_schema_errors(*files: Path) -> list[str]:
    """Errors from the compose-spec JSON schema (empty list when valid)."""
    # The project's own environment (make test does not put .venv/bin on PATH).
    checker = Path(sys.executable).parent / "check-jsonschema"
    if not checker.is_file():
        return [f"check-jsonschema is not installed next to {sys.executable}"]
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    return [] if result.returncode == 0 else [result.stdout + result.stderr]


def load_compose(*files: Path) -> dict[str, Any]:
    """Merge compose files as ``docker compose -f a -f b`` does (maps merged, the rest replaced)."""
    merged: dict[str, Any] = {}
    for path in files:
        _merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged


def _merge(base: dict[str, Any], override: dict[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def compose_semantic_errors(project: dict[str, Any], directory: Path) -> list[str]:
    """What the schema lets through: dangling references, non-numeric ports, missing files."""
    errors: list[str] = []
    services: dict[str, Any] = project.get("services") or {}
    volumes = set(project.get("volumes") or {})
    networks = set(project.get("networks") or {}) | {"default"}
    for name, service in services.items():
        where = f"service {name!r}"
        errors += _check_depends_on(where, service, services, directory)
        for mount in service.get("volumes") or []:
            errors += _check_mount(where, mount, volumes, directory)
        for network in _names(service.get("networks")):
            if network not in networks:
                errors.append(f"{where}: network {network!r} is not defined")
        for port in service.get("ports") or []:
            if not _PORT.match(
                str(port) if not isinstance(port, dict) else str(port.get("target", ""))
            ):
                errors.append(f"{where}: port {port!r} is not a number or HOST:CONTAINER")
        replicas = (service.get("deploy") or {}).get("replicas")
        if replicas is not None and not isinstance(replicas, int):
            errors.append(f"{where}: deploy.replicas {replicas!r} is not an integer")
        errors += _check_build(where, service.get("build"), directory)
        if "image" not in service and "build" not in service:
            errors.append(f"{where}: has neither image nor build")
    return errors


def _names(value: Any) -> list[str]:
    if isinstance(value, dict):
        return list(value)
    return list(value or [])


def _check_depends_on(
    where: str, service: dict[str, Any], services: dict[str, Any], directory: Path
) -> list[str]:
    errors = []
    depends = service.get("depends_on") or {}
    for dependency in _names(depends):
        if dependency not in services:
            errors.append(f"{where}: depends_on {dependency!r}, which is not a service")
            continue
        condition = depends[dependency].get("condition") if isinstance(depends, dict) else None
        if condition == "service_healthy" and not _has_healthcheck(services[dependency], directory):
            errors.append(
                f"{where}: waits for {dependency!r} to be healthy, which has no healthcheck"
            )
    return errors


def _has_healthcheck(service: dict[str, Any], directory: Path) -> bool:
    if service.get("healthcheck"):
        return not service["healthcheck"].get("disable", False)
    dockerfile = _dockerfile(service.get("build"), directory)
    return (
        dockerfile is not None and dockerfile.is_file() and "HEALTHCHECK" in dockerfile.read_text()
    )


def _dockerfile(build: Any, directory: Path) -> Path | None:
    if build is None:
        return None
    if isinstance(build, str):
        return directory / build / "Dockerfile"
    return directory / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def _check_build(where: str, build: Any, directory: Path) -> list[str]:
    dockerfile = _dockerfile(build, directory)
    if dockerfile is not None and not dockerfile.is_file():
        return [f"{where}: Dockerfile {dockerfile} does not exist"]
    return []


def _check_mount(where: str, mount: Any, volumes: set[str], directory: Path) -> list[str]:
    source = mount.get("source") if isinstance(mount, dict) else str(mount).split(":", 1)[0]
    if not source or ":" not in str(mount) and not isinstance(mount, dict):
        return []  # anonymous volume
    if source.startswith((".", "/", "~")):
        if source.startswith(".") and not (directory / source).exists():
            return [f"{where}: bind-mount source {source!r} does not exist"]
        return []
    if source not in volumes:
        return [f"{where}: volume {source!r} is not defined under top-level volumes"]
    return []


def compose_kva_commands(project: dict[str, Any]) -> dict[str, list[str]]:
    """``service -> argv`` (after ``kva``) for every service that runs a kva image."""
    commands = {}
    for name, service in (project.get("services") or {}).items():
        if KVA_IMAGES.match(str(service.get("image", ""))) and service.get("command"):
            commands[name] = [str(arg) for arg in service["command"]]
    return commands


# --- Kubernetes ------------------------------------------------------------------


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization with the venv's ``kustomize build`` (scripts/setup.sh installs it)."""
    kustomize = Path(sys.executable).parent / "kustomize"
    if not kustomize.is_file():
        raise RuntimeError(
            f"kustomize is not installed next to {sys.executable} (scripts/setup.sh)"
        )
    argv = [str(kustomize), "build", str(directory)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"kustomize failed for {directory}: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def kubernetes_errors(objects: list[dict[str, Any]]) -> list[str]:
    """Strict schema errors for each object; unknown kinds are errors (except KEDA's)."""
    keda = json.loads(KEDA_SCHEMA.read_text())
    errors = []
    for obj in objects:
        name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        if obj.get("apiVersion", "").startswith("keda.sh/") and obj.get("kind") == "ScaledObject":
            validator = jsonschema.Draft7Validator(keda)
            errors += [f"{name}: {e.json_path}: {e.message}" for e in validator.iter_errors(obj)]
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for this kind in Kubernetes {KUBERNETES_VERSION}")
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{name}: {path}: {exc.message}")
    return errors


def kubernetes_kva_commands(objects: list[dict[str, Any]]) -> Iterator[tuple[str, list[str]]]:
    """``(workload/container, argv)`` for every container that runs a kva image."""
    for obj in objects:
        pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            if KVA_IMAGES.match(str(container.get("image", ""))):
                yield (
                    f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}",
                    [str(a) for a in container.get("args") or []],
                )


def kustomizations() -> list[Path]:
    """Every folder under k8s/ that holds a kustomization."""
    return sorted(p.parent for p in (ROOT / "k8s").rglob("kustomization.yaml"))


NAMESPACE = "kva"
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                  "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass"}  # fmt: skip
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


def consistency_errors(objects: list[dict[str, Any]]) -> list[str]:
    """What an API server would reveal and a schema cannot.

    Every namespaced object in ``kva``; every workload's selector matches its pod
    template's labels; every HPA and ScaledObject targets a workload rendered with it.
    """
    errors = []
    workloads = {
        (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
        for o in objects
        if o.get("kind") in WORKLOADS
    }
    for obj in objects:
        kind, meta = obj.get("kind"), obj.get("metadata") or {}
        name = f"{kind}/{meta.get('name')}"
        if kind not in CLUSTER_SCOPED and meta.get("namespace") != NAMESPACE:
            errors.append(f"{name}: namespace {meta.get('namespace')!r}, not {NAMESPACE!r}")
        if kind in WORKLOADS:
            errors += _selector_errors(name, obj)
        target = (obj.get("spec") or {}).get("scaleTargetRef")
        if kind in {"HorizontalPodAutoscaler", "ScaledObject"} and target:
            key = (target.get("kind", "Deployment"), target.get("name"), meta.get("namespace"))
            if key not in workloads:
                errors.append(
                    f"{name}: targets {key[0]}/{key[1]} in {key[2]!r}, which is not there"
                )
    return errors


def _selector_errors(name: str, obj: dict[str, Any]) -> list[str]:
    spec = obj.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        return [f"{name}: selector {selector} does not match the pod labels {labels}"]
    return []
