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
        "commerce-db:homeRegion", "commerce-db:unreachableRegions", "commerce-db:promotedFrom",
    }  # fmt: skip
    assert new["commerce-db:promotedFrom"] == "us-east-1"  # the promoted copies' region, until complete
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
        run = _cached(stack, config)
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
    # The Global Datastore stays under the home region's provider (homeRegion pinned to the old
    # primary): the failover itself is an AWS action, the program must not move or replace it.
    assert yaml.safe_load(written)["config"]["commerce-db:homeRegion"] == "us-east-1"
    assert (
        after_run.of_type("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup")[0].region
        == "us-east-1"
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


_RUNS: dict[str, ProgramRun] = {}


def _cached(stack: str, config: Any) -> ProgramRun:
    """The real mocked-plan runner, each distinct config built once per test session."""
    key = json.dumps([stack, config], sort_keys=True, default=str)
    if key not in _RUNS:
        _RUNS[key] = fo._program_run(stack, config)
    return _RUNS[key]


def _commands(plan: fo.FailoverPlan, phase: str | None = None) -> str:
    return "\n".join(c for s in plan.steps if phase in (None, s.phase) for c in s.commands)


def _titles(plan: fo.FailoverPlan) -> list[str]:
    return [s.title for s in plan.steps]


def _in_order(titles: list[str], words: list[str]) -> bool:
    positions = [next(i for i, t in enumerate(titles) if w in t) for w in words]
    return positions == sorted(positions)


@pytest.fixture(scope="module")
def prod_outage(tmp_path_factory: pytest.TempPathFactory) -> fo.FailoverPlan:
    """The issue's command: prod, us-west-2, --drop-old-primary (RDS)."""
    directory = tmp_path_factory.mktemp("prod-outage")
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO / name, directory / name)
    return fo.plan_failover(
        "prod", "us-west-2", project_dir=directory, keep_old_primary=False, runner=_cached
    )


LOST_PROVIDER = "urn:pulumi:prod::commerce-db::pulumi:providers:aws::aws-us-east-1"


def _outage_text_without_old_region_reads(text: str) -> str:
    """The outage commands minus the places that *name* the old region without calling it: the
    list-secrets filter (replicas in us-west-2 whose primary was us-east-1, by their names) and the
    jq selections over stack outputs (the old region's routing-control ARN, its ARC endpoint skipped)."""
    for allowed in (
        "Key=primary-region,Values=us-east-1 Key=name,Values=cdb-prod-use1-master,use1-pg-",
        """jq -r '."us-east-1"'""",
        'select(.region != "us-east-1")',
        "failover: primary us-east-1 -> us-west-2",  # a git commit message
        "aws-us-east-1",
    ):
        text = text.replace(allowed, "")
    return text


def test_outage_runbook_needs_nothing_from_the_lost_region(prod_outage: fo.FailoverPlan) -> None:
    plan = prod_outage
    outage = [s for s in plan.steps if s.phase == fo.OUTAGE]
    assert outage and plan.steps[: len(outage)] == tuple(outage)  # outage steps first, then recovery
    text = _commands(plan, fo.OUTAGE)
    rest = _outage_text_without_old_region_reads(text)
    assert "us-east-1" not in rest and "use1" not in rest
    # no untargeted refresh/up while the old region is down, no placeholders
    for line in text.splitlines():
        if line == f"pulumi up --yes --target '{LOST_PROVIDER}'":
            continue  # the lost region's provider alone: state only, no AWS call (unreachableRegions)
        if line.startswith(("pulumi up", "pulumi preview")):
            assert "--target 'urn:pulumi:prod::commerce-db::commerce:db:RegionStack::usw2'" in line
            assert "RegionStack::use1" not in line and line.endswith("--target-dependents")
        if line.startswith("pulumi refresh"):  # only the promoted instance, by its URN, program run
            assert line.count("--target") == 1 and "usw2-pg-1'" in line and "dependents" not in line
            assert "--run-program" in line
        if line.startswith("pulumi import"):  # only the proxy target registered above, parent existing
            assert (
                "proxy=urn:pulumi:prod::commerce-db::commerce:db:RegionStack$commerce:db:ProxyLayer::usw2-proxy'"
                in line
            )
    assert "<" not in text.replace("<<", "")
    assert _in_order(
        _titles(plan), ["Assess", "Stop writers", "Promote", "Secrets", "Proxy", "Cache", "Writer name",
                        "Change the stack config", "Allow the planned rebuilds", "Preview", "Apps", "Verify",
                        "fence"],
    )  # fmt: skip


