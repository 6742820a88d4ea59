"""Model lifecycle over real HTTP: version polling, admission control, readiness."""

from __future__ import annotations

import re
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from kva.tfserving.modelbuild.half_plus_two import build
from tests.support.process import run_kva
from tests.support.serve import ServeProcess
from tests.support.wait import wait_for
from tests.tfserving.slow_model import build_slow_model


def _versions(server: ServeProcess, name: str) -> list[str]:
    reply = server.get(f"/v1/models/{name}")
    if reply.status_code != 200:
        return []
    return [v["version"] for v in reply.json()["model_version_status"]]


def test_new_version_is_picked_up_and_old_unloaded(
    tmp_path: Path, start_server: Callable[..., ServeProcess]
) -> None:
    repo = tmp_path / "repo"
    build(repo)  # half_plus_two/123: y = 0.5x + 2
    server = start_server(
        "--model_name", "hp", "--model_base_path", str(repo / "half_plus_two"),
        "--file_system_poll_wait_seconds", "0.2",
    )  # fmt: skip
    assert _versions(server, "hp") == ["123"]
    # version 124 (y = 0.5x + 3) built elsewhere and copied in, as an operator would
    build(tmp_path / "staging", version=124, name="half_plus_two", offset=3.0)
    shutil.copytree(tmp_path / "staging" / "half_plus_two" / "124", repo / "half_plus_two" / "124")
    wait_for(lambda: _versions(server, "hp") == ["124"], 20, "version 124 served, 123 unloaded")
    reply = server.post("/v1/models/hp:predict", json={"instances": [[2.0]]})
    assert reply.json() == {"predictions": [[4.0]]}
    gone = server.post("/v1/models/hp/versions/123:predict", json={"instances": [[2.0]]})
    assert gone.status_code == 404 and "Specific(hp, 123)" in gone.json()["error"]
    assert re.search(r'kva_serve_loaded_versions\{model="hp"\} 1\.0', server.get("/metrics").text)
    assert "unloaded version 123" in server.log()


def test_broken_version_keeps_the_old_one_serving(
    tmp_path: Path, start_server: Callable[..., ServeProcess]
) -> None:
    repo = tmp_path / "repo"
    build(repo)
    server = start_server(
        "--model_name", "hp", "--model_base_path", str(repo / "half_plus_two"),
        "--file_system_poll_wait_seconds", "0.2",
        "--device", "AUTO", "--performance_hint", "LATENCY",  # passed through to OpenVINO
    )  # fmt: skip
    broken = repo / "half_plus_two" / "200"
    broken.mkdir()
    (broken / "model.xml").write_text("<net>not a model")
    wait_for(lambda: "version 200 not loaded" in server.log(), 20, "the load error logged")
    assert _versions(server, "hp") == ["123"]
    assert server.post("/v1/models/hp:predict", json={"instances": [[2.0]]}).status_code == 200


