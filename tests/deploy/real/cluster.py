"""A real Kubernetes control plane on this machine, with kwok nodes instead of kubelets.

etcd (Debian's ``etcd-server``), kube-apiserver, kube-controller-manager and
kube-scheduler (built from ``k8s.io/kubernetes`` by ``scripts/build-k8s-tools.sh``)
and kwok, which plays the kubelets of two fake nodes: ``kwok-cpu`` and ``kwok-gpu``
(labelled and tainted the way ``k8s/overlays/gpu`` expects, with the GPU resource).
Every process listens on 127.0.0.1 only; the API server authenticates one static
token (``system:masters``). Pods never run: kwok moves them to Running once they
are scheduled, so what is tested is what the API server accepts, where objects
land, whether controllers roll them out and where the scheduler puts them.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kva.paths import cache_root
from kva.process import ChildProcess
from tests.support.wait import wait_for

BIN = cache_root() / "bin"  # what scripts/build-k8s-tools.sh builds
ETCD = Path("/usr/bin/etcd")
TOKEN = "kva-test-token"  # noqa: S105 - a throwaway token of a cluster on 127.0.0.1
GPU_LABEL = "intel.feature.node.kubernetes.io/gpu"
GPU_RESOURCE = "gpu.intel.com/i915"
#: Size of each stand-in PersistentVolume: at least the largest claim of any k8s/ variant
#: (checked by tests/deploy/test_kubernetes.py), or the claim stays Pending. 20Gi left
#: Kafka's 24Gi claim unbound.
VOLUME_GIB = 64


def missing_tools() -> list[str]:
    """The programs this cluster needs that are not installed (make test-deploy builds them)."""
    needed = [ETCD] + [
        BIN / name
        for name in (
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubectl",
            "kwok",
        )
    ]
    return [str(p) for p in needed if not p.is_file()]


def keda_scaledobject_crd(schema_file: Path) -> dict[str, Any]:
    """KEDA's ScaledObject CRD, from the repo's copy of its schema (``tests/deploy/schemas``).

    The copy is strict (``additionalProperties: false`` next to ``properties``), which a
    CRD's structural schema does not allow: the API server prunes unknown fields instead.
    """

    def structural(node: Any) -> Any:
        if isinstance(node, list):
            return [structural(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: structural(v) if k != "enum" else v for k, v in node.items() if k != "$schema"}
        if "properties" in node:
            out["properties"] = {k: structural(v) for k, v in node["properties"].items()}
            out.pop("additionalProperties", None)
        return out

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "scaledobjects.keda.sh"},
        "spec": {
            "group": "keda.sh",
            "names": {
                "kind": "ScaledObject",
                "listKind": "ScaledObjectList",
                "plural": "scaledobjects",
                "singular": "scaledobject",
                "shortNames": ["so"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": structural(json.loads(schema_file.read_text()))},
                }
            ],
        },
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """The control plane and kwok, started in ``workdir``; :meth:`stop` ends them all."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.kubeconfig = workdir / "kubeconfig"
        self.processes: list[ChildProcess] = []

    # --- start ----------------------------------------------------------------

    def start(self) -> Cluster:
        self._keys()
        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
        self._spawn(
            "etcd",
            [
                str(ETCD),
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            ],
        )
        self._spawn(
            "kube-apiserver",
            [
                str(BIN / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={self.dir / 'certs'}",
                f"--token-auth-file={self.dir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={self.dir / 'sa.pub'}",
                f"--service-account-signing-key-file={self.dir / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                # Debian's etcd 3.4 cannot serve watch-list streams (no RequestWatchProgress):
                # kwok's pod watch kept ending, it missed events until it listed again, and
                # pods stayed Pending for a minute or more (rollouts took 20-90 s, not 2 s).
                "--feature-gates=WatchList=false",
            ],
        )
        self._write_kubeconfig(api_port)
        wait_for(self._ready, 60, "the API server's /readyz", step=0.5)
        common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false"]
        self._spawn(
            "kube-controller-manager",
            [
                str(BIN / "kube-controller-manager"),
                *common,
                f"--service-account-private-key-file={self.dir / 'sa.key'}",
                "--use-service-account-credentials=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={_free_port()}",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(BIN / "kube-scheduler"),
                *common,
                "--bind-address=127.0.0.1",
                f"--secure-port={_free_port()}",
            ],
        )
        self._spawn(
            "kwok",
            [
                str(BIN / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                # Node leases: without them the node controller sees the status heartbeats as
                # late, marks the nodes NotReady every other minute and every pod unready.
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{_free_port()}",
            ],
        )
        self.apply_objects(self._nodes() + self._volumes())
        return self

    def _keys(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        key, pub = self.dir / "sa.key", self.dir / "sa.pub"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
            check=True,
            capture_output=True,
        )
        (self.dir / "tokens.csv").write_text(f"{TOKEN},kva-admin,kva-admin,system:masters\n")

    def _write_kubeconfig(self, port: int) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kva",
                    "cluster": {
                        "server": f"https://127.0.0.1:{port}",
                        "insecure-skip-tls-verify": True,
                    },
                }
            ],
            "users": [{"name": "kva-admin", "user": {"token": TOKEN}}],
            "contexts": [{"name": "kva", "context": {"cluster": "kva", "user": "kva-admin"}}],
            "current-context": "kva",
        }
        self.kubeconfig.write_text(json.dumps(config))

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        self.processes.append(ChildProcess(name, argv, tail_lines=200))

    def _ready(self) -> bool:
        for process in self.processes:
            if process.exit_code() is not None:
                raise AssertionError(f"{process.name} exited:\n{process.last_lines()}")
        return self.kubectl("get", "--raw", "/readyz", check=False).returncode == 0

    @staticmethod
    def _nodes() -> list[dict[str, Any]]:
        def node(
            name: str, labels: dict[str, str], taints: list[dict[str, str]], extra: dict[str, str]
        ) -> dict[str, Any]:
            capacity = {"cpu": "32", "memory": "128Gi", "pods": "110", **extra}
            return {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {"type": "kwok", "kubernetes.io/hostname": name, **labels},
                },
                "spec": {"taints": taints},
                "status": {"capacity": capacity, "allocatable": capacity},
            }

        return [
            node("kwok-cpu", {}, [], {}),
            node(
                "kwok-gpu",
                {GPU_LABEL: "true"},
                [{"key": GPU_RESOURCE, "effect": "NoSchedule"}],
                {GPU_RESOURCE: "4"},
            ),
        ]

    @staticmethod
    def _volumes() -> list[dict[str, Any]]:
        """PersistentVolumes for the StatefulSets' claims (no provisioner here)."""
        return [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"kva-pv-{n}"},
                "spec": {
                    "capacity": {"storage": f"{VOLUME_GIB}Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "hostPath": {"path": f"/tmp/kva-pv-{n}"},
                },
            }
            for n in range(8)
        ]

    # --- use ------------------------------------------------------------------

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl ARGS`` against this cluster (AssertionError with its output when check)."""
        done = subprocess.run(
            [str(BIN / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def apply_objects(self, objects: list[dict[str, Any]]) -> None:
        path = self.dir / "objects.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        self.kubectl("apply", "-f", str(path))

    def get(self, kinds: str, *args: str) -> list[dict[str, Any]]:
        """Items of ``kinds`` (comma-separated) in every namespace."""
        done = self.kubectl("get", kinds, "--all-namespaces", "-o", "json", *args)
        return list(json.loads(done.stdout)["items"])

    def finish_terminating(self, namespace: str) -> None:
        """End the pods of ``namespace`` that are being deleted, as a kubelet does once their
        containers have stopped (kwok has none to stop: it waits out the grace period)."""
        for pod in self.get("pods"):
            if "deletionTimestamp" in pod["metadata"] and pod["metadata"]["namespace"] == namespace:
                self.kubectl(
                    "delete", "pod", "-n", namespace, pod["metadata"]["name"],
                    "--grace-period=0", "--force", "--wait=false", check=False,
                )  # fmt: skip

    # --- stop -----------------------------------------------------------------

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(10)
