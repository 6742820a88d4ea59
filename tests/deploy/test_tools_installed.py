"""The suite runs only tools a fresh machine gets from ``scripts/setup.sh``.

``make test`` runs ``.venv/bin/python -m pytest`` without ``.venv/bin`` on ``PATH``; a
tool the tests find only because someone installed it by hand on this machine makes
CI green here and red on a fresh one (it happened with ``check-jsonschema``). So every
tool the tests, the testbed and the benchmarks start must be either next to
``sys.executable`` or owned by a Debian package that ``scripts/setup.sh`` installs (its
``APT_PACKAGES``; ``DEPLOY_APT_PACKAGES`` of ``scripts/test-deploy.sh`` and
``CONTAINERS_APT_PACKAGES`` of ``scripts/setup-containers.sh`` for what only
``make test-deploy`` runs) or an essential one (``dpkg``, ``coreutils``: on every Debian machine),
or be the interpreter setup.sh builds the venv from (``$PYTHON``), or be a program a set-up
script builds into ``~/.cache/kva/bin`` itself (its ``CACHE_BIN_TOOLS``, e.g. Docker
Compose: the tests put that folder first on the PATH of what they start).

The tools are read from the code itself: ``shutil.which("x")`` and the first element of
a literal argv list given to ``subprocess.run``/``Popen``/``check_output``/``check_call``
(a module-level string constant counts, ``sys.executable`` does not).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What the make targets run to set up: ``make test`` (setup.sh), ``make test-deploy``.
SETUP_SCRIPTS = tuple(
    path
    for path in (
        ROOT / "scripts" / "setup.sh",
        ROOT / "scripts" / "test-deploy.sh",
        ROOT / "scripts" / "setup-containers.sh",
        ROOT / "scripts" / "build-k8s-tools.sh",
    )
    if path.is_file()
)
#: What ``make test-deploy`` alone runs to set up, just before ``tests/deploy/real``.
DEPLOY_SETUP_SCRIPTS = tuple(
    p for p in SETUP_SCRIPTS if p.name in ("test-deploy.sh", "setup-containers.sh")
)
#: The tests only ``make test-deploy`` runs (after its set-up).
DEPLOY_ONLY = "tests/deploy/real/"
SCANNED = ("tests", "testbed", "bench")
_SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call"}


def tools_called(source: str) -> set[str]:
    """Names or paths of the programs ``source`` looks up or starts."""
    tree = ast.parse(source)
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        if not isinstance(owner, ast.Name) or not node.args:
            continue
        first = node.args[0]
        if owner.id == "shutil" and node.func.attr == "which":
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
        elif (
            owner.id == "subprocess"
            and node.func.attr in _SUBPROCESS_CALLS
            and isinstance(first, ast.List)
            and first.elts
        ):
            program = first.elts[0]
            if isinstance(program, ast.Constant) and isinstance(program.value, str):
                found.add(program.value)
            elif isinstance(program, ast.Name) and program.id in constants:
                found.add(constants[program.id])
    return found


def setup_installs(script: str) -> tuple[set[str], set[str]]:
    """``(apt packages, prerequisite programs)`` named by a set-up script itself."""
    arrays = re.findall(r"^[A-Z_]*APT_PACKAGES=\(([^)]*)\)", script, re.MULTILINE)
    packages = {name for array in arrays for name in array.split()}
    python = re.search(r"^PYTHON=\$\{PYTHON:-([^}]+)\}", script, re.MULTILINE)
    return packages, {python.group(1)} if python else set()


def setup_builds(script: str) -> set[str]:
    """Programs a set-up script builds into ``~/.cache/kva/bin`` (its ``*CACHE_BIN_TOOLS``)."""
    arrays = re.findall(r"^[A-Z0-9_]*CACHE_BIN_TOOLS=\(([^)]*)\)", script, re.MULTILINE)
    return {name for array in arrays for name in array.split()}


def owning_package(path: str) -> str | None:
    """The Debian package that installed ``path`` (None when no package did)."""
    done = subprocess.run(
        ["dpkg-query", "-S", path], capture_output=True, text=True, check=False, timeout=30
    )
    if done.returncode != 0:
        return None
    return done.stdout.split(":", 1)[0].strip()


def is_essential(package: str) -> bool:
    """Whether ``package`` is Essential (on every Debian machine, fresh or not)."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Essential}", package],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.stdout.strip() == "yes"


