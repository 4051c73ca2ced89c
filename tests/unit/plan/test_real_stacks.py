"""The plan on the real program (components.program.run) with both stack files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from commerce_db.cli import main
from commerce_db.diagram import build_graph
from commerce_db.plan import PlanReport, plan_stack
from commerce_db.plan.render import render_json, render_text
from commerce_db.policy_rules import Enforcement

REPO = Path(__file__).resolve().parents[3]
SECRET_RUN = "P" * 16  # the mock engine's RandomPassword results are runs of "P"

pytestmark = pytest.mark.skipif(
    not (REPO / "components" / "program.py").is_file(), reason="commerce_db_components.program not present"
)


@pytest.fixture(scope="module")
def prod() -> PlanReport:
    return plan_stack("prod", project_dir=REPO)


@pytest.fixture(scope="module")
def staging() -> PlanReport:
    return plan_stack("staging", project_dir=REPO)


def _resources(report: PlanReport, type_: str) -> list:
    return [r for rv in report.regions for c in rv.all_components() for r in c.resources if r.type == type_]


def test_prod_builds_passes_policy_and_shows_what_matters(prod: PlanReport) -> None:
    assert not prod.blocked, [f.message for f in prod.findings]
    assert [r.region for r in prod.regions][:3] == ["us-east-1", "us-west-2", "eu-west-1"]
    dbs = {r.name: r.settings for r in _resources(prod, "aws:rds/instance:Instance")}
    primaries = [s for s in dbs.values() if s["role"] == "primary"]
    assert (
        len(primaries) == 1 and primaries[0]["multiAz"] is True and primaries[0]["deletionProtection"] is True
    )
    assert any(s["role"] == "cross-region replica" for s in dbs.values())
    (target,) = _resources(prod, "aws:rds/proxyTarget:ProxyTarget")
    assert dbs[target.settings["target"]]["role"] == "primary"  # the proxy fronts the writer only
    writer = next(o for o in prod.outputs if o.name == "writerEndpoint")
    assert writer.wiring and writer.wiring.startswith("rds.Proxy")
    assert prod.cost.monthly_total > 0 and prod.cost.unknown == 0


def test_staging_builds_and_passes_policy(staging: PlanReport) -> None:
    assert not staging.blocked, [f.message for f in staging.findings]
    assert staging.cost.unknown == 0
    assert 0 < staging.cost.monthly_total < 1000  # small classes, one replica region


def test_real_secrets_never_printed(prod: PlanReport) -> None:
    assert any(r.type == "random:index/randomPassword:RandomPassword" for r in prod.run.resources)
    assert SECRET_RUN not in render_text(prod)
    assert SECRET_RUN not in render_json(prod)


def test_prod_diagram_has_the_architecture_edges(prod: PlanReport) -> None:
    g = build_graph(prod.run, primary_region="us-east-1")
    labels = {e.label for e in g.edges}
    assert {
        "replica",
        "cross-region replica",
        "pooled writes",
        "writes (TLS)",
        "Global Datastore",
        "copy to DR",
        "notify",
    } <= labels


def test_retention_beyond_the_aws_limit_is_config_below_the_floor_is_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # One layer per rule: 0 is refused by AWS (config, exit 2, the AWS range, no policy quoted);
    # 1 is accepted by AWS and judged by the backup-retention policy (exit 3, the policy's floor).
    assert main(["plan", "staging", "--dir", str(REPO), "--config", "backup.retentionDays=0"]) == 2
    err = capsys.readouterr().err
    assert (
        "backup.retentionDays = 0: must be an integer from 1 to 35" in err and "backup-retention" not in err
    )
    assert main(["plan", "staging", "--dir", str(REPO), "--config", "backup.retentionDays=1"]) == 3
    err = capsys.readouterr().err
    assert "(backup-retention)" in err and "at least 7 days" in err and "1 to 35" not in err


def test_resource_level_violation_on_staging_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "staging", "--dir", str(REPO), "--json", "--config", "backup.retentionDays=3"]) == 3
    doc = json.loads(capsys.readouterr().out)
    hits = [f for f in doc["policy"] if f["policy"] == "backup-retention"]
    assert hits and all(f["enforcement"] == Enforcement.MANDATORY.value for f in hits)
    assert any(f["type"] == "aws:rds/instance:Instance" for f in hits)


def test_invalid_config_exits_2_naming_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "prod", "--dir", str(REPO), "--config", "postgres.instanceClass=db.x"]) == 2
    err = capsys.readouterr().err
    assert "commerce-db:postgres.instanceClass" in err and "Traceback" not in err
    # An unknown key is a config error even when its name sounds like a policy's.
    assert main(["plan", "prod", "--dir", str(REPO), "--config", "postgres.publicAccess=true"]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_public_database_in_a_stack_file_is_caught_by_the_policy(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["plan", "prod", "--dir", str(REPO), "--json", "--config", "postgres.publiclyAccessible=true"]
    )
    assert code == 3
    doc = json.loads(capsys.readouterr().out)
    hits = {f["resource"] for f in doc["policy"] if f["policy"] == "no-public-database"}
    assert "use1-pg-1" in hits


def test_console_script_end_to_end() -> None:
    exe = Path(sys.executable).with_name("commerce-db")
    proc = subprocess.run(
        [str(exe), "plan", "staging", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["stack"] == "staging" and doc["cost"]["note"] == "estimate"


def test_plan_output_is_identical_across_runs(staging: PlanReport) -> None:
    # Some resources register from inside applies, in an order that varies between runs; the
    # tree, the cost lines and the JSON must not follow that order.
    again = [render_json(plan_stack("staging", project_dir=REPO)) for _ in range(3)]
    assert all(doc == render_json(staging) for doc in again)


def test_readme_plan_excerpt_is_what_plan_prod_prints(prod: PlanReport) -> None:
    # The README shows a real `plan prod` summary; this keeps it from going stale when the plan
    # changes (regenerate it with `./dev plan prod`). Lines ending in "..." are prefixes; "  ..."
    # stands for lines left out.
    from commerce_db.plan.render import render_summary

    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("(prod, excerpt):\n\n```\n", 1)[1].split("```", 1)[0]
    printed = render_summary(prod, details_path="out/plan-prod.txt").splitlines()
    for line in block.splitlines():
        if not line.strip() or line.strip() == "...":
            continue
        if line.endswith("..."):
            assert any(p.startswith(line[:-3]) for p in printed), f"README plan excerpt is stale: {line!r}"
        else:
            assert line in printed, f"README plan excerpt is stale: {line!r}"