def _variant(project_dir: Path, engine: str, keep: bool, planned: bool = False) -> fo.FailoverPlan:
    path = project_dir / "Pulumi.prod.yaml"
    if engine == "aurora":
        path.write_text(path.read_text().replace("    engineMode: rds\n", "    engineMode: aurora\n"))
    return fo.plan_failover(
        "prod", "us-west-2", project_dir=project_dir, keep_old_primary=keep, planned=planned, runner=_cached
    )


def _first(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines) if needle in line)


@pytest.mark.parametrize(
    ("engine", "keep"),
    [("rds", False), ("rds", True), ("aurora", False), ("aurora", True)],
    ids=["rds-drop", "rds-keep", "aurora-drop", "aurora-keep"],
)
def test_printed_runbook_order_secrets_proxy_and_writer_name(
    project_dir: Path, engine: str, keep: bool
) -> None:
    """Issue 15 items 4-5: the printed outage runbook, RDS and Aurora, dropping and keeping the old
    primary: what serves traffic again (promotion, standalone secrets, the pre-created proxy, the
    writer name) comes before any Pulumi command, and none of it calls the old region."""
    plan = _variant(project_dir, engine, keep)
    ids = plan.identifiers
    assert ids.source == "mocked plan" and ids.violations == ()
    lines = _commands(plan, fo.OUTAGE).splitlines()
    text = "\n".join(lines)
    assert "us-east-1" not in _outage_text_without_old_region_reads(text)
    promote = _first(lines, "failover-global-cluster" if engine == "aurora" else "promote-read-replica")
    stop = _first(lines, "stop-replication-to-replica --region us-west-2")
    switch = _first(lines, "update-routing-control-states")
    first_pulumi = next(i for i, line in enumerate(lines) if line.startswith("pulumi "))
    up = next(i for i, ln in enumerate(lines) if ln.startswith("pulumi up") and "RegionStack::usw2" in ln)
    # the replica secrets become standalone right after the promotion, before anything updates them
    assert promote < stop < switch < first_pulumi < up
    assert "Values=cdb-prod-use1-master,use1-pg-" in lines[stop]
    if engine == "rds":
        register = _first(
            lines, "register-db-proxy-targets --region us-west-2 --db-proxy-name cdb-prod-usw2-proxy"
        )
        assert promote < register < switch
        assert "--db-instance-identifiers cdb-prod-usw2-1" in lines[register]
        # adopted by import (real URNs, the pre-created ProxyLayer as parent) before the up registers it
        imp = _first(lines, "pulumi import aws:rds/proxyTarget:ProxyTarget usw2-proxy-target")
        assert "'cdb-prod-usw2-proxy/default/RDS_INSTANCE/cdb-prod-usw2-1'" in lines[imp]
        assert (
            "--provider 'aws=urn:pulumi:prod::commerce-db::pulumi:providers:aws::aws-us-west-2'" in lines[imp]
        )
        assert _first(lines, "pulumi refresh") < imp < up
    else:  # the secondary cluster is the proxy's target since it was created
        assert "register-db-proxy-targets" not in text and "pulumi import" not in text
        assert promote < _first(lines, "describe-db-proxy-targets --region us-west-2") < switch
    # the writer name moves through ARC's data plane only: ARNs and endpoints from the outputs
    assert ids.writer_name == "writer.prod.db.internal"
    assert (
        "RoutingControlArn=$NEW,RoutingControlState=On RoutingControlArn=$OLD,RoutingControlState=Off"
        in (lines[switch])
    )
    assert "route53 change-resource-record-sets" not in text and "route53-recovery-control-config" not in text
    # the targeted up never reaches the ARC configuration (its own provider) nor the old region
    assert not any("aws-arc" in t or "use1" in t for t in ids.targets)
    recovery = _commands(plan, fo.AFTER_RECOVERY).splitlines()
    up_all = _first(recovery, "pulumi up --yes")
    for i, line in enumerate(recovery):
        if line.startswith("aws rds delete-db-instance") and "-old " not in line and "-reconcile" not in line:
            assert i < up_all  # retained instances: deleted before the update (identifiers reused)
            if "cdb-prod-use1-1 " in line + " ":
                assert "--final-db-snapshot-identifier cdb-prod-use1-final" in line
        if line.startswith("aws rds delete-db-cluster"):
            assert i > up_all and "--final-db-snapshot-identifier cdb-prod-use1-final" in line
    protected = [r for r in ids.old_region_cleanup if r.protected]
    assert all(any(f"pulumi state unprotect '{r.urn}'" in line for line in recovery) for r in protected)


