"""Failover runbook as code: config transformation, validation, YAML rewrite, steps, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from commerce_db import failover as fo
from commerce_db.cli import main
from commerce_db.mock_engine import ProgramRun, RegisteredResource

REPO = Path(__file__).resolve().parents[3]


def _config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


# --------------------------------------------------------------------------- config transformation


def test_prod_promotion_demotes_old_primary_in_place_and_moves_dr() -> None:
    new, changes = fo.compute_failover_config(_config("prod"), "us-west-2")
    assert new["commerce-db:primaryRegion"] == "us-west-2"
    assert new["commerce-db:replicaRegions"] == ["us-east-1", "eu-west-1"]
    # DR was the promoted region: it moves to a region that is neither new nor old primary
    assert new["commerce-db:drRegion"] == "eu-west-1"
    assert new["aws:region"] == "us-west-2"
    assert {c.key for c in changes} == {
        "aws:region", "commerce-db:primaryRegion", "commerce-db:replicaRegions", "commerce-db:drRegion",
    }  # fmt: skip
    # nothing else changes (network, cache/Global Datastore flag, sizes)
    untouched = {k: v for k, v in new.items() if k not in {c.key for c in changes}}
    assert untouched == {k: v for k, v in _config("prod").items() if k in untouched}


def test_promoting_the_second_replica_keeps_dr() -> None:
    new, changes = fo.compute_failover_config(_config("prod"), "eu-west-1")
    assert new["commerce-db:replicaRegions"] == ["us-west-2", "us-east-1"]
    assert new["commerce-db:drRegion"] == "us-west-2"
    assert "commerce-db:drRegion" not in {c.key for c in changes}


def test_drop_old_primary_for_a_regional_outage() -> None:
    new, _ = fo.compute_failover_config(_config("prod"), "us-west-2", keep_old_primary=False)
    assert new["commerce-db:replicaRegions"] == ["eu-west-1"]
    assert new["commerce-db:drRegion"] == "eu-west-1"


def test_staging_two_regions_dr_goes_to_the_old_primary() -> None:
    new, _ = fo.compute_failover_config(_config("staging"), "us-west-2")
    assert new["commerce-db:replicaRegions"] == ["us-east-2"]
    assert new["commerce-db:drRegion"] == "us-east-2"


def test_explicit_dr_region_and_untouched_aws_region() -> None:
    cfg = {**_config("prod"), "aws:region": "eu-west-1"}
    new, changes = fo.compute_failover_config(cfg, "us-west-2", dr_region="us-east-1")
    assert new["commerce-db:drRegion"] == "us-east-1"
    assert new["aws:region"] == "eu-west-1" and "aws:region" not in {c.key for c in changes}


@pytest.mark.parametrize(
    ("region", "kwargs", "message"),
    [
        ("eu-central-1", {}, "not a current replica region.*us-west-2, eu-west-1"),
        ("us-east-1", {}, "already the primary"),
        ("us-west-2", {"dr_region": "us-west-2"}, "must differ from the new primary"),
    ],
)
def test_invalid_requests_are_refused(region: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(fo.FailoverError, match=message):
        fo.compute_failover_config(_config("prod"), region, **kwargs)


def test_no_region_left_for_dr_is_refused() -> None:
    with pytest.raises(fo.FailoverError, match=r"no region is left.*--dr-region"):
        fo.compute_failover_config(_config("staging"), "us-west-2", keep_old_primary=False)


def test_result_must_load_with_the_programs_config_loader() -> None:
    new, _ = fo.compute_failover_config(
        _config("staging"), "us-west-2", keep_old_primary=False, dr_region="eu-north-9"
    )
    with pytest.raises(fo.FailoverError, match=r"would not load.*drRegion"):
        fo.validate_failover_config("staging", new)
    good, _ = fo.compute_failover_config(_config("prod"), "us-west-2")
    cfg = fo.validate_failover_config("prod", good)
    assert (cfg.primary_region, cfg.replica_regions, cfg.dr_region) == (
        "us-west-2", ("us-east-1", "eu-west-1"), "eu-west-1",
    )  # fmt: skip


# --------------------------------------------------------------------------- YAML rewrite


def test_rewrite_preserves_comments_and_untouched_lines() -> None:
    text = (
        "# header comment\n"
        "config:\n"
        "  # regions\n"
        "  aws:region: us-east-1  # default provider\n"
        "  commerce-db:replicaRegions:\n"
        "  - us-west-2\n"
        "  - eu-west-1\n"
        "  commerce-db:postgres:\n"
        "    instanceClass: db.r7g.large # sized for Black Friday\n"
        "other: 1\n"
    )
    out = fo.rewrite_config_keys(
        text,
        {
            "aws:region": "us-west-2",
            "commerce-db:replicaRegions": ["us-east-1"],
            "commerce-db:drRegion": "eu-west-1",
        },
    )
    assert "# header comment" in out and "# regions" in out and "# sized for Black Friday" in out
    doc = yaml.safe_load(out)
    assert doc["config"] == {
        "aws:region": "us-west-2",
        "commerce-db:replicaRegions": ["us-east-1"],
        "commerce-db:postgres": {"instanceClass": "db.r7g.large"},
        "commerce-db:drRegion": "eu-west-1",
    }
    assert doc["other"] == 1
    assert "  - us-east-1\n" in out  # same list indentation as before


def test_rewrite_flow_style_list_stays_flow_style() -> None:
    out = fo.rewrite_config_keys(
        "config:\n  commerce-db:replicaRegions: [a-1, b-2]\n", {"commerce-db:replicaRegions": ["c-3"]}
    )
    assert out == "config:\n  commerce-db:replicaRegions: [c-3]\n"


def test_rewrite_without_config_block_is_an_error() -> None:
    with pytest.raises(fo.FailoverError, match="no top-level 'config:'"):
        fo.rewrite_config_keys("foo: 1\n", {"a:b": 1})


def test_exotic_layout_falls_back_to_a_full_dump() -> None:
    text = "config: {aws:region: us-east-1, commerce-db:primaryRegion: us-east-1}\n"
    new_config = {"aws:region": "us-west-2", "commerce-db:primaryRegion": "us-west-2"}
    changes = [fo.ConfigChange(k, "us-east-1", v) for k, v in new_config.items()]
    out, preserved = fo.render_failover_yaml(text, new_config, changes)
    assert not preserved and yaml.safe_load(out)["config"] == new_config


# --------------------------------------------------------------------------- plan, write, build


class _RecordingRunner:
    """The real mocked-plan runner, remembering each run (before, after) to assert on them."""

    def __init__(self) -> None:
        self.runs: list[tuple[dict[str, Any], ProgramRun]] = []

    def __call__(self, stack: str, config: Any) -> ProgramRun:
        run = fo._program_run(stack, config)
        self.runs.append((dict(config), run))
        return run


@pytest.fixture(scope="module")
def prod_failover(tmp_path_factory: pytest.TempPathFactory) -> tuple[fo.FailoverPlan, _RecordingRunner]:
    """prod promoted to us-west-2 with identifiers from the real program (two mocked builds, shared)."""
    directory = tmp_path_factory.mktemp("prod-failover")
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO / name, directory / name)
    runner = _RecordingRunner()
    return fo.plan_failover("prod", "us-west-2", project_dir=directory, runner=runner), runner


def _assert_promoted(result: ProgramRun, new_primary: str, old_primary: str) -> None:
    assert result.outputs["primaryRegion"] == new_primary
    instances = result.of_type("aws:rds/instance:Instance")
    writers = [r for r in instances if not r.inputs.get("replicateSourceDb")]
    assert [w.region for w in writers] == [new_primary]
    assert old_primary in {r.region for r in instances if r.inputs.get("replicateSourceDb")}


def test_written_prod_file_builds_with_the_new_primary(
    prod_failover: tuple[fo.FailoverPlan, _RecordingRunner],
) -> None:
    plan, runner = prod_failover
    assert plan.comments_preserved
    old = plan.path.read_text()
    backup = fo.write_failover(plan)
    assert backup.read_text() == old
    written = plan.path.read_text()
    assert written == plan.new_text and written.startswith("#")  # leading comment kept
    # the "after" mocked plan was built from exactly the config now in the file
    after_config, after_run = runner.runs[1]
    assert yaml.safe_load(written)["config"] == after_config
    _assert_promoted(after_run, "us-west-2", "us-east-1")
    assert (
        after_run.of_type("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup")[0].region
        == "us-west-2"
    )


def test_written_staging_file_builds_under_mocks(project_dir: Path) -> None:
    from commerce_db_components.program import run

    from commerce_db.mock_engine import run_program

    plan = fo.plan_failover("staging", "us-west-2", project_dir=project_dir, with_identifiers=False)
    fo.write_failover(plan)
    written = (project_dir / "Pulumi.staging.yaml").read_text()
    assert written.startswith("# staging")
    result = run_program(run, stack="staging", config=yaml.safe_load(written)["config"])
    _assert_promoted(result, "us-west-2", "us-east-2")


def test_write_refuses_when_the_file_changed_meanwhile(project_dir: Path) -> None:
    plan = fo.plan_failover("staging", "us-west-2", project_dir=project_dir, with_identifiers=False)
    path = project_dir / "Pulumi.staging.yaml"
    path.write_text(path.read_text() + "# edited by someone else\n")
    with pytest.raises(fo.FailoverError, match="changed since"):
        fo.write_failover(plan)
    assert "someone else" in path.read_text()


def _res(typ: str, logical: str, region: str, parent: str, **inputs: Any) -> RegisteredResource:
    urn = f"urn:pulumi:prod::commerce-db::{parent}${typ}::{logical}"
    return RegisteredResource(
        urn=urn, type=typ, name=logical, parent_urn=f"urn:pulumi:prod::commerce-db::{parent}::p",
        custom=True, provider=None, inputs=inputs, region=region,
    )  # fmt: skip


def _fake_runner(stack: str, config: Any) -> ProgramRun:
    """Two mocked plans: us-east-1 primary before, us-west-2 primary after (names change with role)."""
    primary = config["commerce-db:primaryRegion"]
    pg, cache, proxy = "commerce:db:PostgresCluster", "commerce:db:CacheLayer", "commerce:db:ProxyLayer"
    rds, rg, grg = (
        "aws:rds/instance:Instance",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup",
    )
    if primary == "us-east-1":
        resources = [
            _res(rds, "use1-pg-primary", "us-east-1", pg, identifier="cdb-prod-use1"),
            _res(rds, "use1-pg-replica-1", "us-east-1", pg, replicateSourceDb="x",
                 identifier="cdb-prod-use1-r1"),
            _res(rds, "usw2-pg-replica", "us-west-2", pg, replicateSourceDb="arn",
                 identifier="cdb-prod-usw2-xr"),
            _res(rg, "usw2-cache", "us-west-2", cache, replicationGroupId="cdb-prod-usw2"),
            _res(grg, "use1-cache-global", "us-east-1", cache,
                 globalReplicationGroupIdSuffix="commerce-cache"),
            _res("aws:secretsmanager/secret:Secret", "use1-db-master", "us-east-1", pg,
                 name="commerce-db/prod/master"),
        ]  # fmt: skip
    else:
        resources = [
            _res(rds, "usw2-pg-primary", "us-west-2", pg, identifier="cdb-prod-usw2-primary"),
            _res(rg, "usw2-cache", "us-west-2", cache, replicationGroupId="cdb-prod-usw2"),
            _res(grg, "usw2-cache-global", "us-west-2", cache),
            _res("aws:rds/proxy:Proxy", "usw2-proxy", "us-west-2", proxy, name="cdb-prod-usw2"),
        ]  # fmt: skip
    return ProgramRun(resources=tuple(resources), outputs={})


def test_steps_are_ordered_and_carry_the_plans_identifiers(project_dir: Path) -> None:
    plan = fo.plan_failover("prod", "us-west-2", project_dir=project_dir, runner=_fake_runner)
    ids = plan.identifiers
    assert ids.source == "mocked plan"
    assert (ids.replica_instance, ids.old_primary_instance) == ("cdb-prod-usw2-xr", "cdb-prod-use1")
    assert ids.new_primary_instance == "cdb-prod-usw2-primary"
    assert ids.old_region_replicas == ("cdb-prod-use1-r1",)
    assert ids.new_primary_replication_group == "cdb-prod-usw2"
    assert ids.db_secret == "commerce-db/prod/master" and ids.new_proxy == "cdb-prod-usw2"

    titles = [s.title for s in plan.steps]
    order = ["Freeze writes", "Check replica lag", "Promote", "Global Datastore", "Point credentials",
             "Commit the new stack config", "Apply", "Verify", "Unfreeze"]  # fmt: skip
    positions = [next(i for i, t in enumerate(titles) if word in t) for word in order]
    assert positions == sorted(positions) and len(plan.steps) == len(order)

    commands = "\n".join(c for s in plan.steps for c in s.commands)
    assert "--metric-name ReplicaLag" in commands and "Value=cdb-prod-usw2-xr " in commands
    assert "aws rds promote-read-replica --db-instance-identifier cdb-prod-usw2-xr " in commands
    # renamed to the identifier the new config gives the writer, so Pulumi adopts instead of replacing
    assert (
        "--db-instance-identifier cdb-prod-usw2-xr --new-db-instance-identifier cdb-prod-usw2-primary"
        in commands
    )
    promote = next(s for s in plan.steps if s.title.startswith("Promote"))
    assert promote.commands[0].startswith("aws rds promote-read-replica")
    assert "new-db-instance-identifier" in promote.commands[2]
    assert "--region us-west-2" in commands
    assert "aws elasticache failover-global-replication-group" in commands
    assert "--primary-region us-west-2 --primary-replication-group-id cdb-prod-usw2" in commands
    assert "pulumi up --yes" in commands
    assert "--no-deletion-protection" in commands and "cdb-prod-use1" in commands
    # role change renames the promoted instance and the global group: adopt, don't replace
    moved = {m.what: m for m in ids.state_moves}
    assert set(moved) == {"promoted PostgreSQL instance", "Global Datastore"}
    assert "pulumi import aws:rds/instance:Instance usw2-pg-primary cdb-prod-usw2-primary" in commands
    assert "pulumi stack --show-ids" not in commands  # every identifier is known: no lookup step
    assert f"pulumi state delete '{moved['promoted PostgreSQL instance'].old_urn}'" in commands


def test_without_global_datastore_no_cache_failover_command(project_dir: Path) -> None:
    plan = fo.plan_failover("staging", "us-west-2", project_dir=project_dir, with_identifiers=False)
    commands = "\n".join(c for s in plan.steps for c in s.commands)
    assert "failover-global-replication-group" not in commands
    assert any("starts cold" in s.title for s in plan.steps)
    assert plan.identifiers.source.startswith("placeholders")
    assert "<replica-db-identifier-in-us-west-2>" in commands


def test_program_failure_falls_back_to_placeholders(project_dir: Path) -> None:
    def broken(_stack: str, _config: Any) -> Any:
        raise RuntimeError("program not importable")

    plan = fo.plan_failover("prod", "eu-west-1", project_dir=project_dir, runner=broken)
    assert plan.identifiers.source == "placeholders: RuntimeError: program not importable"
    assert plan.identifiers.global_group_id == "<global-replication-group-id>"


# --------------------------------------------------------------------------- CLI


def test_cli_dry_run_json_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    before = (REPO / "Pulumi.prod.yaml").read_text()
    assert main(["failover", "promote", "prod", "--region", "eu-west-1", "--json", "--no-plan"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["written"] is False and out["newPrimary"] == "eu-west-1" and out["oldPrimary"] == "us-east-1"
    assert "+  commerce-db:primaryRegion: eu-west-1" in out["diff"]
    assert out["steps"][0]["title"].startswith("Freeze writes")
    assert (REPO / "Pulumi.prod.yaml").read_text() == before


def test_cli_bad_region_exits_2_with_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["failover", "promote", "prod", "--region", "ap-south-1", "--no-plan"]) == 2
    err = capsys.readouterr().err
    assert "'ap-south-1' is not a current replica region" in err and "us-west-2, eu-west-1" in err


def test_real_program_supplies_the_identifiers(
    prod_failover: tuple[fo.FailoverPlan, _RecordingRunner],
) -> None:
    plan, runner = prod_failover
    assert [cfg["commerce-db:primaryRegion"] for cfg, _run in runner.runs] == ["us-east-1", "us-west-2"]
    ids = plan.identifiers
    assert ids.source == "mocked plan"
    assert not ids.replica_instance.startswith("<") and not ids.old_primary_instance.startswith("<")
    promote = next(s for s in plan.steps if s.title.startswith("Promote"))
    assert promote.commands[0] == (
        f"aws rds promote-read-replica --db-instance-identifier {ids.replica_instance} "
        "--backup-retention-period 7 --region us-west-2"
    )
    # state moves use engine-style URNs (full parent chain) and the new region's explicit provider
    assert {m.what for m in ids.state_moves} >= {"promoted PostgreSQL instance"}
    for move in ids.state_moves:
        assert move.old_urn.startswith("urn:pulumi:prod::commerce-db::commerce:db:RegionStack$")
        assert move.new_parent_urn and move.new_parent_urn.startswith("urn:pulumi:prod::commerce-db::")
        assert move.provider_urn and move.provider_urn.endswith("pulumi:providers:aws::aws-us-west-2")


def test_global_datastore_follows_the_environment_default(project_dir: Path) -> None:
    path = project_dir / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("    globalDatastore: true\n", ""))  # prod default: on
    plan = fo.plan_failover("prod", "eu-west-1", project_dir=project_dir, with_identifiers=False)
    assert plan.global_datastore
    assert any("failover-global-replication-group" in c for s in plan.steps for c in s.commands)


def test_cli_write_rewrites_the_file_and_keeps_a_backup(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project_dir / "Pulumi.staging.yaml"
    before = path.read_text()
    argv = ["failover", "promote", "staging", "--region", "us-west-2", "--write", "--no-plan"]
    assert main([*argv, "--dir", str(project_dir)]) == 0
    out = capsys.readouterr().out
    assert f"Wrote {path}" in out and "Operator runbook" in out
    assert (project_dir / "Pulumi.staging.yaml.bak").read_text() == before
    config = yaml.safe_load(path.read_text())["config"]
    assert config["commerce-db:primaryRegion"] == "us-west-2"
    # promoting back restores the original content exactly (comments included)
    assert main(["failover", "promote", "staging", "--region", "us-east-2", "--write", "--no-plan",
                 "--dir", str(project_dir)]) == 0  # fmt: skip
    assert path.read_text() == before


def test_engine_urns_carry_the_whole_parent_chain() -> None:
    def rec(urn: str, typ: str, name: str, parent: str | None) -> RegisteredResource:
        return RegisteredResource(
            urn=urn, type=typ, name=name, parent_urn=parent, custom=False, provider=None, inputs={}
        )

    base = "urn:pulumi:prod::commerce-db::"
    region = rec(f"{base}commerce:db:RegionStack::usw2", "commerce:db:RegionStack", "usw2", None)
    cluster = rec(f"{base}commerce:db:RegionStack$commerce:db:PostgresCluster::usw2-pg",
                  "commerce:db:PostgresCluster", "usw2-pg", region.urn)  # fmt: skip
    # what the SDK's mock monitor produces: only the immediate parent's type
    instance = rec(f"{base}commerce:db:PostgresCluster$aws:rds/instance:Instance::usw2-pg-primary",
                   "aws:rds/instance:Instance", "usw2-pg-primary", cluster.urn)  # fmt: skip
    urns = fo.engine_urns([region, cluster, instance])
    assert urns[instance.urn] == (
        f"{base}commerce:db:RegionStack$commerce:db:PostgresCluster$aws:rds/instance:Instance::usw2-pg-primary"
    )
    assert urns[region.urn] == region.urn and urns[cluster.urn] == cluster.urn
