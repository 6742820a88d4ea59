"""Dashboards and autoscalers only query metrics the services really export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.deploy.validate import ROOT

_METRIC = re.compile(r"\bkva_[a-z0-9_]+")
_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def _defined_metrics() -> set[str]:
    names: set[str] = set()
    for package in ("kva", "producer", "consumer", "video", "tfserving"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"[\"'](kva_[a-z0-9_]+)[\"']", path.read_text()))
    return names


def _base_name(metric: str) -> str:
    for suffix in _SUFFIXES:
        if metric.endswith(suffix):
            return metric[: -len(suffix)]
    return metric


def _queried(path: Path) -> set[str]:
    return {_base_name(m) for m in _METRIC.findall(path.read_text())}


QUERY_FILES = [
    ROOT / "compose/grafana/dashboards/kva.json",
    ROOT / "k8s/overlays/keda/scaledobjects.yaml",
]


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.name)
def test_every_queried_metric_is_exported(path: Path) -> None:
    defined = _defined_metrics()
    queried = _queried(path)
    assert queried, f"{path.name} queries no kva metric"
    missing = {m for m in queried if m not in defined and _base_name(m) not in defined}
    assert missing == set()


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    dashboard = json.loads((ROOT / "compose/grafana/dashboards/kva.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("frames per second", "dropped by reason", "frame age", "latency per replica"):
        assert topic in titles