def test_admission_control_refuses_at_once_and_flips_readiness(
    tmp_path: Path, start_server: Callable[..., ServeProcess]
) -> None:
    build_slow_model(tmp_path)
    server = start_server(
        "--model_name", "slow", "--model_base_path", str(tmp_path / "slow"),
        "--max_inflight", "1",
    )  # fmt: skip
    results: list[requests.Response] = []
    slow = threading.Thread(
        target=lambda: results.append(
            server.post("/v1/models/slow:predict", json={"inputs": [[1.0]]})
        )
    )
    slow.start()
    inflight = re.compile(r'kva_serve_inflight_requests\{model="slow"\} 1\.0')
    wait_for(
        lambda: bool(inflight.search(server.get("/metrics").text)), 20, "one request in flight"
    )
    refused = server.post("/v1/models/slow:predict", json={"inputs": [[1.0]]})
    assert not results  # answered while the slow one still runs: refused at once, not queued
    assert refused.status_code == 503
    assert "at its limit of 1 requests in flight" in refused.json()["error"]
    v2 = server.post("/v2/models/slow/infer", json={
        "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]})  # fmt: skip
    assert v2.status_code == 503
    assert server.get("/v2/health/ready").status_code == 503
    assert server.get("/v2/models/slow/ready").json() == {"name": "slow", "ready": False}
    slow.join(timeout=60)
    assert results and results[0].status_code == 200, results
    wait_for(lambda: server.get("/v2/health/ready").status_code == 200, 20, "ready again")
    metrics = server.get("/metrics").text
    assert re.search(r'kva_serve_rejected_requests_total\{model="slow"\} 2\.0', metrics)
    assert re.search(
        r'kva_serve_requests_total\{code="503",model="slow",protocol="v1"\} 1\.0', metrics
    )


def test_not_ready_until_every_model_has_a_version(
    tmp_path: Path, start_server: Callable[..., ServeProcess]
) -> None:
    (tmp_path / "empty").mkdir()
    build(tmp_path)
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list {\n config { name: "hp" base_path: "half_plus_two" }\n'
        ' config { name: "later" base_path: "empty" }\n}\n'
    )
    server = start_server(
        "--model_config_file", str(config), "--file_system_poll_wait_seconds", "0.2",
        wait_ready=False,
    )  # fmt: skip
    wait_for(lambda: _versions(server, "hp") == ["123"], 20, "hp loaded")
    assert server.get("/v2/health/ready").status_code == 503
    assert server.get("/v2/models/hp/ready").status_code == 200
    missing = server.get("/v1/models/later")
    assert (
        missing.status_code == 404 and "Could not find any versions of model later" in missing.text
    )
    assert "later: no version folders under" in server.log()
    shutil.copytree(tmp_path / "half_plus_two" / "123", tmp_path / "empty" / "7")
    wait_for(lambda: server.get("/v2/health/ready").status_code == 200, 20, "ready")
    reply = server.post("/v1/models/later/versions/7:predict", json={"instances": [[0.0]]})
    assert reply.json() == {"predictions": [[2.0]]}
    assert server.stop() == 0  # SIGTERM: clean exit


def test_concurrent_requests_all_answered_correctly(server: ServeProcess) -> None:
    """Many threads, both protocols and both models at once: every answer is its own."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> bool:
        x = float(i)
        with requests.Session() as session:
            if i % 2:
                reply = session.post(
                    server.url + "/v1/models/saved_model_half_plus_two_2_versions:predict",
                    json={"instances": [[x], [x + 1]]}, timeout=30,
                )  # fmt: skip
                return bool(reply.json() == {"predictions": [[x / 2 + 2], [(x + 1) / 2 + 2]]})
            body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [x]}]}
            reply = session.post(
                server.url + "/v2/models/saved_model_half_plus_three/infer", json=body, timeout=30
            )
            return bool(reply.json()["outputs"][0]["data"] == [x / 2 + 3])

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, range(200)))
    assert all(results)


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def test_config_file_reload_adds_and_removes_models(
    tmp_path: Path, start_server: Callable[..., ServeProcess]
) -> None:
    build(tmp_path)
    build(tmp_path, name="half_plus_three", offset=3.0)
    config = tmp_path / "models.config"
    _write(config, 'model_config_list { config { name: "two" base_path: "half_plus_two" } }')
    server = start_server(
        "--model_config_file", str(config), "--model_config_file_poll_wait_seconds", "0.2",
    )  # fmt: skip
    assert server.get("/v1/models/three").status_code == 404
    _write(
        config,
        'model_config_list {\n config { name: "two" base_path: "half_plus_two"\n'
        '  version_labels { key: "stable" value: 123 } }\n'
        ' config { name: "three" base_path: "half_plus_three" }\n}\n',
    )
    wait_for(lambda: _versions(server, "three") == ["123"], 20, "model three added")
    reply = server.post("/v1/models/two/labels/stable:predict", json={"instances": [[2.0]]})
    assert reply.json() == {"predictions": [[3.0]]}
    _write(config, "model_config_list { config { name: 'two' oops: 1 } }")
    wait_for(lambda: "model config not reloaded" in server.log(), 20, "the parse error logged")
    assert f"{config}:1: unknown field 'oops' in config" in server.log()
    assert _versions(server, "three") == ["123"]  # still serving what it had
    _write(config, 'model_config_list { config { name: "three" base_path: "half_plus_three" } }')
    wait_for(lambda: server.get("/v1/models/two").status_code == 404, 20, "model two removed")
    assert server.post("/v1/models/three:predict", json={"instances": [[2.0]]}).json() == {
        "predictions": [[4.0]]
    }
    assert server.get("/v2/health/ready").status_code == 200


def test_sigterm_finishes_requests_in_flight(
    tmp_path: Path, start_server: Callable[..., ServeProcess]
) -> None:
    build_slow_model(tmp_path)
    server = start_server("--model_name", "slow", "--model_base_path", str(tmp_path / "slow"))
    results: list[requests.Response] = []
    slow = threading.Thread(
        target=lambda: results.append(
            server.post("/v1/models/slow:predict", json={"inputs": [[1.0]]})
        )
    )
    slow.start()
    inflight = re.compile(r'kva_serve_inflight_requests\{model="slow"\} 1\.0')
    wait_for(
        lambda: bool(inflight.search(server.get("/metrics").text)), 20, "one request in flight"
    )
    server.terminate()
    slow.join(timeout=60)
    assert results and results[0].status_code == 200, results
    assert server.wait(timeout=30) == 0
    assert "finishing requests in flight" in server.log()
    assert "Traceback" not in server.log()


def test_version_policy_all_serves_every_version(
    tmp_path: Path, start_server: Callable[..., ServeProcess]
) -> None:
    build(tmp_path, version=1)
    build(tmp_path, version=2, offset=3.0)
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "hp" base_path: "half_plus_two"\n'
        "  model_version_policy { all {} }\n"
        '  version_labels { key: "old" value: 1 } } }\n'
    )
    server = start_server("--model_config_file", str(config))
    assert _versions(server, "hp") == ["2", "1"]
    latest = server.post("/v1/models/hp:predict", json={"instances": [[2.0]]})
    assert latest.json() == {"predictions": [[4.0]]}  # version 2: 0.5x + 3
    old = server.post("/v1/models/hp/labels/old:predict", json={"instances": [[2.0]]})
    assert old.json() == {"predictions": [[3.0]]}
    assert server.get("/v2/models/hp").json()["versions"] == ["1", "2"]
    v1 = server.post("/v2/models/hp/versions/1/infer", json={
        "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [2.0]}]})  # fmt: skip
    assert v1.json()["model_version"] == "1" and v1.json()["outputs"][0]["data"] == [3.0]


def test_version_zero_means_latest_as_in_ovms(
    tmp_path: Path, start_server: Callable[..., ServeProcess]
) -> None:
    """ovmsclient sends version 0 unless told otherwise; OVMS reads it as "latest"."""
    build(tmp_path, version=1)
    build(tmp_path, version=2, offset=3.0)
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "hp" base_path: "half_plus_two"\n'
        "  model_version_policy { all {} } } }\n"
    )
    server = start_server("--model_config_file", str(config))
    latest = server.post("/v1/models/hp/versions/0:predict", json={"instances": [[2.0]]})
    assert latest.json() == {"predictions": [[4.0]]}  # version 2: 0.5x + 3
    metadata = server.get("/v1/models/hp/versions/0/metadata").json()
    assert metadata["model_spec"]["version"] == "2"
    status = server.get("/v1/models/hp/versions/0").json()["model_version_status"]
    assert [v["version"] for v in status] == ["2", "1"]  # 0 in a status request: every version
    assert server.get("/v2/models/hp/versions/0").json()["name"] == "hp"
    assert server.get("/v2/models/hp/versions/0/ready").status_code == 200
    v2 = server.post("/v2/models/hp/versions/0/infer", json={
        "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [2.0]}]})  # fmt: skip
    assert v2.json()["model_version"] == "2" and v2.json()["outputs"][0]["data"] == [4.0]
    missing = server.post("/v1/models/nope/versions/0:predict", json={"instances": [[2.0]]})
    assert missing.status_code == 404 and "Latest(nope)" in missing.json()["error"]


@pytest.mark.subprocess
def test_rest_port_in_use_fails_clearly(conformance_repo: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_kva(
            "serve", "--rest_api_port", str(port),
            "--model_config_file", str(conformance_repo / "models.config"),
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "cannot start: " in done.stderr and "Address already in use" in done.stderr
    assert f"127.0.0.1', {port})" in done.stderr
    assert "Traceback" not in done.stderr
