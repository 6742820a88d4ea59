"""The shape of the ``kva`` package, read from the source with ``ast``: one import package,
no import cycles, a core that imports no service, services that import no other service."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("producer", "consumer", "video", "tfserving", "zookeeper")
#: Services that live inside ``kva/`` (no folder at the top): ``kva events`` (the sink),
#: ``kva replay`` and ``kva compare``.
INNER_SERVICES = ("sink", "replay", "compare")
#: The launcher may import every service; ``python -m kva`` is its entry point.
LAUNCHER = ("kva.launcher", "kva.__main__")


def module_files(package_dir: Path, package: str = "kva") -> dict[str, Path]:
    """``module name -> file`` for every module of ``package`` (following the service symlinks)."""
    found: dict[str, Path] = {}
    for folder, _dirs, files in os.walk(package_dir, followlinks=True):
        for file in sorted(f for f in files if f.endswith(".py")):
            path = Path(folder) / file
            parts = path.relative_to(package_dir).with_suffix("").parts
            found[".".join((package, *parts)).removesuffix(".__init__")] = path
    return found


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name ``module`` imports, anywhere in the file (also under TYPE_CHECKING)."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """``module -> project modules it imports`` (a name resolves to its longest known prefix)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {resolve(name) for name in imported_names(module, path)}
        graph[module] = {t for t in targets if t and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def service_of(module: str) -> str | None:
    """``consumer`` for ``kva.consumer.pipeline``; None for the core and the launcher."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SERVICES + INNER_SERVICES else None


def is_core(module: str) -> bool:
    return service_of(module) is None and not module.startswith(LAUNCHER)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(module_files(ROOT / "kva"))


def test_the_service_folders_are_the_kva_subpackages() -> None:
    for service in SERVICES:
        link = ROOT / "kva" / service
        assert link.is_symlink() and link.resolve() == (ROOT / service).resolve(), service


def test_the_graph_sees_every_service(graph: dict[str, set[str]]) -> None:
    assert {service_of(m) for m in graph} >= set(SERVICES + INNER_SERVICES)
    assert "kva.consumer.pipeline" in graph["kva.consumer.service"]


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_cycle_detection_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_imports_no_service_and_not_the_launcher(graph: dict[str, set[str]]) -> None:
    wrong = {
        module: sorted(t for t in targets if not is_core(t))
        for module, targets in graph.items()
        if is_core(module)
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_no_service_imports_another_service(graph: dict[str, set[str]]) -> None:
    wrong = {
        module: sorted(t for t in targets if service_of(t) not in (None, service_of(module)))
        for module, targets in graph.items()
        if service_of(module)
    }
    assert {m: t for m, t in wrong.items() if t} == {}
    assert not any(t.startswith(LAUNCHER) for m, ts in graph.items() if service_of(m) for t in ts)


@pytest.mark.slow
def test_the_wheel_has_one_top_level_name(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: an in-tree build would leave build/ in the checkout
    ignore = shutil.ignore_patterns(
        ".*", "build", "*.egg-info", "__pycache__", "tests", "bench", "testbed"
    )
    shutil.copytree(ROOT, source, symlinks=True, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"kva"}
    for needed in (
        "kva/consumer/pipeline.py",
        "kva/zookeeper/pom.xml",
        "kva/video/templates/index.html",
        "kva/launcher/cli.py",
    ):
        assert needed in names


def test_only_the_kafka_package_imports_confluent_kafka() -> None:
    importers = {
        module
        for module, path in module_files(ROOT / "kva").items()
        if any(name.split(".")[0] == "confluent_kafka" for name in imported_names(module, path))
    }
    assert importers and all(module.startswith("kva.kafka.") for module in importers)
