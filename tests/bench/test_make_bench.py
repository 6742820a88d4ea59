"""``make bench``'s table builder, record writer and charts on given figures (no benchmark
runs), and one real ``bench/all.py --quick`` on its smallest bench."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import compare  # noqa: E402
import density  # noqa: E402
import figures  # noqa: E402
import ratios  # noqa: E402
import record  # noqa: E402
import render  # noqa: E402
from machine import Machine, busy  # noqa: E402

runner = importlib.import_module("all")


def density_point(cameras: int, total: float, dropped: float = 0.0, p99: float = 100.0) -> dict:
    return {
        "cameras": cameras, "fps_in": 15.0 * cameras, "fps_out": 15.0 * cameras * (1 - dropped),
        "frames_delivered": 100, "dropped": dropped, "age_p50_ms": 50.0, "age_p99_ms": p99,
        "cpu_ms_per_frame": {"producer": 5.0, "consumer": total - 5.0}, "cpu_ms_total": total,
    }  # fmt: skip


def given_figures() -> dict[str, dict[str, Any]]:
    """One set of figures as the benches write them (values chosen to meet or miss)."""
    points = [density_point(1, 50.0), density_point(2, 52.0), density_point(4, 61.0, 0.2, 900)]
    return {
        "consumer_transport": {
            "ratio_vs_relay": 0.95,
            "rounds": [{"cpu_ms_per_frame": {"relay": {"relay": 0.5}, "pipeline": {"kva consume": 0.6}}}],
        },
        "consumer_efficiency": {"median": {
            "v2": {"cpu_efficiency": 0.49, "cpu_ms": {"kva consume": 7.5, "kva serve": 5.1},
                   "in_process_cpu_ms": 7.8},
        }},
        "consumer_fanout": {"min_ratio": 0.93, "points": [
            {"replicas": 1, "ratio": 0.98, "consumer_cpu_ms_per_frame": 1.0},
            {"replicas": 8, "ratio": 0.93, "consumer_cpu_ms_per_frame": 1.2},
        ]},
        "consumer_freshness": {
            "normal": {"age_p50_ms": 60.0, "age_p99_ms": 90.0,
                       "age_percentiles_ms": [float(q) for q in range(101)]},
            "overload": {"age_p50_ms": 130.0, "age_p99_ms": 200.0, "first_window_p50_ms": 130.0,
                         "last_window_p50_ms": 128.0,
                         "age_percentiles_ms": [2.0 * q for q in range(100)] + [None]},
        },
        "viewer_mjpeg": {"worst_ratio": 0.993, "server_cpu_percent": 54.0, "n_max": 100},
        "serve_overhead": {"cpu_ratio_v2_binary_c4": 0.70, "cpu_ratio_v1_c4": 0.71, "runs": {
            "raw c4": {"own_cpu_ms": 2.5}, "/v2 binary JPEG c4": {"server_cpu_ms": 3.6},
        }},
        "stream_density": {"points": points, **density.curve_summary(points)},
    }  # fmt: skip


def by_figure(rows: list[ratios.Row]) -> dict[str, ratios.Row]:
    return {row.figure: row for row in rows}


def test_every_row_is_judged_against_its_target_and_says_by_how_much() -> None:
    rows = by_figure(ratios.build_rows(given_figures()))
    judged = {figure: (row.status, row.by) for figure, row in rows.items()}
    assert judged["P1 transport: kva consume --passthrough fps"] == ("met", "by 5.6 %")
    assert judged["P2 CPU efficiency, remote /v2 binary (kva serve)"] == ("missed", "by 39 %")
    assert judged["P2 CPU efficiency, in-process openvino:"] == ("not run", "")
    assert judged["P3 fan-out: fps over R replicas, worst R"] == ("met", "by 3.3 %")
    assert judged["P4 freshness: age growth at 2x overload (last ÷ first p50)"][0] == "met"
    assert judged["P5 100 viewers: worst client fps"] == ("met", "by 4.5 %")
    assert judged["P5 100 viewers: viewer CPU (share of one core)"] == ("missed", "by 80 %")
    assert judged["server overhead, /v2 binary JPEG: CPU per request (c = 4)"] == (
        "missed",
        "by 22 %",
    )
    sustained = rows["stream density: cameras sustained (< 5 % dropped, p99 < 500 ms)"]
    assert (sustained.status, sustained.shown) == ("info", "2")
    flat = rows["stream density: CPU per frame across N, largest deviation"]
    assert (flat.status, flat.by, flat.shown) == ("missed", "by 12 points", "+22 %")


def test_no_figures_at_all_is_a_table_of_not_run() -> None:
    rows = ratios.build_rows({})
    assert rows and {row.status for row in rows} == {"not run"}
    assert "not run" in render.text_table(rows, {})


def test_tables_carry_targets_results_cpu_and_load() -> None:
    rows = ratios.build_rows(given_figures())
    runs = {"consumer_transport": render.BenchRun("consumer_transport", 0.3, 1.7, 40.0, 0)}
    markdown = render.markdown_table(rows, runs)
    transport = next(line for line in markdown.splitlines() if line.startswith("| P1 transport"))
    assert "≥ 0.9" in transport and "met (by 5.6 %)" in transport and "0.30 → 1.70" in transport
    assert "kva consume 7.5, kva serve 5.1" in markdown
    assert "MISSED by 39 %" in markdown
    assert len(markdown.splitlines()) == len(rows) + 2
    text = render.text_table(rows, runs)
    assert text.splitlines()[0].startswith("figure") and "MISSED by 80 %" in text


def test_the_record_has_the_machine_commit_loads_charts_and_the_earlier_figures(
    tmp_path: Path,
) -> None:
    given = given_figures()
    page = record.Record(
        machine=Machine(2, "Test CPU", 7.6), commit="abc1234", date="2026-12-07 13:00 UTC",
        load_start=[0.21, 0.3, 0.4], load_end=[1.5, 0.9, 0.5],
        rows=ratios.build_rows(given), runs={}, quick=True,
        density=given["stream_density"]["points"],
        capacity={"consumer": 2.5},
        charts={"density": "benchmarks/stream-density.png", "ages": "benchmarks/frame-age.png"},
    )  # fmt: skip
    text = record.write(page, tmp_path / "benchmarks.md").read_text()
    assert "QUICK RUN: NOT A MEASUREMENT" in text
    assert "2 cores (Test CPU), 7.6 GiB memory" in text and "`abc1234`" in text
    assert "0.21 / 0.30 / 0.40 at the start, 1.50 / 0.90 / 0.50 at the end" in text
    assert "![stream density" in text and "(benchmarks/frame-age.png)" in text
    assert "| 4 | 60.0 | 48.0 | 20.0 % | 50 | 900 | 61.0 |" in text
    assert "Cameras per core of each process, at its CPU per frame: consumer 2.5." in text
    assert 'Before: the earlier measurements (issue 19, "Where it stands")' in text
    assert "**0.49**" in text and "load 1.3–1.8" in text
    assert "QUICK" not in record.render(page.__class__(**{**page.__dict__, "quick": False}))


def test_the_charts_are_pngs(tmp_path: Path) -> None:
    import charts

    given = given_figures()
    made = [
        charts.density_chart(given["stream_density"]["points"], tmp_path / "d.png"),
        charts.age_chart(given["consumer_freshness"], tmp_path / "a.png", "QUICK"),
    ]
    for path in made:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_density_figures_from_one_window() -> None:
    docs = [
        {"stream": f"cam{s}", "seq": q, "age_ms": 40.0 + q} for s in range(2) for q in range(10, 40)
    ]
    docs = [d for d in docs if d["seq"] % 10 != 5]  # the consumer skipped every 10th frame
    point = density.window_figures(docs, 2, 15.0, 2.0, {"producer": 0.3, "consumer": 1.35,
                                                          "bench (reader)": 0.01})  # fmt: skip
    assert point["frames_produced"] == 60 and point["frames_delivered"] == 54
    assert point["dropped"] == pytest.approx(0.1)
    assert point["cpu_ms_per_frame"]["producer"] == pytest.approx(5.0)  # per frame produced
    assert point["cpu_ms_per_frame"]["consumer"] == pytest.approx(25.0)  # per frame delivered
    assert point["cpu_ms_total"] == pytest.approx(30.0)  # the bench's own reader left out
    summary = density.curve_summary([density_point(1, 30.0), density_point(8, 32.0, 0.06)])
    assert summary["max_sustained_cameras"] == 1
    assert summary["flat"] and summary["max_deviation"] == pytest.approx(2 / 30)
    assert not density.curve_summary([density_point(1, 30.0)])["flat"]  # one point: no curve
    capacity = density.cameras_per_core([density_point(1, 30.0), density_point(2, 40.0, 0.5)], 15)
    assert capacity == {"producer": pytest.approx(1000 / 75), "consumer": pytest.approx(1000 / 375)}


def test_before_and_after_records_compare_row_by_row(tmp_path: Path) -> None:
    before = given_figures()
    after = given_figures()
    after["consumer_efficiency"]["median"]["v2"]["cpu_efficiency"] = 0.82
    del after["viewer_mjpeg"]
    (tmp_path / "before.json").write_text(json.dumps(before))
    (tmp_path / "after.json").write_text(json.dumps(after))
    pairs = compare.changes(before, after)
    assert not any(new.bench == "viewer_mjpeg" for _old, new, _change in pairs)
    text = compare.table(pairs)
    assert (
        "| P2 CPU efficiency, remote /v2 binary (kva serve) | 0.49 | 0.82 | +67 % | met (by 2.5 %) |"
        in text
    )
    assert "| P1 transport: kva consume --passthrough fps | 0.95 | 0.95 | +0 % |" in text
    assert compare.main([str(tmp_path / "before.json"), str(tmp_path / "after.json")]) == 0


def test_figures_are_written_as_json_with_no_nan(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    figures.write_figures(path, "b", {"x": float("nan"), "y": [1.5, math.inf]})
    document = json.loads(path.read_text())
    assert document["bench"] == "b" and len(document["load_average"]) == 3
    assert figures.read_figures(path) == {"x": None, "y": [1.5, None]}
    figures.write_figures(None, "b", {})  # no --json: nothing written


def test_a_busy_machine_is_refused_unless_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert busy(1.2, 2, 0.5) and not busy(0.9, 2, 0.5)
    monkeypatch.setattr(runner.os, "getloadavg", lambda: (3.0, 2.0, 1.0))
    assert runner.check_quiet(runner.parse_args([]), 2) is None
    assert "refused: the machine is busy: 1-min load average 3.00 > 1.00" in capsys.readouterr().err
    assert runner.check_quiet(runner.parse_args(["--force"]), 2) is True
    assert "WARNING: the machine is busy" in capsys.readouterr().out
    assert runner.check_quiet(runner.parse_args(["--quick"]), 2) is True
    monkeypatch.setattr(runner.os, "getloadavg", lambda: (0.4, 2.0, 1.0))
    assert runner.check_quiet(runner.parse_args([]), 2) is False


@pytest.mark.slow
@pytest.mark.subprocess
def test_quick_run_of_one_bench_prints_the_table_and_writes_only_when_asked(
    tmp_path: Path,
) -> None:
    """The real thing on its smallest bench (kva serve against raw OpenVINO, ~15 s)."""
    output = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "all.py"), "--quick", "--only", "serve",
         "--write", "--output", str(output)],
        capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("QUICK RUN (smoke test, smallest settings): NOT A MEASUREMENT") == 2
    table = done.stdout.split("NOT A MEASUREMENT\n", 1)[1]
    serve = [line for line in table.splitlines() if line.startswith("server overhead")]
    assert len(serve) == 2 and all(("met" in line) or ("MISSED" in line) for line in serve)
    assert "P1 transport" in table and "not run" in table
    assert "QUICK RUN: NOT A MEASUREMENT" in output.read_text()
    assert json.loads((tmp_path / "benchmarks" / "figures.json").read_text())["serve_overhead"]
