"""Failover under mocks: plan prod, apply the runbook's stack change, plan again, diff (issue 15).

For RDS and Aurora, dropping and keeping the old primary region: nothing that holds data in a
surviving region (database, cache, vault, key, global cluster / datastore) is deleted or replaced,
the promoted database is adopted in place, and every re-sourced replica is replaced explicitly
(``replace_on_changes`` + ``delete_before_replace``). The checker itself is tested on the
findings that issue 15 reported against the previous program.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from commerce_db_components.program import run

from commerce_db import failover as fo
from commerce_db import plan_diff as pd
from commerce_db.mock_engine import ProgramRun, RegisteredResource, run_program

REPO = Path(__file__).resolve().parents[3]
NEW_PRIMARY = "us-west-2"


def _prod(engine: str) -> dict[str, Any]:
    cfg = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())["config"]
    if engine == "aurora":
        cfg["commerce-db:postgres"] = {**cfg["commerce-db:postgres"], "engineMode": "aurora"}
    return cfg


@functools.cache
def _before(engine: str) -> ProgramRun:
    return run_program(run, stack="prod", config=_prod(engine))


@functools.cache
def _failover(engine: str, keep: bool) -> tuple[list[pd.Change], list[str], dict[str, Any]]:
    before_cfg = _prod(engine)
    after_cfg, _ = fo.compute_failover_config(before_cfg, NEW_PRIMARY, keep_old_primary=keep)
    fo.validate_failover_config("prod", after_cfg)
    changes = pd.diff_runs(_before(engine), run_program(run, stack="prod", config=after_cfg))
    regions = [after_cfg["commerce-db:primaryRegion"], *after_cfg["commerce-db:replicaRegions"]]
    problems = pd.failover_violations(
        changes,
        surviving_regions=[r for r in regions if r != "us-east-1"],
        old_primary="us-east-1",
        old_primary_kept=keep,
    )
    return changes, problems, after_cfg


def _by_name(changes: list[pd.Change], name: str) -> pd.Change:
    return next(c for c in changes if c.name == name)


CASES = [("rds", False), ("rds", True), ("aurora", False), ("aurora", True)]


@pytest.mark.parametrize(
    ("engine", "keep"), CASES, ids=["rds-drop", "rds-keep", "aurora-drop", "aurora-keep"]
)
def test_failover_loses_nothing_in_surviving_regions(engine: str, keep: bool) -> None:
    changes, problems, after_cfg = _failover(engine, keep)
    assert problems == []
    assert after_cfg["commerce-db:homeRegion"] == "us-east-1"  # stack-wide resources stay put
    surviving = {"us-west-2", "eu-west-1"} | ({"us-east-1"} if keep else set())
    for ch in changes:
        kept = (pd.CACHE_GROUP, pd.BACKUP_VAULT, pd.KMS_KEY, pd.RDS_CLUSTER, *pd.GLOBAL_TYPES)
        if ch.type in kept and (ch.region in surviving or ch.type in pd.GLOBAL_TYPES):
            assert ch.op in ("same", "update", "create"), ch.describe()
    # The global objects and the stack-wide IAM roles (monitoring, backup) are not even touched.
    for ch in changes:
        if ch.type in pd.GLOBAL_TYPES or ch.name.startswith("shared-"):
            assert ch.op in ("same", "update"), ch.describe()


@pytest.mark.parametrize(
    ("engine", "keep"), CASES, ids=["rds-drop", "rds-keep", "aurora-drop", "aurora-keep"]
)
def test_promoted_database_is_adopted_in_place(engine: str, keep: bool) -> None:
    changes, _, _ = _failover(engine, keep)
    if engine == "rds":
        writer = _by_name(changes, "usw2-pg-1")
        assert (
            writer.op == "update" and writer.old_urn != writer.urn
        )  # alias: CrossRegionReplicas -> PostgresCluster
        assert (
            "commerce:db:CrossRegionReplicas" in writer.old_urn
            and "commerce:db:PostgresCluster" in writer.urn
        )
        assert "replicateSourceDb" in writer.changed  # removed: the provider promotes in place
        assert {"multiAz", "backupRetentionPeriod"} <= set(writer.changed)
        assert writer.new is not None and writer.new.inputs["applyImmediately"] is True
        assert (
            writer.new.inputs["identifier"]
            == "cdb-prod-usw2-1"
            == (writer.old.inputs["identifier"] if writer.old else "")
        )
    else:
        cluster = _by_name(changes, "usw2-pg-cluster")
        assert cluster.op in ("update", "same") and "AuroraSecondaryCluster" in (cluster.old_urn or "")
        assert cluster.new is not None and cluster.new.inputs["clusterIdentifier"] == "cdb-prod-usw2-cluster"
        assert cluster.new.inputs["globalClusterIdentifier"] == cluster.old.inputs["globalClusterIdentifier"]  # type: ignore[union-attr]
        assert _by_name(changes, "usw2-pg-1").op in ("update", "same")


@pytest.mark.parametrize("keep", [False, True], ids=["drop", "keep"])
def test_rds_replicas_are_resourced_only_by_explicit_replacement(keep: bool) -> None:
    changes, _, _ = _failover("rds", keep)
    resourced = [c for c in changes if "replicateSourceDb" in c.changed and pd.is_replica(c.new)]
    names = {c.name for c in resourced}
    assert names == ({"euw1-pg-1", "use1-pg-1"} if keep else {"euw1-pg-1"})
    for ch in resourced:
        assert (ch.op, ch.explicit, ch.delete_before_replace) == ("replace", True, True), ch.describe()
        assert ch.new is not None and ch.new.inputs["replicateSourceDb"].startswith("arn:aws:rds:us-west-2:")


def test_caches_and_keys_keep_their_identity() -> None:
    changes, _, _ = _failover("rds", False)
    for name in ("usw2-cache-rg", "euw1-cache-rg"):
        ch = _by_name(changes, name)
        assert ch.op in ("same", "update") and "kmsKeyId" not in ch.changed, ch.describe()
    for name in ("usw2-keys-cmk", "euw1-keys-cmk", "usw2-backup-vault", "euw1-backup-vault"):
        assert _by_name(changes, name).op in ("same", "update")


def test_backup_moves_with_the_writer_and_dr_region() -> None:
    changes, _, after_cfg = _failover("rds", False)
    assert after_cfg["commerce-db:drRegion"] == "eu-west-1"
    plan = _by_name(changes, "usw2-backup-plan")
    assert plan.op == "create" and plan.new is not None
    copy = plan.new.inputs["rules"][0]["copyActions"][0]["destinationVaultArn"]
    assert copy == _by_name(changes, "euw1-backup-vault").new.state["arn"]  # type: ignore[union-attr]
    replication = _by_name(changes, "euw1-backup-pitr-replication")
    assert replication.op == "create" and replication.region == "eu-west-1"


# --------------------------------------------------------------------------- the checker itself


def _rec(name: str, typ: str, region: str, parent: str = "RegionStack", **inputs: Any) -> RegisteredResource:
    urn = f"urn:pulumi:prod::commerce-db::commerce:db:{parent}${typ}::{name}"
    return RegisteredResource(
        urn=urn, type=typ, name=name, parent_urn=None, custom=True, provider=None,
        inputs=inputs, region=region, engine_urn=urn,
    )  # fmt: skip


def test_checker_reports_what_issue_15_found() -> None:
    old_replica = _rec(
        "euw1-pg-1", pd.RDS_INSTANCE, "eu-west-1", replicateSourceDb="arn:aws:rds:us-east-1:1:db:a"
    )
    new_replica = _rec(
        "euw1-pg-1", pd.RDS_INSTANCE, "eu-west-1", replicateSourceDb="arn:aws:rds:us-west-2:1:db:b"
    )
    vault = _rec("use1-backup-dr-vault", pd.BACKUP_VAULT, "us-west-2")
    cache_old = _rec("usw2-cache-rg", pd.CACHE_GROUP, "us-west-2", globalReplicationGroupId="g")
    cache_new = _rec("usw2-cache-rg", pd.CACHE_GROUP, "us-west-2", kmsKeyId="arn:key")
    before = ProgramRun(resources=(old_replica, vault, cache_old), outputs={})
    after = ProgramRun(resources=(new_replica, cache_new), outputs={})
    problems = pd.failover_violations(
        pd.diff_runs(before, after),
        surviving_regions=["us-west-2", "eu-west-1"],
        old_primary="us-east-1",
        old_primary_kept=False,
    )
    assert any("euw1-pg-1" in p and "re-sourced in place" in p for p in problems)
    assert any("use1-backup-dr-vault" in p and "delete" in p for p in problems)
    assert any("usw2-cache-rg" in p and "kmsKeyId" in p for p in problems)


def test_checker_refuses_replacing_a_promoted_replica() -> None:
    """replace_on_changes on the writer would turn the promotion into a delete + empty create."""
    replica = _rec(
        "usw2-pg-1", pd.RDS_INSTANCE, "us-west-2", replicateSourceDb="arn:aws:rds:us-east-1:1:db:a"
    )
    writer = dataclass_replace(
        _rec("usw2-pg-1", pd.RDS_INSTANCE, "us-west-2"),
        options={"replaceOnChanges": ("replicateSourceDb",), "deleteBeforeReplace": True},
    )
    problems = pd.failover_violations(
        pd.diff_runs(ProgramRun((replica,), {}), ProgramRun((writer,), {})),
        surviving_regions=["us-west-2"],
        old_primary="us-east-1",
        old_primary_kept=False,
    )
    assert any("promoted replica is replaced" in p for p in problems)


def dataclass_replace(res: RegisteredResource, **kw: Any) -> RegisteredResource:
    import dataclasses

    return dataclasses.replace(res, **kw)


def test_mock_engine_resolves_inherited_aliases() -> None:
    """A child answers to its old URN under the parent's alias (same name, the parent's old type)."""
    run_ = _before("rds")
    replica = run_.by_name("usw2-pg-1")
    assert replica.engine_urn.endswith(
        "commerce:db:RegionStack$commerce:db:CrossRegionReplicas$aws:rds/instance:Instance::usw2-pg-1"
    )
    assert any(
        "commerce:db:PostgresCluster$aws:rds/instance:Instance::usw2-pg-1" in a for a in replica.alias_urns
    )
    assert replica.options["replaceOnChanges"] == ("replicateSourceDb",)
    assert replica.options["deleteBeforeReplace"] is True
    writer = run_.by_name("use1-pg-1")
    assert writer.options["replaceOnChanges"] == ()


# --------------------------------------------------------------------------- Aurora variant (item 8)


def test_aurora_variant_is_built_for_failover() -> None:
    run_ = _before("aurora")
    alarms = {a.name: a.inputs for a in run_.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    for code in ("use1", "usw2", "euw1"):  # every region: the roles move
        assert alarms[f"{code}-aurora-alarms-rpo-lag"]["metricName"] == "AuroraGlobalDBRPOLag"
        assert alarms[f"{code}-aurora-alarms-volume"]["metricName"] == "VolumeBytesUsed"
        assert alarms[f"{code}-aurora-alarms-1-replica-lag"]["metricName"] == "AuroraReplicaLag"
        assert alarms[f"{code}-aurora-alarms-acu-1"]["metricName"] == "ACUUtilization"
    # secondaries are protected like the primary and as large (they are the writer after a failover)
    clusters = {c.name: c.inputs for c in run_.of_type(pd.RDS_CLUSTER)}
    for name, inputs in clusters.items():
        assert inputs["deletionProtection"] is True and inputs["skipFinalSnapshot"] is False, name
        assert inputs["serverlessv2ScalingConfiguration"]["minCapacity"] >= 9, name  # holds 2000 connections
    per_cluster: dict[str, int] = {}
    for inst in run_.of_type(pd.RDS_CLUSTER_INSTANCE):
        per_cluster[inst.region or ""] = per_cluster.get(inst.region or "", 0) + 1
    assert set(per_cluster.values()) == {2}
    assert run_.outputs["globalWriterEndpoint"]


def test_aurora_capacity_must_hold_the_connections() -> None:
    from commerce_db_components.config import ConfigError, parse_stack_config

    raw = {
        "replicaRegions": ["us-west-2"],
        "postgres": {"engineMode": "aurora", "parameters": {"maxConnections": 2000},
                     "aurora": {"minCapacityAcu": 0.5}},
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"minCapacityAcu.*>= 9.*maxConnections=2000"):
        parse_stack_config(_encoded(raw), stack="prod", aws_region="us-east-1")
    raw["postgres"]["parameters"] = {}  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"minCapacityAcu.*>= 2 in prod with a Global Database"):
        parse_stack_config(_encoded(raw), stack="prod", aws_region="us-east-1")


def _encoded(raw: dict[str, Any]) -> dict[str, str]:
    import json

    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


@pytest.mark.parametrize(
    ("engine", "keep"), CASES, ids=["rds-drop", "rds-keep", "aurora-drop", "aurora-keep"]
)
def test_recovery_needs_no_iam_change_and_the_writer_name_survives(engine: str, keep: bool) -> None:
    """Issue 15 item 4: the new writer region's proxy, its IAM role and policy, security groups and
    log group exist before the failover and do not change (no IAM call, no new proxy); only the
    target registration (RDS) and the proxy's secret list change. The writer name, its records,
    health checks, routing controls and zone are neither replaced nor deleted, and the exported
    ``writerName`` is the same before and after."""
    changes, _, after_cfg = _failover(engine, keep)
    by_name = {(c.type, c.name): c for c in changes}
    for name in ("usw2-proxy-role", "usw2-proxy-role-secret", "usw2-proxy-sg", "usw2-proxy-logs"):
        (change,) = [c for (t, n), c in by_name.items() if n == name and t.startswith("aws:")]
        assert change.op == "same", change.describe()
    # While us-east-1 is unreachable the proxy keeps its logins (the promoted secrets): the new
    # region's own application secrets only become valid at their first rotation.
    proxy = by_name[("aws:rds/proxy:Proxy", "usw2-proxy")]
    assert proxy.op == "same" and proxy.new is not None, proxy.describe()
    assert "auths" in proxy.new.options.get("ignoreChanges", ())
    target = by_name[("aws:rds/proxyTarget:ProxyTarget", "usw2-proxy-target")]
    assert target.op == ("same" if engine == "aurora" else "create"), target.describe()
    dns = [c for c in changes if c.name.startswith("writer-dns")]
    assert dns
    for c in dns:
        if "use1" in c.name and not keep:
            assert c.op == "delete", c.describe()  # the dropped region's record, check and control
        elif c.type == "aws:route53recoverycontrol/safetyRule:SafetyRule" and not keep:
            assert c.op == "replace", c.describe()  # asserted controls: the remaining regions
        else:
            assert c.op == "same", c.describe()
    before = _before(engine).outputs
    after = run_program(run, stack="prod", config=after_cfg).outputs
    assert before["writerName"] == after["writerName"] == "writer.prod.db.internal"
    assert before["writerRoutingControlArns"]["us-west-2"] == after["writerRoutingControlArns"]["us-west-2"]


@pytest.mark.parametrize("keep", [False, True], ids=["drop", "keep"])
def test_outage_update_never_waits_on_the_lost_region(keep: bool) -> None:
    """The targeted update deletes the old DR region's automated-backup replication (the writer
    moved there). The provider's delete stops it and then waits on the *source* region's API, the
    region that failed: the resource is retained on delete, so Pulumi only forgets it (and the
    replicated backups stay restorable, the point-in-time fallback)."""
    changes, _, _ = _failover("rds", keep)
    (replication,) = [
        c
        for c in changes
        if c.type == "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
        and c.op == "delete"
    ]
    assert replication.region == "us-west-2" and replication.old is not None
    assert replication.old.options.get("retainOnDelete") is True


def test_every_region_exports_its_own_copy_of_the_secrets() -> None:
    """Game-day finding 3: the secret ARNs apps use must be their region's copy (the primary's
    secrets replicated there), which stays readable when the primary region is lost."""
    outputs = _before("rds").outputs
    by_region = outputs["secretArnsByRegion"]
    assert set(by_region) == {"us-east-1", "us-west-2", "eu-west-1"}
    for region, arns in by_region.items():
        assert set(arns) == {"master", "writer", "reader", "redisAuth"}
        assert all(f":secretsmanager:{region}:" in arn for arn in arns.values()), arns
    assert by_region["us-east-1"]["writer"] == outputs["writerSecretArn"]
    # the same secret (name and suffix), the region's replica
    assert (
        by_region["us-west-2"]["writer"].replace(":us-west-2:", ":us-east-1:") == outputs["writerSecretArn"]
    )


_SIZING = ("instanceClass", "storageType", "iops", "storageThroughput")


@pytest.mark.parametrize("keep", [False, True], ids=["drop", "keep"])
def test_promoted_replica_is_sized_like_the_writer(keep: bool) -> None:
    """Game-day finding 6: slot 1 of every replica region (the replica a failover promotes) has the
    writer's class and storage, not the replicas'; the failover's update then changes neither on
    the only writer (a class change on a single-AZ instance is downtime, a storage change blocks
    further storage changes for about 6 hours). Multi-AZ turning on in place is the expected change."""
    run_ = _before("rds")
    writer = run_.by_name("use1-pg-1").inputs
    assert writer["instanceClass"] == "db.r7g.2xlarge" and writer["storageType"] == "io2"
    for name in ("usw2-pg-1", "euw1-pg-1"):
        replica = run_.by_name(name).inputs
        assert {k: replica.get(k) for k in _SIZING} == {k: writer.get(k) for k in _SIZING}, name
    # The in-region read replicas keep the replicas' own class and storage.
    reader = run_.by_name("use1-pg-2").inputs
    assert (reader["instanceClass"], reader["storageType"]) == ("db.r6g.2xlarge", "gp3")
    changes, _, _ = _failover("rds", keep)
    promoted = _by_name(changes, "usw2-pg-1")
    assert promoted.op == "update"
    storage = {*_SIZING, "allocatedStorage", "maxAllocatedStorage"}
    assert not set(promoted.changed) & storage, promoted.describe()
    assert "multiAz" in promoted.changed


@pytest.mark.parametrize("keep", [False, True], ids=["drop", "keep"])
def test_aurora_role_switch_never_sets_forcenew_credentials(keep: bool) -> None:
    """Game-day finding 11 (b): a cluster that joined the Global Database as a secondary was created
    without database_name / master_username, and the provider's Read sets database_name only when
    AWS returns one; both are ForceNew. The diff no longer assumes they are read back (INHERITED):
    every cluster ignores them after create, so the promoted secondary (and, keeping the old
    primary, the old writer rejoining as a secondary) is never planned for replacement."""
    changes, problems, _ = _failover("aurora", keep)
    assert problems == []
    for ch in changes:
        if ch.type == pd.RDS_CLUSTER and ch.new is not None:
            ignored = set(ch.new.options.get("ignoreChanges", ()))
            assert {"databaseName", "masterUsername"} <= ignored, ch.describe()
            assert ch.op in ("same", "update"), ch.describe()
    promoted = _by_name(changes, "usw2-pg-cluster")
    assert promoted.new is not None and promoted.new.inputs["databaseName"] == "commerce"  # sent on create
    # Without the ignore the checker sees the replacement (the state of a joined secondary has none).
    bare = dataclass_replace(promoted.new, options={**promoted.new.options, "ignoreChanges": ()})
    assert promoted.old is not None
    (diff,) = pd.diff_runs(ProgramRun((promoted.old,), {}), ProgramRun((bare,), {}))
    assert diff.op == "replace" and "databaseName" in diff.replace_keys, diff.describe()


def _secret_json(run_: ProgramRun, name: str) -> dict[str, Any]:
    import json

    (version,) = [r for r in run_.of_type("aws:secretsmanager/secretVersion:SecretVersion") if r.name == name]
    return json.loads(pd._plain(version.inputs["secretString"]))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("engine", "keep"), CASES, ids=["rds-drop", "rds-keep", "aurora-drop", "aurora-keep"]
)
def test_promoted_writer_keeps_working_credentials(engine: str, keep: bool) -> None:
    """Issue 15 item 2 (game-day finding 1, second half): the failover's update never changes the
    promoted writer's master password (the promoted copy of the old master secret keeps working),
    and the new writer region's master secret starts from that copy (promotedFrom): the user
    bootstrap, which signs in with it, and operators using dbSecretArn have a valid password too;
    its first rotation waits for the schedule so both stay valid through the outage. The proxy keeps
    the promoted application logins, and the stack exports those copies meanwhile."""
    changes, _, after_cfg = _failover(engine, keep)
    assert after_cfg["commerce-db:promotedFrom"] == "us-east-1"
    writer = _by_name(changes, "usw2-pg-cluster" if engine == "aurora" else "usw2-pg-1")
    field = "masterPassword" if engine == "aurora" else "password"
    assert writer.new is not None and field in writer.new.options["ignoreChanges"]
    assert field not in writer.changed, writer.describe()
    before, after = _before(engine), run_program(run, stack="prod", config=after_cfg)
    # Before: a generated password (mocks: "P" * n); after: the promoted copy's (mock invoke: "S" * 40).
    assert set(_secret_json(before, "use1-pg-master")["password"]) == {"P"}
    assert _secret_json(after, "usw2-pg-master")["password"] == "S" * 40
    rotation = {r.name: r.inputs for r in after.of_type("aws:secretsmanager/secretRotation:SecretRotation")}
    assert rotation["usw2-pg-master"]["rotateImmediately"] is False
    assert rotation["usw2-pg-app-writer"].get("rotateImmediately") is not False  # valid at once
    # The new application secrets start from the promoted copies' logins (the database has those
    # users and passwords; the bootstrap leaves existing users alone): the alternating-users
    # rotation signs in with the current login first, so a generated password would fail it
    # (found by the third independent DR review). Mock invoke: username "mock", password "S" * 40.
    for user in ("app-writer", "app-reader"):
        seeded = _secret_json(after, f"usw2-pg-{user}")
        assert (seeded["username"], seeded["password"]) == ("mock", "S" * 40), user
        assert set(_secret_json(before, f"use1-pg-{user}")["password"]) == {"P"}
    first = {r.name: r.inputs for r in before.of_type("aws:secretsmanager/secretRotation:SecretRotation")}
    assert first["use1-pg-master"].get("rotateImmediately") is not False
    # What apps are told to use while the failover is in progress: the promoted copies (the logins
    # the proxy kept), in every region; the master: the new region's own (it holds the same password).
    outputs = pd._plain(after.outputs)
    assert outputs["writerSecretArn"].endswith(":secret:use1-pg-app-writer-mock123-AbCdEf")
    assert ":us-west-2:" in outputs["writerSecretArn"]
    for region, arns in outputs["secretArnsByRegion"].items():
        assert f":{region}:" in arns["writer"] and ":secret:use1-pg-app-writer-" in arns["writer"]
        assert ":secret:use1-pg-app-reader-" in arns["reader"]
        assert arns["master"].endswith(":secret:cdb-prod-usw2-master-AbCdEf")
    # Once the failover is complete (promotedFrom removed): the region's own secrets, nothing seeded.
    done = {k: v for k, v in after_cfg.items() if k != "commerce-db:promotedFrom"}
    final = run_program(run, stack="prod", config=done)
    assert ":secret:usw2-pg-app-writer" in pd._plain(final.outputs)["writerSecretArn"]
    (proxy,) = [r for r in final.of_type("aws:rds/proxy:Proxy") if r.name == "usw2-proxy"]
    assert "auths" not in proxy.options.get("ignoreChanges", ())
    (kept,) = [r for r in after.of_type("aws:rds/proxy:Proxy") if r.name == "usw2-proxy"]
    assert "auths" in kept.options.get("ignoreChanges", ())
    final_rotation = {
        r.name: r.inputs for r in final.of_type("aws:secretsmanager/secretRotation:SecretRotation")
    }
    assert final_rotation["usw2-pg-master"].get("rotateImmediately") is not False


def test_promoted_from_must_not_be_the_primary() -> None:
    from commerce_db_components.config import ConfigError, parse_stack_config

    raw = {"replicaRegions": ["us-west-2"], "promotedFrom": "us-east-1"}
    with pytest.raises(ConfigError, match=r"promotedFrom.*must differ from primaryRegion"):
        parse_stack_config(_encoded(raw), stack="prod", aws_region="us-east-1")
    with pytest.raises(ConfigError, match=r"promotedFrom"):
        parse_stack_config(
            _encoded({**raw, "promotedFrom": "us-east-9"}), stack="prod", aws_region="us-east-1"
        )


@pytest.mark.parametrize("keep", [False, True], ids=["drop", "keep"])
def test_caches_keep_their_auth_token_through_the_failover(keep: bool) -> None:
    """ForceNew audit (findings-15, 07:20) items 2-3: the failover's update changes no cache's AUTH
    token. The promoted cache keeps the promoted token while promotedFrom is set (the stack exports
    the promoted copy of the old token secret meanwhile); a group that becomes a Global Datastore
    secondary (the old primary, kept) never sends its own token (an empty AuthToken is refused)."""
    changes, _, after_cfg = _failover("rds", keep)
    for name in ("usw2-cache-rg", *(("use1-cache-rg",) if keep else ())):
        ch = _by_name(changes, name)
        assert ch.new is not None and {"authToken", "authTokenUpdateStrategy"} <= set(
            ch.new.options.get("ignoreChanges", ())
        ), ch.describe()
        assert not {"authToken", "authTokenUpdateStrategy"} & set(ch.changed), ch.describe()
    outputs = pd._plain(run_program(run, stack="prod", config=after_cfg).outputs)
    assert ":us-west-2:" in outputs["redisAuthSecretArn"]
    assert ":secret:use1-cache-auth-token-" in outputs["redisAuthSecretArn"]
    for region, arns in outputs["secretArnsByRegion"].items():
        assert f":{region}:" in arns["redisAuth"] and ":secret:use1-cache-auth-token-" in arns["redisAuth"]
    # Completed: the new primary applies its own token (ROTATE: the old one stays valid meanwhile).
    done = {k: v for k, v in after_cfg.items() if k != "commerce-db:promotedFrom"}
    final = run_program(run, stack="prod", config=done)
    (group,) = [r for r in final.of_type(pd.CACHE_GROUP) if r.name == "usw2-cache-rg"]
    assert "authToken" not in group.options.get("ignoreChanges", ())
    assert group.inputs["authTokenUpdateStrategy"] == "ROTATE"
    assert ":secret:usw2-cache-auth-token" in pd._plain(final.outputs)["redisAuthSecretArn"]


@pytest.mark.parametrize("keep", [False, True], ids=["drop", "keep"])
def test_promoted_rds_writer_is_not_sent_create_only_inputs(keep: bool) -> None:
    """ForceNew audit item 4: the promoted replica was created without dbName / username (ForceNew)
    and engineLifecycleSupport (create-only); whether the provider reads them back from a promoted
    replica is unproven, so a promoted writer (the primary moved: primaryRegion != homeRegion, or
    promotedFrom set) does not send them. A writer that was never promoted still does (a dbName
    change there is shown as the replacement it is)."""
    changes, _, _ = _failover("rds", keep)
    promoted = _by_name(changes, "usw2-pg-1")
    assert promoted.new is not None
    assert {"dbName", "username", "engineLifecycleSupport", "password"} <= set(
        promoted.new.options["ignoreChanges"]
    )
    assert not {"dbName", "username", "engineLifecycleSupport"} & set(promoted.changed), promoted.describe()
    original = _before("rds").by_name("use1-pg-1")
    assert tuple(original.options["ignoreChanges"]) == ("password",)


def test_completing_the_failover_keeps_the_promoted_logins_one_more_update() -> None:
    """Second game day F6: the completing update must not lock out apps that still hold the promoted
    copies (the data layer recycles connections within 60 s). With retiringLoginsFrom the proxy
    accepts the promoted copies besides the new secrets (distinct users after the first rotation)
    while the stack already exports the new ones; the next update drops them."""
    import json

    _, _, after_cfg = _failover("rds", False)
    done = {k: v for k, v in after_cfg.items() if k != "commerce-db:promotedFrom"}
    both = run_program(run, stack="prod", config={**done, "commerce-db:retiringLoginsFrom": "us-east-1"})
    (proxy,) = [r for r in both.of_type("aws:rds/proxy:Proxy") if r.name == "usw2-proxy"]
    arns = sorted(a["secretArn"] for a in pd._plain(proxy.inputs["auths"]))
    assert len(arns) == 4 and "auths" not in proxy.options.get("ignoreChanges", ())
    assert sum(":secret:use1-pg-app-" in a for a in arns) == 2  # the promoted copies, in us-west-2
    assert sum(":secret:usw2-pg-app-" in a for a in arns) == 2  # the region's own
    assert ":secret:usw2-pg-app-writer" in pd._plain(both.outputs)["writerSecretArn"]  # exported: the new
    # Other regions' standby proxies are not touched.
    (other,) = [r for r in both.of_type("aws:rds/proxy:Proxy") if r.name == "euw1-proxy"]
    assert len(pd._plain(other.inputs["auths"])) == 2
    retired = run_program(run, stack="prod", config=done)
    (proxy,) = [r for r in retired.of_type("aws:rds/proxy:Proxy") if r.name == "usw2-proxy"]
    assert len(pd._plain(proxy.inputs["auths"])) == 2
    from commerce_db_components.config import ConfigError, parse_stack_config

    with pytest.raises(ConfigError, match=r"retiringLoginsFrom.*only after promotedFrom is removed"):
        raw = {"replicaRegions": ["us-west-2"], "promotedFrom": "us-west-2",
               "retiringLoginsFrom": "us-west-2"}  # fmt: skip
        parse_stack_config(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()},
            stack="prod", aws_region="us-east-1",
        )  # fmt: skip