def test_outage_runbook_uses_the_programs_fixed_names(prod_outage: fo.FailoverPlan) -> None:
    ids = prod_outage.identifiers
    assert ids.source == "mocked plan" and ids.violations == ()
    assert (ids.old_writer, ids.new_writer) == ("cdb-prod-use1-1", "cdb-prod-usw2-1")
    text = _commands(prod_outage)
    # promoted in place: it keeps its identifier (no rename, no state surgery)
    assert "aws rds promote-read-replica --region us-west-2 --db-instance-identifier cdb-prod-usw2-1 " in text
    assert "cdb-prod-usw2-1 --new-db-instance-identifier" not in text
    assert "pulumi state delete" not in _commands(prod_outage, fo.OUTAGE)
    # the rebuilt eu-west-1 replica is renamed, never deleted, during the outage (it may hold WAL
    # the promoted writer lacks); after recovery it is promoted, snapshotted and deleted
    outage_text = _commands(prod_outage, fo.OUTAGE)
    assert (
        "--db-instance-identifier cdb-prod-euw1-1 --new-db-instance-identifier cdb-prod-euw1-1-old"
        in outage_text
    )
    assert "delete-db-instance --region eu-west-1" not in outage_text
    # the eu-west-1 replica is rebuilt from the new writer: its protection is lifted first
    assert [r.identifier for r in ids.rebuilds] == ["cdb-prod-euw1-1"]
    assert "--db-instance-identifier cdb-prod-euw1-1 --no-deletion-protection" in text
    assert "pulumi state unprotect 'urn:pulumi:prod::commerce-db::commerce:db:RegionStack$" in text
    assert ids.expected["replace"] == 1
    # the home region's stack-wide resources are left alone while it is down
    assert not any("StackShared" in t or "aws-us-east-1" in t for t in ids.targets)
    # fence on return, by security-group Name tag, before the old region is touched by Pulumi
    recovery = _commands(prod_outage, fo.AFTER_RECOVERY)
    assert recovery.index("revoke-security-group-ingress") < recovery.index("pulumi refresh")
    assert "Values=use1-pg-sg" in recovery
    assert (
        "pulumi refresh --yes --run-program --target "
        "'urn:pulumi:prod::commerce-db::commerce:db:RegionStack::use1'" in recovery
    )
    assert recovery.index("pulumi config rm commerce-db:unreachableRegions") < recovery.index(
        "pulumi refresh"
    )
    # the promotion AWS did is recorded by refreshing that one resource before the targeted up
    outage = _commands(prod_outage, fo.OUTAGE)
    refresh = (
        "pulumi refresh --yes --run-program --target 'urn:pulumi:prod::commerce-db::commerce:db:RegionStack$"
    )
    assert refresh + "commerce:db:CrossRegionReplicas$aws:rds/instance:Instance::usw2-pg-1'" in outage
    assert outage.index(refresh) < outage.index("--target-dependents")
    # game-day finding 11 (a): a refresh configures providers from the state, not the program. The
    # lost region's provider is updated alone first (its unreachableRegions settings: no STS call),
    # and the refresh runs the program (--run-program) as well.
    provider_up = f"pulumi up --yes --target '{LOST_PROVIDER}'"
    assert outage.index(provider_up) < outage.index(refresh)
    assert [line for line in outage.splitlines() if "providers:aws::aws-us-east-1" in line] == [provider_up]


