"""Pure helpers of the demo/bench tooling: percentiles, paired ratios, Zipf picking, tables,
charts, goals and argument validation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from commerce_db.bench.measure import LoopResult, paired_ratio
from commerce_db.bench.report import format_table, write_json, write_latency_chart
from commerce_db.bench.runner import GOALS
from commerce_db.bench.stats import LatencyRecorder, percentile
from commerce_db.bench.zipf import ZipfPicker
from commerce_db.demo.runner import DemoConfig


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 99) == 7.0


def test_paired_ratio_is_median_of_round_ratios() -> None:
    def lr(mean_s: float) -> LoopResult:
        return LoopResult(ops=1, elapsed=mean_s, durations=[mean_s])

    a = [lr(2.0), lr(3.0), lr(100.0)]  # one round disturbed by a noisy neighbour
    b = [lr(1.0), lr(1.0), lr(1.0)]
    assert paired_ratio(a, b, metric="mean_us") == pytest.approx(3.0)
    assert paired_ratio([lr(1.0), lr(1.0)], [lr(1.0), lr(2.0)], metric="throughput") == pytest.approx(1.5)


def test_zipf_is_skewed_and_reproducible() -> None:
    keys = list(range(1000))
    picker = ZipfPicker(keys, s=1.1, seed=3)
    counts = Counter(picker.pick() for _ in range(20_000))
    top10 = sum(c for _, c in counts.most_common(10))
    assert top10 / 20_000 > 0.35  # uniform would give 1%
    assert 0.35 < picker.top_share(0.01) < 0.8
    p1, p2 = ZipfPicker(keys, seed=9), ZipfPicker(keys, seed=9)
    assert [p1.pick() for _ in range(100)] == [p2.pick() for _ in range(100)]
    uniform = ZipfPicker(keys, s=0.0, seed=1)
    assert uniform.top_share(0.1) == pytest.approx(0.1, abs=0.01)


def test_zipf_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        ZipfPicker([])
    with pytest.raises(ValueError, match="exponent"):
        ZipfPicker([1], s=-1)


def test_latency_recorder_summary_and_timeseries() -> None:
    rec = LatencyRecorder()
    for i in range(100):
        rec.record("get", rec.start + i * 0.01, (i + 1) / 1000.0)
    rec.error("get", TimeoutError())
    rec.finish()
    s = rec.summary("get")
    assert s.count == 100 and s.errors == 1
    assert s.p50_ms == pytest.approx(50.0) and s.p99_ms == pytest.approx(99.0)
    series = rec.timeseries("get", bucket=0.5)
    assert [p["t"] for p in series] == [0.0, 0.5] and sum(p["count"] for p in series) == 100


def test_format_table_aligns_columns() -> None:
    out = format_table(["name", "value"], [["a", 1.23456], ["longer", 12345]])
    lines = out.splitlines()
    assert lines[0].startswith("name    value") and "1.235" in lines[2] and "12,345" in lines[3]


def test_write_json_and_chart(tmp_path: Path) -> None:
    p = write_json(tmp_path / "sub" / "r.json", {"x": 1.5})
    assert json.loads(p.read_text()) == {"x": 1.5}
    png = tmp_path / "c.png"
    note = write_latency_chart(
        png,
        {"get": [{"t": 0.0, "p50_ms": 1.0, "p99_ms": 2.0}, {"t": 1.0, "p50_ms": 1.5, "p99_ms": 3.0}]},
        title="t",
        markers=[(0.5, "event")],
    )
    if note is None:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib" in note


def test_goals_direction() -> None:
    assert GOALS["cached_read_vs_raw_redis"].met(1.1) and not GOALS["cached_read_vs_raw_redis"].met(1.3)
    assert GOALS["read_throughput_cache_replica_vs_primary"].met(3.2)
    assert not GOALS["read_throughput_cache_replica_vs_primary"].met(2.9)
    assert GOALS["oversold"].met(0) and not GOALS["oversold"].met(1)


def test_demo_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="--hot-stock"):
        DemoConfig(hot_stock=0)
    with pytest.raises(ValueError, match="--duration"):
        DemoConfig(duration=0)


def test_timeseries_pools_ops_and_drops_the_partial_last_bucket() -> None:
    rec = LatencyRecorder()
    for i in range(25):  # 2.5 s of samples, 10 per second per op
        rec.record("a", rec.start + i * 0.1, 0.001)
        rec.record("b", rec.start + i * 0.1, 0.003)
    pooled = rec.timeseries(["a", "b"], bucket=1.0)
    assert [p["t"] for p in pooled] == [0.0, 1.0, 2.0] and pooled[0]["count"] == 20
    whole = rec.timeseries(["a", "b"], bucket=1.0, until=2.5)  # traffic stopped at 2.5 s
    assert [p["t"] for p in whole] == [0.0, 1.0]  # the partial 2-3 s bucket is not drawn
    assert [p["t"] for p in rec.timeseries("a", bucket=1.0, until=3.0)] == [0.0, 1.0, 2.0]
    assert rec.timeseries("a", bucket=1.0)[0]["count"] == 10


def test_demo_report_prints_the_gate_as_sentences() -> None:
    from commerce_db.demo.runner import render_gate

    lines = render_gate({"refused_by_redis": 2158, "let_through": 79})
    assert lines[0].startswith("2,158 sold-out orders refused in Redis") and "79 let through" in lines[1]
    assert not any("{" in line for line in lines)
    assert render_gate(None) == ["off (every order went to PostgreSQL)"]