def where_not_installed(
    tool: str,
    venv_bin: Path,
    packages: set[str],
    prerequisites: set[str],
    installed_later: set[str] | None = None,
) -> str | None:
    """Why ``tool`` would be missing on a fresh machine after setup.sh, or None when it is there.

    ``installed_later``: packages a set-up script installs just before the only tests that
    call ``tool`` (``make test-deploy`` installs Podman, then runs ``tests/deploy/real``): on
    a fresh machine ``make test`` runs first, when such a tool is not there yet.
    """
    if Path(tool).name in prerequisites and (Path(tool).is_absolute() or shutil.which(tool)):
        return None
    if not Path(tool).is_absolute() and (venv_bin / tool).is_file():
        return None
    found = tool if Path(tool).is_absolute() else shutil.which(tool)
    if (not found or not Path(found).exists()) and Path(tool).name in (installed_later or ()):
        return None
    if not found or not Path(found).exists():
        return f"{tool}: not installed (neither next to {sys.executable} nor on PATH)"
    package = owning_package(found)
    if package is not None and (package in packages or is_essential(package)):
        return None
    origin = f"package {package}" if package else "no Debian package"
    return (
        f"{tool}: found at {found} ({origin}), which no set-up script installs;"
        " add its package to APT_PACKAGES (scripts/setup.sh) or install it into the venv"
    )


def scanned_tools() -> dict[str, list[str]]:
    """``tool -> files`` for every program the scanned folders call."""
    tools: dict[str, list[str]] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for tool in tools_called(path.read_text(encoding="utf-8")):
                tools.setdefault(tool, []).append(str(path.relative_to(ROOT)))
    return tools


# --- the scanner and the allow-list, on known inputs --------------------------------


def test_the_scanner_finds_which_and_literal_argv() -> None:
    source = (
        "import shutil, subprocess, sys\n"
        'BROWSER = "/usr/bin/chromium"\n'
        'shutil.which("kcat")\n'
        'subprocess.run(["mytool", "-x"], check=True)\n'
        "subprocess.Popen([BROWSER, '--headless'])\n"
        "subprocess.run([sys.executable, '-m', 'kva'])\n"
        "subprocess.run(argv)\n"
    )
    assert tools_called(source) == {"kcat", "mytool", "/usr/bin/chromium"}


def test_the_allow_list_comes_from_the_setup_scripts() -> None:
    packages, prerequisites = setup_installs("\n".join(p.read_text() for p in SETUP_SCRIPTS))
    assert {"kcat", "chromium", "openjdk-17-jre-headless"} <= packages
    assert prerequisites == {"python3"}
    script = "PYTHON=${PYTHON:-python3.12}\nDEPLOY_APT_PACKAGES=(etcd-server\n  openssl)\nX=(no)\n"
    assert setup_installs(script) == ({"etcd-server", "openssl"}, {"python3.12"})
    assert setup_builds("\n".join(p.read_text() for p in SETUP_SCRIPTS)) >= {"docker-compose"}
    assert setup_builds("CACHE_BIN_TOOLS=(a\n  b)\nK8S_CACHE_BIN_TOOLS=(c)\n") == {"a", "b", "c"}


@pytest.mark.subprocess
def test_a_tool_found_only_elsewhere_on_path_is_reported(tmp_path: Path) -> None:
    # chromium is on this machine because setup.sh installs it: take it off the list.
    message = where_not_installed("chromium", tmp_path, {"kcat"}, {"python3"})
    assert message is not None
    assert "(package chromium), which no set-up script installs" in message
    assert where_not_installed("chromium", tmp_path, {"chromium"}, set()) is None
    assert where_not_installed("dpkg-query", tmp_path, set(), set()) is None  # essential
    assert "not installed" in (
        where_not_installed("no-such-tool-kva", tmp_path, set(), set()) or ""
    )
    # a tool that make test-deploy's set-up installs just before the only tests calling it
    assert (
        where_not_installed("no-such-tool-kva", tmp_path, set(), set(), {"no-such-tool-kva"})
        is None
    )
    (tmp_path / "no-such-tool-kva").write_text("")
    assert where_not_installed("no-such-tool-kva", tmp_path, set(), set()) is None


# --- the suite itself ---------------------------------------------------------------


def test_the_scan_sees_the_tools_the_suite_is_known_to_call() -> None:
    tools = scanned_tools()
    assert {"kcat", "chromium", "podman", "docker-compose"} <= set(tools), tools


@pytest.mark.subprocess
def test_every_tool_the_suite_calls_is_installed_by_setup() -> None:
    scripts = "\n".join(p.read_text() for p in SETUP_SCRIPTS)
    packages, prerequisites = setup_installs(scripts)
    deploy_packages, _ = setup_installs("\n".join(p.read_text() for p in DEPLOY_SETUP_SCRIPTS))
    built = setup_builds(scripts)
    venv_bin = Path(sys.executable).parent
    problems = [
        f"{message} (called in {', '.join(files)})"
        for tool, files in sorted(scanned_tools().items())
        if tool not in built
        and (
            message := where_not_installed(
                tool,
                venv_bin,
                packages,
                prerequisites,
                deploy_packages if all(f.startswith(DEPLOY_ONLY) for f in files) else set(),
            )
        )
    ]
    assert not problems, "\n".join(problems)