def test_aurora_outage_fails_over_the_global_database(project_dir: Path) -> None:
    path = project_dir / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("    engineMode: rds\n", "    engineMode: aurora\n"))
    plan = fo.plan_failover(
        "prod", "us-west-2", project_dir=project_dir, keep_old_primary=False, runner=_cached
    )
    text = _commands(plan, fo.OUTAGE)
    assert (
        "aws rds failover-global-cluster --region us-west-2 --global-cluster-identifier cdb-prod-global "
        "--target-db-cluster-identifier arn:aws:rds:us-west-2:$(aws sts get-caller-identity" in text
    )
    assert ":cluster:cdb-prod-usw2-cluster --allow-data-loss" in text
    assert "promote-read-replica" not in text and "switchover" not in text
    assert plan.identifiers.rebuilds == () and plan.identifiers.expected["replace"] == 0


def test_planned_switchover_is_separate_and_loses_nothing(project_dir: Path) -> None:
    plan = fo.plan_failover("prod", "us-west-2", project_dir=project_dir, planned=True, runner=_cached)
    assert {s.phase for s in plan.steps} == {fo.PLANNED}
    titles = _titles(plan)
    assert _in_order(titles, ["Freeze writes", "Fence the old writer", "Wait until", "Promote", "Preview"])
    text = _commands(plan)
    assert "pg_current_wal_lsn()" in text and "pg_last_wal_replay_lsn()" in text
    # the old writer's LSN is read before the fence revokes every path to it (the admin one too)
    assert text.index("pg_current_wal_lsn()") < text.index("revoke-security-group-ingress --region us-east-1")
    assert _in_order(titles, ["Freeze writes", "inside the database", "Fence the old writer", "Wait until"])
    assert "revoke-security-group-ingress --region us-east-1" in text
    # keep mode: the old writer is rebuilt as a replica of the new one (explicitly, protection lifted)
    assert {r.identifier for r in plan.identifiers.rebuilds} == {"cdb-prod-use1-1", "cdb-prod-euw1-1"}
    assert "pulumi up --yes" in text.splitlines()
    with pytest.raises(fo.FailoverError, match="--planned keeps the old primary"):
        fo.plan_failover("prod", "us-west-2", project_dir=project_dir, planned=True, keep_old_primary=False)


def test_aurora_planned_switchover_uses_switchover(project_dir: Path) -> None:
    path = project_dir / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("    engineMode: rds\n", "    engineMode: aurora\n"))
    text = _commands(
        fo.plan_failover("prod", "us-west-2", project_dir=project_dir, planned=True, runner=_cached)
    )
    assert (
        "aws rds switchover-global-cluster --region us-west-2 --global-cluster-identifier cdb-prod-global"
        in text
    )
    assert "--allow-data-loss" not in text


def test_without_global_datastore_no_cache_failover_command(project_dir: Path) -> None:
    plan = fo.plan_failover("staging", "us-west-2", project_dir=project_dir, with_identifiers=False)
    assert "failover-global-replication-group" not in _commands(plan)
    assert any("no Global Datastore" in s.title for s in plan.steps)
    assert plan.identifiers.source.startswith("names only")
    assert "cdb-staging-usw2-1" in _commands(plan)  # names are fixed even without the mocked plans


def test_a_change_that_would_lose_data_is_refused(project_dir: Path) -> None:
    """The runbook refuses to print if the mocked diff finds a loss (here: a fake 'after' plan)."""
    from commerce_db import plan_diff as pd

    def runner(stack: str, config: Any) -> ProgramRun:
        real = _cached(stack, config)
        if config["commerce-db:primaryRegion"] == "us-east-1":
            return real
        kept = tuple(r for r in real.resources if r.name != "euw1-backup-vault")
        return ProgramRun(resources=kept, outputs=real.outputs)

    with pytest.raises(fo.FailoverError, match=r"would lose data.*euw1-backup-vault.*delete"):
        fo.plan_failover("prod", "us-west-2", project_dir=project_dir, runner=runner)
    assert pd.BACKUP_VAULT in pd.PROTECTED


