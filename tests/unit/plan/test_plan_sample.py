"""The plan on the sample program: grouping, JSON schema, secret masking, exit codes."""

from __future__ import annotations

import json

import pytest

from commerce_db.cli import main
from commerce_db.plan import PlanReport
from commerce_db.plan.render import render_json, render_text, to_json
from tests.unit.plan.conftest import FIXTURE_DIR, MOCK_SECRET_CHAR, SAMPLE, sample_plan


def cli(*args: str) -> list[str]:
    return ["plan", *args, "--dir", str(FIXTURE_DIR), "--program", SAMPLE]


def test_tree_groups_by_region_then_nested_component(sample_prod: PlanReport) -> None:
    assert [r.region for r in sample_prod.regions] == ["us-east-1", "eu-west-1", "global"]
    use1 = sample_prod.regions[0]
    (stack,) = [c for c in use1.components if c.type == "commerce:db:RegionStack"]
    assert stack.name == "use1"
    children = {c.type.rsplit(":", 1)[-1]: c for c in stack.children}
    assert set(children) == {
        "PostgresCluster",
        "ProxyLayer",
        "CacheLayer",
        "ObservabilityLayer",
        "BackupPlan",
    }
    pg = children["PostgresCluster"]
    assert pg.parent == "use1" and pg.path == "use1/use1-db"
    names = [r.name for r in pg.resources]
    assert names[:2] == ["use1-primary", "use1-replica-1"]  # instances listed first
    primary = pg.resources[0]
    assert primary.settings["role"] == "primary"
    assert primary.settings["class"] == "db.r7g.large"
    assert primary.settings["multiAz"] is True
    assert primary.settings["storage"] == "io2 200 GiB 12000 IOPS"
    assert primary.settings["kms"] == "CMK use1-db-key"
    assert primary.settings["backupRetentionDays"] == 14
    # The cross-region replica sits in its own region, wired to the primary by ARN.
    euw1 = sample_prod.regions[1]
    xr = next(r for c in euw1.all_components() for r in c.resources if r.name == "euw1-xr-replica")
    assert xr.settings["role"] == "cross-region replica" and xr.settings["source"] == "use1-primary"
    # The random passwords have no region of their own.
    assert {r.name for r in sample_prod.regions[2].loose} == {"master-password", "redis-token"}


def test_text_output_has_all_sections(sample_prod: PlanReport) -> None:
    text = render_text(sample_prod)
    for heading in (
        "Region us-east-1 (primary)",
        "Region eu-west-1",
        "Resources by type",
        "Exports",
        "Policy:",
        "Cost:",
    ):
        assert heading in text
    assert "rds.Instance 3" in " ".join(text.split()) or "rds.Instance                           3" in text
    assert "writerEndpoint = use1-proxy.proxy-abc123" in text and "-> rds.Proxy 'use1-proxy' endpoint" in text
    assert "\x1b[" not in text  # no colour unless a TTY
    assert "\x1b[" in render_text(sample_prod, color=True)
    tree = text.split("Resources by type")[0]
    assert max(len(line) for line in tree.splitlines()) <= 110  # settings wrap instead of giant lines


def test_json_document_schema(sample_prod: PlanReport) -> None:
    doc = json.loads(render_json(sample_prod))
    assert {"stack", "project", "regions", "counts", "total", "outputs", "policy", "cost"} <= set(doc)
    assert doc["stack"] == "prod" and doc["project"] == "commerce-db"
    comp = doc["regions"]["us-east-1"]["components"]["use1/use1-db"]
    assert comp["type"] == "commerce:db:PostgresCluster" and comp["parent"] == "use1"
    res = next(r for r in comp["resources"] if r["name"] == "use1-primary")
    assert set(res) == {"type", "name", "settings", "parent"} and res["parent"] == "use1-db"
    assert doc["counts"]["aws:rds/instance:Instance"] == 3
    assert doc["total"] == sum(doc["counts"].values())
    assert doc["policy"] == []
    cost = doc["cost"]
    assert {"currency", "as_of", "note", "per_region", "lines", "monthly_total"} <= set(cost)
    assert cost["note"] == "estimate" and cost["as_of"] == "2026-11-01"
    assert set(cost["per_region"]) == {"us-east-1", "eu-west-1"}
    assert cost["monthly_total"] == pytest.approx(sum(cost["per_region"].values()), abs=0.05)


