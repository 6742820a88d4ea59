"""The Triton extensions tritonclient calls: model config, repository index, statistics."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.serve import ServeProcess

TWO = "saved_model_half_plus_two_2_versions"
THREE = "saved_model_half_plus_three"


def test_model_config(server: ServeProcess) -> None:
    expected = {
        "name": TWO,
        "platform": "openvino",
        "backend": "openvino",
        "max_batch_size": 0,
        "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [-1, 1]}],
        "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [-1, 1]}],
        "version_policy": {"specific": {"versions": ["123"]}},  # as models.config says
    }
    assert server.get(f"/v2/models/{TWO}/config").json() == expected
    assert server.get(f"/v2/models/{TWO}/versions/123/config").json() == expected
    three = server.get(f"/v2/models/{THREE}/config").json()
    assert three["version_policy"] == {"latest": {"num_versions": 1}}


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v2/models/nope/config", 404, "Servable not found for request: Latest(nope)"),
        (f"/v2/models/{TWO}/versions/7/config", 404, f"Specific({TWO}, 7)"),
        ("/v2/models/nope/stats", 404, "Latest(nope)"),
        (f"/v2/models/{TWO}/versions/7/stats", 404, f"Specific({TWO}, 7)"),
    ],
)
def test_unknown_model_or_version(
    server: ServeProcess, path: str, status: int, message: str
) -> None:
    reply = server.get(path)
    assert reply.status_code == status and message in reply.json()["error"]


def test_repository_index(
    server: ServeProcess, start_server: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    both = [  # by name
        {"name": THREE, "version": "123", "state": "READY"},
        {"name": TWO, "version": "123", "state": "READY"},
    ]
    assert server.post("/v2/repository/index").json() == both
    assert server.post("/v2/repository/index", json={"ready": True}).json() == both
    bad = server.post("/v2/repository/index", json={"ready": "yes"})
    assert bad.status_code == 400 and '"ready" a boolean' in bad.json()["error"]
    # a configured model with no version on disk yet: listed unless only ready ones are asked for
    (tmp_path / "later").mkdir()
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "later" base_path: "later" } }\n')
    empty = start_server("--model_config_file", str(config), wait_ready=False)
    index = empty.post("/v2/repository/index").json()
    assert index == [{"name": "later", "version": "", "state": "UNAVAILABLE",
                      "reason": "no version loaded"}]  # fmt: skip
    assert empty.post("/v2/repository/index", json={"ready": True}).json() == []


def test_statistics_count_what_ran(
    start_server: Callable[..., ServeProcess], conformance_repo: Path
) -> None:
    s = start_server("--model_config_file", str(conformance_repo / "models.config"))
    before = time.time() * 1000
    x3 = {"inputs": [{"name": "x", "shape": [3, 1], "datatype": "FP32", "data": [1, 2, 3]}]}
    assert s.post(f"/v2/models/{THREE}/infer", json=x3).ok
    assert s.post(f"/v1/models/{THREE}:predict", json={"instances": [[1.0], [2.0]]}).ok
    wrong = s.post(f"/v1/models/{THREE}:predict", json={"instances": [["a"]]})
    assert wrong.status_code == 400
    (entry,) = s.get(f"/v2/models/{THREE}/stats").json()["model_stats"]
    assert (entry["name"], entry["version"]) == (THREE, "123")
    assert (entry["inference_count"], entry["execution_count"]) == (5, 2)
    assert before <= entry["last_inference"] <= time.time() * 1000
    stats = entry["inference_stats"]
    assert (stats["success"]["count"], stats["fail"]["count"]) == (2, 1)
    assert stats["compute_infer"]["count"] == 2 and stats["compute_infer"]["ns"] > 0
    assert stats["success"]["ns"] >= stats["compute_infer"]["ns"]
    everything = s.get("/v2/models/stats").json()["model_stats"]
    assert [(e["name"], e["version"]) for e in everything] == [(THREE, "123"), (TWO, "123")]
    assert everything[1]["inference_count"] == 0  # TWO never ran
    assert s.get(f"/v2/models/{THREE}/versions/123/stats").json()["model_stats"] == [entry]