# --------------------------------------------------------------------------- CLI


def test_cli_dry_run_json_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    before = (REPO / "Pulumi.prod.yaml").read_text()
    assert main(["failover", "promote", "prod", "--region", "eu-west-1", "--json", "--no-plan"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["written"] is False and out["newPrimary"] == "eu-west-1" and out["oldPrimary"] == "us-east-1"
    assert "+  commerce-db:primaryRegion: eu-west-1" in out["diff"]
    assert out["steps"][0]["title"].startswith("Assess") and out["steps"][0]["phase"] == "outage"
    assert (REPO / "Pulumi.prod.yaml").read_text() == before


def test_cli_bad_region_exits_2_with_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["failover", "promote", "prod", "--region", "ap-south-1", "--no-plan"]) == 2
    err = capsys.readouterr().err
    assert "'ap-south-1' is not a current replica region" in err and "us-west-2, eu-west-1" in err


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
    assert f"Wrote {path}" in out and "Outage runbook" in out
    assert (project_dir / "Pulumi.staging.yaml.bak").read_text() == before
    config = yaml.safe_load(path.read_text())["config"]
    assert config["commerce-db:primaryRegion"] == "us-west-2"
    # an outage marks the old primary unreachable (its provider then configures without AWS calls)
    assert config["commerce-db:unreachableRegions"] == ["us-east-2"]
    assert config["commerce-db:promotedFrom"] == "us-east-2"
    # failing back (planned) restores the original content (comments included), plus the pinned
    # homeRegion, an emptied unreachableRegions and promotedFrom (removed when the switchover completes)
    back = ["failover", "promote", "staging", "--region", "us-east-2", "--planned", "--write", "--no-plan"]
    assert main([*back, "--dir", str(project_dir)]) == 0
    assert path.read_text() == (
        before
        + "  commerce-db:homeRegion: us-east-2\n  commerce-db:unreachableRegions: []\n"
        + "  commerce-db:promotedFrom: us-west-2\n"
    )


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
    instance = rec(f"{base}commerce:db:PostgresCluster$aws:rds/instance:Instance::usw2-pg-1",
                   "aws:rds/instance:Instance", "usw2-pg-1", cluster.urn)  # fmt: skip
    urns = fo.engine_urns([region, cluster, instance])
    assert urns[instance.urn] == (
        f"{base}commerce:db:RegionStack$commerce:db:PostgresCluster$aws:rds/instance:Instance::usw2-pg-1"
    )
    assert urns[region.urn] == region.urn and urns[cluster.urn] == cluster.urn


@pytest.mark.parametrize("engine", ["rds", "aurora"])
def test_after_recovery_keeps_and_reconciles_the_lost_writes(project_dir: Path, engine: str) -> None:
    """Game-day finding 10 / issue 15 item 7: the printed after-recovery runbook restores the data
    that holds the lost writes to a scratch database in the new writer region and runs
    `commerce-db failover reconcile` from the promotion time the outage steps recorded; Aurora keeps
    AWS's point-of-failure snapshot first (a system snapshot that expires), RDS uses the old
    writer's final snapshot, taken when the old writer is deleted."""
    plan = _variant(project_dir, engine, keep=False)
    outage = _commands(plan, fo.OUTAGE).splitlines()
    promote = _first(outage, "failover-global-cluster" if engine == "aurora" else "promote-read-replica")
    assert promote < _first(outage, "tee failover-promoted-at.txt")
    titles = [s.title for s in plan.steps if s.phase == fo.AFTER_RECOVERY]
    recovery = _commands(plan, fo.AFTER_RECOVERY).splitlines()
    up = _first(recovery, "pulumi up --yes")
    dry = _first(recovery, 'commerce-db failover reconcile --since "$(cat failover-promoted-at.txt)" --json')
    since = 'commerce-db failover reconcile --since "$(cat failover-promoted-at.txt)"'
    apply_ = _first(recovery, f"{since} --apply")
    assert up < dry < apply_ and "Reconcile" in titles[-1]
    if engine == "aurora":
        keep = _first(recovery, "--target-db-cluster-snapshot-identifier cdb-prod-use1-lost-writes")
        assert "rds:unplanned-global-failover-cdb-prod-use1-cluster" in recovery[keep]
        assert keep < _first(recovery, "pulumi config rm")
        assert "restore-db-cluster-from-snapshot --region us-west-2" in "\n".join(recovery[up:dry])
        assert "--snapshot-identifier cdb-prod-use1-lost-writes" in "\n".join(recovery[up:dry])
    else:
        restore = _first(recovery, "restore-db-instance-from-db-snapshot --region us-west-2")
        assert "--db-snapshot-identifier cdb-prod-use1-final" in recovery[restore]
        assert _first(recovery, "--final-db-snapshot-identifier cdb-prod-use1-final") < up < restore < dry
    assert "delete-db-instance --region us-west-2 --db-instance-identifier cdb-prod-use1-reconcile" in (
        "\n".join(recovery[apply_:])
    )


@pytest.mark.parametrize("keep", [False, True], ids=["drop", "keep"])
def test_after_recovery_reforms_a_disassociated_global_datastore(project_dir: Path, keep: bool) -> None:
    """Issue 15 item 4: if the outage's cache step had to disassociate the new primary's member, the
    printed after-recovery steps re-form the Global Datastore around it before the update: the other
    secondaries leave the old one, it is deleted keeping its old primary group, a new one is created
    in the new primary's region and imported in the old one's place (the home region's provider),
    and the secondaries the update re-creates are unprotected. A member that is PRIMARY stops it."""
    plan = _variant(project_dir, "rds", keep)
    (step,) = [s for s in plan.steps if "re-form the Global Datastore" in s.title]
    assert step.phase == fo.AFTER_RECOVERY
    cmds = list(step.commands)
    text = "\n".join(cmds)
    assert "Members[?ReplicationGroupRegion=='us-west-2'].Role" in cmds[1] and "PRIMARY: stop here" in cmds[1]
    order = [
        "disassociate-global-replication-group --region eu-west-1",
        '--global-replication-group-id "$GRG" --retain-primary-replication-group',
        "create-global-replication-group --region us-west-2 --global-replication-group-id-suffix cdb-prod",
        "pulumi state delete 'urn:pulumi:prod::commerce-db::commerce:db:StackShared$",
        "pulumi import aws:elasticache/globalReplicationGroup:GlobalReplicationGroup shared-cache-global "
        '"$NEW_GRG"',
    ]
    positions = [_first(cmds, needle) for needle in order]
    assert positions == sorted(positions)
    assert "--provider 'aws=urn:pulumi:prod::commerce-db::pulumi:providers:aws::aws-us-east-1'" in text
    unprotected = {c.rsplit("::", 1)[1].split("'")[0] for c in cmds if c.startswith("pulumi state unprotect")}
    assert unprotected == {"shared-cache-global", "euw1-cache-rg", *(("use1-cache-rg",) if keep else ())}
    assert "usw2-cache-rg" not in unprotected  # the live cache is never touched
    assert not any(c.startswith("pulumi up") for c in cmds)
    titles = [s.title for s in plan.steps]
    assert titles.index(step.title) < next(i for i, t in enumerate(titles) if t.startswith("Bring us-east-1"))


def test_outage_fence_is_the_writer_name_and_the_recovery_fence_comes_first(
    prod_outage: fo.FailoverPlan,
) -> None:
    """Game-day finding 9 (infra side): the outage runbook says the ARC switch of the writer name is
    the fence (with the data layer's connection lifetime), and the after-recovery fence runs as
    soon as the old region's API answers, before its control plane restarts application tasks."""
    (stop,) = [s for s in prod_outage.steps if s.title.startswith("Stop writers")]
    assert "The fence is the writer name" in stop.detail and "connection lifetime" in stop.detail
    recovery = [s for s in prod_outage.steps if s.phase == fo.AFTER_RECOVERY]
    assert recovery[0].title.startswith("As soon as us-east-1's API answers: fence")
    assert "before that region's deploy control plane restarts application tasks" in recovery[0].detail


def test_game_day_2_runbook_fixes(project_dir: Path) -> None:
    """Second game day (findings-15, 08:23): F5 the outage update continues past what needs IAM's
    control plane (--continue-on-error) and the header says the update needs it; F7 the Aurora
    lost-writes copies are waited for and the scratch database's security group is created from
    the operator's bastion group (no undefined variable); F2 apps are told what to do about the cache."""
    plan = _variant(project_dir, "aurora", keep=False)
    outage = _commands(plan, fo.OUTAGE).splitlines()
    ups = [line for line in outage if line.startswith("pulumi up") and "--target-dependents" in line]
    assert ups and all(line.startswith("pulumi up --yes --continue-on-error --target ") for line in ups)
    recovery = _commands(plan, fo.AFTER_RECOVERY).splitlines()
    for copy in [i for i, line in enumerate(recovery) if line.startswith("aws rds copy-db-cluster-snapshot")]:
        assert recovery[copy + 1].startswith("aws rds wait db-cluster-snapshot-available"), recovery[copy]
    create_sg = _first(recovery, "ADMIN_SG=$(aws ec2 create-security-group --region us-west-2")
    assert recovery[create_sg - 1].startswith(': "${BASTION_SG:?')
    assert '--source-group "$BASTION_SG"' in recovery[create_sg + 1]
    assert create_sg < _first(recovery, '--vpc-security-group-ids "$ADMIN_SG"')
    assert recovery[-1].endswith('aws ec2 delete-security-group --region us-west-2 --group-id "$ADMIN_SG"')
    (apps,) = [s for s in plan.steps if s.title.startswith("Apps")]
    assert "redisEndpointsByRegion.us-west-2.primary" in apps.detail
    config = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())["config"]
    outputs = fo._program_run("prod", config).outputs
    by_region = outputs["redisEndpointsByRegion"]
    assert set(by_region) == {"us-east-1", "us-west-2", "eu-west-1"}
    assert all(set(v) == {"primary", "reader"} for v in by_region.values())