def test_json_prints_whole_numbers_as_integers(sample_prod: PlanReport) -> None:
    text = render_json(sample_prod)
    doc = json.loads(text)
    primary = next(r for r in doc["resources"] if r["name"] == "use1-primary")
    storage = primary["inputs"]["allocatedStorage"]
    assert storage == 200 and type(storage) is int and '"allocatedStorage": 200,' in text
    assert all(type(v) is not float or not v.is_integer() for v in primary["inputs"].values())
    assert any(type(line["monthly"]) is float for line in doc["cost"]["lines"])  # fractions stay


def test_secrets_never_printed(sample_prod: PlanReport, capsys: pytest.CaptureFixture[str]) -> None:
    password = sample_prod.run.by_name("master-password").state["result"]
    assert password == MOCK_SECRET_CHAR * 24
    token_input = sample_prod.run.by_name("use1-redis").inputs["authToken"]
    assert token_input.reveal() == MOCK_SECRET_CHAR * 32  # the program did pass the token...
    text = render_text(sample_prod)
    doc = render_json(sample_prod)
    for out in (text, doc):
        assert MOCK_SECRET_CHAR * 16 not in out  # ...but neither output shows it
    assert to_json(sample_prod)["outputs"]["redisAuthToken"] == "[secret]"
    assert "password=[secret]" in text


def test_cli_exit_0_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(cli("prod", "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stack"] == "prod"


@pytest.mark.parametrize(
    ("override", "policy"),
    [
        ("publiclyAccessible=true", "no-public-database"),
        ("backupRetention=0", "backup-retention"),
        ("deletionProtection=false", "prod-deletion-protection"),
    ],
)
def test_cli_exit_3_on_mandatory_violation(
    override: str, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*cli("prod", "--json"), "--config", override]) == 3
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # the document is still printed
    hits = [f for f in doc["policy"] if f["policy"] == policy]
    assert hits and hits[0]["enforcement"] == "mandatory" and hits[0]["resource"] == "use1-primary"
    assert {"policy", "enforcement", "resource", "type", "region", "message"} == set(hits[0])
    assert f"mandatory policy violated ({policy})" in captured.err


def test_staging_allows_what_prod_forbids(capsys: pytest.CaptureFixture[str]) -> None:
    # staging's stack file turns deletion protection off: not a violation outside prod.
    assert main([*cli("staging"), "--details"]) == 0
    assert "all policies pass" in capsys.readouterr().out


def test_cli_config_error_exit_2_names_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cli("prod"), "--config", "instanceClass=r7g.large"]) == 2
    err = capsys.readouterr().err
    assert "invalid config for stack 'prod'" in err and "commerce-db:instanceClass" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    # A value beyond an AWS limit is a config error, even for a key a policy also judges (exit 2,
    # no policy named: one layer decides each rule).
    assert main([*cli("prod"), "--config", "backupRetention=40"]) == 2
    err = capsys.readouterr().err
    assert "commerce-db:backupRetention" in err and "backup-retention" not in err


def test_cli_unknown_stack_and_bad_override_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(cli("qa")) == 2
    assert "available stacks: prod, staging" in capsys.readouterr().err
    assert main([*cli("prod"), "--config", "oops"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_price_unknown_line_does_not_crash() -> None:
    report = sample_plan("prod", ("instanceClass=db.z9.huge",))
    unknown = [line for line in report.cost.lines if line.monthly is None]
    assert unknown and all("price unknown" in line.note for line in unknown)
    assert report.cost.unknown == len(unknown)


def test_config_rejection_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cli("prod", "--json"), "--config", "backupRetention=40"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"]["key"] == "commerce-db:backupRetention" and "policy" not in doc
    assert [e["key"] for e in doc["errors"]] == ["commerce-db:backupRetention"]
    assert main([*cli("prod", "--json"), "--config", "instanceClass=x"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"]["key"] == "instanceClass" and "policy" not in doc
