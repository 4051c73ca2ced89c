"""Diagram content: regions as subgraphs, components, and the architecture's edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from commerce_db.cli import main
from commerce_db.diagram import build_graph, render, to_dot, to_mermaid
from commerce_db.plan import PlanReport
from tests.unit.plan.conftest import FIXTURE_DIR, SAMPLE


def test_graph_edges(sample_prod: PlanReport) -> None:
    g = build_graph(sample_prod.run, primary_region="us-east-1")
    label = {n.id: n.label.split("<br/>")[0] for n in g.nodes.values()}
    edges = {(label[e.src], label[e.dst], e.label) for e in g.edges}
    assert ("use1-primary", "use1-replica-1", "replica") in edges
    assert ("use1-primary", "euw1-xr-replica", "cross-region replica") in edges
    assert ("use1-proxy", "use1-primary", "pooled writes") in edges
    assert ("application", "use1-proxy", "writes (TLS)") in edges
    assert ("application", "use1-redis", "cache") in edges
    assert ("use1-redis", "euw1-redis", "Global Datastore") in edges
    assert ("use1-vault", "euw1-vault", "copy to DR") in edges
    assert ("use1-primary", "use1-vault", "daily backup") in edges
    alarm_edges = {(s, d) for s, d, lbl in edges if lbl == "notify"}
    assert alarm_edges == {("CloudWatch alarms (4)", "use1-alarms"), ("CloudWatch alarms (2)", "euw1-alarms")}
    assert g.regions == ["us-east-1", "eu-west-1"]


def test_mermaid_and_dot_text(sample_prod: PlanReport) -> None:
    g = build_graph(sample_prod.run, primary_region="us-east-1")
    mmd = to_mermaid(g)
    assert mmd.startswith("flowchart LR")
    assert '["us-east-1 (primary)"]' in mmd and '["eu-west-1"]' in mmd
    assert '["RegionStack use1"]' in mmd and '["PostgresCluster use1-db"]' in mmd
    assert '-.->|"cross-region replica"|' in mmd
    assert mmd.count("subgraph") == mmd.count("\n  end") + mmd.count("\n    end") + mmd.count("\n      end")
    dot = to_dot(g)
    assert dot.startswith('digraph "commerce-db"') and "subgraph cluster_" in dot
    assert "style=dashed" in dot and dot.rstrip().endswith("}")
    assert render(g, "x.md").startswith("```mermaid\nflowchart LR")
    assert render(g, "x.dot") == dot


def test_cli_writes_diagram_by_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, head in (("arch.mmd", "%% commerce-db stack prod\nflowchart LR"), ("arch.dot", "digraph")):
        path = tmp_path / "out" / name
        code = main(["plan", "prod", "--dir", str(FIXTURE_DIR), "--program", SAMPLE, "--diagram", str(path)])
        assert code == 0
        assert path.read_text().startswith(head)
        assert f"diagram written to {path}" in capsys.readouterr().out