def test_planned_switchover_fences_inside_the_database_before_reading_the_lsn(project_dir: Path) -> None:
    """Second game day F3: a security-group revoke does not cut established connections (the
    proxy's pool), so the planned switchover fences the old writer inside PostgreSQL first (no
    LOGIN for the writer users, read-only default, other client sessions terminated, each its own
    transaction), reads the LSN after that in its own psql, deregisters the proxy target, revokes
    the database's and the proxy's security groups; the promoted replica replayed the fence, so it
    is lifted there right after the promotion, before anything connects."""
    plan = _variant(project_dir, "rds", keep=True, planned=True)
    lines = _commands(plan, fo.PLANNED).splitlines()
    fence = _first(lines, "ALTER ROLE %I NOLOGIN")
    sql = lines[fence]
    for needle in ("'app_writer','app_writer_clone'", "default_transaction_read_only = on",
                   "pg_terminate_backend(a.pid, 5000)", "backend_type = 'client backend'",
                   "a.usename <> 'rdsadmin'", "r.rolsuper"):  # fmt: skip
        assert needle in sql, needle
    assert "app_reader" not in sql  # N4: readers keep LOGIN on every replica
    assert "current_user" not in sql  # the master's own earlier sessions are ended too (review 4)
    # N1: one transaction per statement, in order: NOLOGIN, read-only, terminate; then the LSN alone
    assert sql.count(' -c "') == 3 and " -1" not in sql
    assert sql.index("NOLOGIN") < sql.index("default_transaction_read_only") < sql.index("pg_terminate")
    assert "pg_current_wal_lsn" not in sql
    lsn = lines[fence + 1]
    assert lsn.startswith("LSN=$(psql") and "-qAtc 'SELECT pg_current_wal_lsn()')" in lsn
    assert "\\$\\$" in sql and "PGPASSWORD" not in sql  # credentials from the environment
    assert lines[fence - 1].startswith("S=$(aws secretsmanager get-secret-value --region us-east-1")
    deregister = _first(lines, "deregister-db-proxy-targets --region us-east-1 --db-proxy-name cdb-prod-use1")
    proxy_sg = _first(lines, "Values=use1-proxy-sg")
    replay = _first(lines, "pg_last_wal_replay_lsn()")
    promote = _first(lines, "promote-read-replica")
    unfence = _first(lines, "ALTER ROLE %I LOGIN")
    secrets = _first(lines, "stop-replication-to-replica")
    assert fence < deregister < proxy_sg < replay < promote < unfence < secrets
    assert "cdb-prod-usw2-1" in lines[unfence] and "RESET default_transaction_read_only" in lines[unfence]
    assert lines[unfence].startswith("PGOPTIONS='-c default_transaction_read_only=off' psql")
    # after recovery the same database fence comes first (RDS)
    outage = _variant(project_dir, "rds", keep=False)
    recovery = next(s for s in outage.steps if s.phase == fo.AFTER_RECOVERY).commands
    assert "ALTER ROLE %I NOLOGIN" in recovery[1] and "revoke-security-group-ingress" in recovery[-1]


