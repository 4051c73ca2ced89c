"""End-to-end smoke runs of ``commerce-db demo`` and the bench scenarios with tiny sizes: the
commands start their own servers, report, check the DB and stop everything."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commerce_db.bench import scenarios, tls_cost
from commerce_db.bench.progress import Progress
from commerce_db.bench.runner import GOALS, render_table, run_bench
from commerce_db.cli import main
from commerce_db.localtier import registry

pytestmark = pytest.mark.timeout(240)


def _server_children(parent: int | None = None) -> set[int]:
    """Pids of server processes that are children of this test process (the session-scoped tier's
    servers are among them when other integration tests ran first)."""
    me, found = parent or os.getpid(), set()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().split()
        except OSError:
            continue
        if int(fields[3]) == me and fields[1].strip("()") in ("postgres", "redis-server", "pgbouncer"):
            found.add(int(fields[0]))
    return found


def test_demo_command_reports_and_stops_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    servers_before, tiers_before = _server_children(), set(registry._live)
    out_json, out_png = tmp_path / "demo.json", tmp_path / "demo.png"
    rc = main(
        [
            "demo",
            "--duration",
            "3",
            "--products",
            "300",
            "--users",
            "300",
            "--concurrency",
            "8",
            "--hot-stock",
            "5",
            "--json",
            str(out_json),
            "--chart",
            str(out_png),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    doc = json.loads(out_json.read_text())
    assert doc["oversold"] == 0
    assert doc["inventory_check"]["acknowledged_missing_in_db"] == 0
    assert doc["inventory_check"]["duplicated_orders"] == 0
    ops = {o["op"] for o in doc["operations"]}
    assert {"product.get", "order.place", "session.create"} <= ops
    assert doc["orders"]["accepted"] <= 3 * 5  # never more than the stock
    assert doc["cache"]["hits"] > 0
    assert "oversold units: 0" in printed and "p99 ms" in printed
    assert _server_children() <= servers_before  # every server the demo started is stopped
    assert set(registry._live) <= tiers_before  # and no tier of its own is left registered


async def test_bench_scenarios_with_tiny_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = scenarios.Sizes(
        rounds=2,
        seq_ops=30,
        tput_rounds=2,
        tput_seconds=0.3,
        tput_concurrency=4,
        flash_stock={50: 10, 500: 10},
        flash_rounds=2,
        alt_rounds=1,
        bouncer_clients=10,
        bouncer_seconds=0.3,
    )
    monkeypatch.setattr(scenarios.Sizes, "for_mode", classmethod(lambda cls, quick: tiny))
    servers_before = _server_children()
    path = tmp_path / "bench.json"
    doc = await run_bench(quick=True, json_path=path, progress=Progress(interactive=False, every=1e9))
    saved = json.loads(path.read_text())
    for key in GOALS:
        assert isinstance(saved[key], int | float), key
    assert saved["oversold"] == 0
    assert saved["raw"]["flash_sale_50"]["all_consistent"] is True
    # every textbook alternative ran next to the group commit, with latency and server CPU
    assert {"skip_locked", "advisory_trylock", "block_reservations"} <= set(
        saved["raw"]["flash_sale_500"]["orders_per_s"]
    )
    assert saved["raw"]["flash_sale_500"]["latency_ms"]["dataaccess"]["orders"] > 0
    assert saved["server_cpu_ms_per_1000_ops"]["browse_reads"]["cache_replica"]["postgres"] is not None
    assert saved["primary_reads_per_1000_reads"] == 0  # the cache side never read the primary
    assert saved["db_queries_per_1000_reads"] >= 0
    assert saved["raw"]["cached_read"]["misses_during_measure"] == 0  # A really measured cache hits
    assert saved["pgbouncer_server_connections"] <= 25  # default_pool_size 20 + reserve 5
    assert saved["direct_server_connections"] >= 10  # one per client
    assert {"python", "asyncpg", "redis-py", "postgresql", "redis", "pgbouncer"} <= set(saved["versions"])
    assert "cached_read_vs_raw_redis" in render_table(doc)
    # The bench runs over TLS and reports what TLS costs next to plaintext, in the same run.
    assert saved["transport"] == "tls"
    for key, _ in tls_cost.KEYS:
        assert saved[key] > 0, key
        assert key in render_table(doc)
    assert not any(saved["raw"]["tls_cost"]["errors"].values())
    assert _server_children() <= servers_before


def test_demo_ctrl_c_stops_every_server() -> None:
    """SIGINT (Ctrl-C) in the middle of the traffic: exit code 130, no server left running."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commerce_db.cli",
            "demo",
            "--duration",
            "60",
            "--products",
            "300",
            "--users",
            "300",
            "--concurrency",
            "4",
            "--json",
            os.devnull,
            "--chart",
            os.devnull,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    servers: set[int] = set()
    for line in proc.stdout:
        if line.startswith("flash sale:"):
            servers = _server_children(proc.pid)
            break
    assert len(servers) >= 5, "demo did not start its servers"  # 2 postgres, pgbouncer, 2 redis
    time.sleep(1.0)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    print(f"demo stopped {time.monotonic() - t0:.1f} s after SIGINT")
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    assert not [p for p in servers if Path(f"/proc/{p}").exists()]