@pytest.mark.parametrize("planned", [False, True], ids=["outage", "planned"])
def test_failover_completes_in_two_updates(project_dir: Path, planned: bool) -> None:
    """Second game day F6: the completing update sets retiringLoginsFrom when it removes
    promotedFrom (the proxies accept the promoted copies and the new secrets), and a later step,
    once the apps run with the exported secrets, removes it."""
    plan = _variant(project_dir, "rds", keep=True, planned=planned)
    lines = _commands(plan, fo.PLANNED if planned else fo.AFTER_RECOVERY).splitlines()
    rm_promoted = _first(lines, "pulumi config rm commerce-db:promotedFrom")
    set_retiring = _first(lines, "pulumi config set commerce-db:retiringLoginsFrom us-east-1")
    rm_retiring = _first(lines, "pulumi config rm commerce-db:retiringLoginsFrom")
    ups = [i for i, line in enumerate(lines) if line.startswith("pulumi up --yes")]
    assert rm_promoted < set_retiring < next(i for i in ups if i > set_retiring) < rm_retiring < ups[-1]
    (retire,) = [s for s in plan.steps if s.title.startswith("When every app runs with the exported secrets")]
    assert "second rotation" in retire.detail


@pytest.mark.parametrize("planned", [False, True])
def test_the_completing_update_waits_for_the_new_secrets_first_rotation(
    project_dir: Path, planned: bool, tmp_path: Path
) -> None:
    """Fourth review, N2's gap: the failover's update rotates the new application secrets in the
    background; if that failed, the completing update must not run. The printed check is executed
    against a stand-in `aws` that answers list-secrets like the real CLI."""
    import subprocess

    plan = _variant(project_dir, "rds", keep=planned, planned=planned)
    phase = fo.PLANNED if planned else fo.AFTER_RECOVERY
    lines = _commands(plan, phase).splitlines()
    check = _first(lines, "ALL=$(aws secretsmanager list-secrets --region us-west-2")
    assert check < _first(lines, "pulumi config set commerce-db:retiringLoginsFrom us-east-1")
    assert "Values=usw2-pg-app-" in lines[check]
    stub = tmp_path / "aws"
    for not_rotated, ok in (("", True), ("usw2-pg-app-writer-x", False)):
        stub.write_text(
            '#!/bin/sh\ncase "$*" in\n'
            f"  *LastRotatedDate==null*) echo '{not_rotated}' ;;\n"
            "  *) echo 'usw2-pg-app-writer-x usw2-pg-app-reader-y' ;;\nesac\n"
        )
        stub.chmod(0o755)
        env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
        res = subprocess.run(["sh", "-c", lines[check]], env=env, capture_output=True, text=True)
        assert (res.returncode == 0) is ok, (not_rotated, res.stderr)
        if not ok:
            assert "not rotated yet: usw2-pg-app-writer-x" in res.stderr
