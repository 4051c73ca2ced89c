"""A reusing team's program (issue 14 item 2): every bad argument is refused at construction,
through the public API, with an error naming the argument and what is allowed, and nothing is
registered. The stack config reports the same rule (one implementation) under its key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from commerce_db_components import (
    CacheLayer,
    CacheLayerArgs,
    ObservabilityLayer,
    ObservabilityLayerArgs,
    PostgresCluster,
    PostgresClusterArgs,
    ProxyLayer,
    ProxyLayerArgs,
)
from commerce_db_components.postgres_cluster import (
    AuroraSecondaryCluster,
    AuroraSecondaryClusterArgs,
    CrossRegionReplicas,
    CrossRegionReplicasArgs,
)

from commerce_db.mock_engine import run_program

WIRING: dict[str, Any] = {"vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"], "kms_key_arn": "arn:k"}


def _refused(build: Callable[[], object]) -> ValueError:
    """Run ``build`` as a team's program; return its error and check nothing was registered."""
    caught: list[ValueError] = []

    def program() -> None:
        try:
            build()
        except (ValueError, TypeError) as exc:  # TypeError is a ValueError's sibling: keep both
            caught.append(exc)  # type: ignore[arg-type]

    run = run_program(program, stack="reuse", config={"aws:region": "us-east-1"})
    assert caught, "the bad argument was accepted"
    assert run.resources == (), [r.name for r in run.resources]
    return caught[0]


POSTGRES_CASES: list[tuple[dict[str, Any], str, list[str]]] = [
    ({"storage_type": "gp2"}, "storage_type", ["gp3", "io2"]),
    ({"storage_type": "io1"}, "storage_type", ["gp3", "io2"]),
    ({"storage_type": "io2", "allocated_storage_gib": 400}, "iops", ["1000-256000"]),
    ({"storage_type": "io2", "allocated_storage_gib": 100, "iops": 200000}, "iops", ["1000 IOPS per GiB"]),
    (
        {"storage_type": "io2", "allocated_storage_gib": 4000, "max_allocated_storage_gib": 0, "iops": 1500},
        "iops",
        ["0.5 IOPS per GiB"],
    ),
    ({"iops": 5000}, "iops", ["fixed 3000 IOPS"]),
    ({"allocated_storage_gib": 500, "iops": 70000}, "iops", ["64000"]),
    (
        {"allocated_storage_gib": 500, "iops": 12000, "storage_throughput_mibps": 4000},
        "storage_throughput_mibps",
        ["0.25"],
    ),
    ({"performance_insights_retention_days": 10}, "performance_insights_retention_days", ["7", "731"]),
    ({"performance_insights_retention_days": 744}, "performance_insights_retention_days", ["713"]),
    ({"database_insights_mode": "advanced"}, "database_insights_mode", ["465"]),
    (
        {"database_insights_mode": "advanced", "performance_insights_retention_days": 434},
        "database_insights_mode",
        ["465"],
    ),
    ({"maintenance_window": "sunday 4am"}, "maintenance_window", ["ddd:hh:mm-ddd:hh:mm"]),
    ({"maintenance_window": "sun:04:30-sun:04:45"}, "maintenance_window", ["30 minutes"]),
    ({"backup_window": "3am-4am"}, "backup_window", ["hh:mm-hh:mm"]),
    ({"backup_window": "03:00-03:10"}, "backup_window", ["30 minutes"]),
    (
        {"backup_window": "04:00-05:00", "maintenance_window": "sun:04:30-sun:05:30"},
        "backup_window",
        ["overlaps maintenance_window"],
    ),
    ({"region": "eu-centrall-1"}, "region", ["did you mean 'eu-central-1'"]),
    ({"region": "mars-north-1"}, "region", ["us-east-1"]),
    ({"instance_class": "t4g.medium"}, "instance_class", ["db. prefix"]),
    ({"replica_instance_class": "r7g.large"}, "replica_instance_class", ["db. prefix"]),
    ({"instance_class": "db.r7g.larg"}, "instance_class", ["did you mean db.r7g.large"]),
    ({"engine_version": "16.x"}, "engine_version", ["'16'"]),
    ({"engine_version": "15"}, "engine_version", ["16.x or 17.x"]),
    ({"engine_version": "16.6"}, "engine_version", ["auto_minor_version_upgrade"]),
    ({"monitoring_interval_seconds": 45}, "monitoring_interval_seconds", ["0, 1, 5, 10, 15, 30, 60"]),
    ({"port": 80}, "port", ["1150-65535"]),
    ({"db_name": "1shop"}, "db_name", ["starting with a letter"]),
    ({"master_username": "rdsadmin"}, "master_username", ["a name other than"]),
    ({"backup_retention_days": 40}, "backup_retention_days", ["1-35"]),
    ({"password_rotation_days": 0}, "password_rotation_days", ["1-1000"]),
    ({"lambda_log_retention_days": 10}, "lambda_log_retention_days", ["14"]),
    ({"identifier_prefix": "Bad--prefix"}, "identifier_prefix", ["single hyphens"]),
    ({"final_snapshot_identifier": "final_snap"}, "final_snapshot_identifier", ["hyphens"]),
    (
        {"engine_mode": "aurora", "aurora_min_capacity_acu": 8, "aurora_max_capacity_acu": 4},
        "aurora_min_capacity_acu",
        ["<= aurora_max_capacity_acu"],
    ),
    ({"engine_mode": "aurora", "aurora_max_capacity_acu": 300}, "aurora_max_capacity_acu", ["256"]),
    ({"engine_mode": "aurora", "aurora_instance_class": "r7g.large"}, "aurora_instance_class", ["db."]),
    ({"engine_mode": "mysql"}, "engine_mode", ["rds, aurora"]),
]


@pytest.mark.parametrize(("bad", "field", "words"), POSTGRES_CASES, ids=[c[1] for c in POSTGRES_CASES])
def test_postgres_cluster_refuses_what_aws_would(bad: dict[str, Any], field: str, words: list[str]) -> None:
    args = {"region": "us-east-1", **WIRING, **bad}
    err = _refused(lambda: PostgresCluster("db", PostgresClusterArgs(**args)))
    assert str(err).startswith(f"{field} "), str(err)
    for word in words:
        assert word in str(err), str(err)


def test_valid_edge_values_are_accepted() -> None:
    """The allowed sets' edges: PI 731 and 713, advanced insights at 465, windows touching."""
    for extra in (
        {"performance_insights_retention_days": 731},
        {"performance_insights_retention_days": 713},
        {"performance_insights_retention_days": 465, "database_insights_mode": "advanced"},
        {"backup_window": "23:30-00:30", "maintenance_window": "sun:04:30-sun:05:00"},
        {"backup_window": "03:00-04:00", "maintenance_window": "sun:04:00-sun:05:00"},
    ):
        PostgresClusterArgs(region="us-east-1", **WIRING, **extra)


CACHE_CASES: list[tuple[dict[str, Any], str, list[str]]] = [
    ({"node_type": "r7g.large"}, "node_type", ["cache. prefix"]),
    ({"region": "us-eest-1"}, "region", ["did you mean 'us-east-1' or 'us-west-1'"]),
    ({"maintenance_window": "sunday"}, "maintenance_window", ["ddd:hh:mm-ddd:hh:mm"]),
    ({"maintenance_window": "sun:05:00-sun:05:30"}, "maintenance_window", ["60 minutes"]),
    ({"snapshot_window": "05:30-06:30"}, "snapshot_window", ["overlaps maintenance_window"]),
    ({"log_retention_days": 10}, "log_retention_days", ["14"]),
    ({"engine": "Redis"}, "engine", ["lowercase"]),
    ({"num_cache_clusters": 1}, "num_cache_clusters", ["2-6"]),
]


@pytest.mark.parametrize(("bad", "field", "words"), CACHE_CASES, ids=[c[1] for c in CACHE_CASES])
def test_cache_layer_refuses_what_aws_would(bad: dict[str, Any], field: str, words: list[str]) -> None:
    err = _refused(lambda: CacheLayer("cache", CacheLayerArgs(**{**WIRING, **bad})))
    assert str(err).startswith(f"{field} "), str(err)
    for word in words:
        assert word in str(err), str(err)


def test_proxy_and_observability_refuse_an_unknown_region() -> None:
    def proxy() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(region="us-east-1", **WIRING))
        ProxyLayerArgs(region="us-east-11", target=db, vpc_id="vpc-1", subnet_ids=["a", "b"])

    caught: list[ValueError] = []

    def program() -> None:
        try:
            proxy()
        except ValueError as exc:
            caught.append(exc)

    run_program(program, config={"aws:region": "us-east-1"})
    assert caught and str(caught[0]).startswith("region 'us-east-11'") and "did you mean" in str(caught[0])
    err = _refused(
        lambda: ObservabilityLayer("obs", ObservabilityLayerArgs(region="eu-west-9", kms_key_arn="arn:k"))
    )
    assert str(err).startswith("region 'eu-west-9'")
    assert ProxyLayer  # the public API names both


def test_replica_region_components_share_the_rules() -> None:
    base = {**WIRING, "region": "us-west-2", "source_region": "us-east-1"}
    err = _refused(
        lambda: CrossRegionReplicas(
            "xr", CrossRegionReplicasArgs(source_arn="arn:db", performance_insights_retention_days=30, **base)
        )
    )
    assert str(err).startswith("performance_insights_retention_days 30")
    err = _refused(
        lambda: AuroraSecondaryCluster(
            "sec",
            AuroraSecondaryClusterArgs(
                global_cluster_id="g", backup_window="05:00-06:00", maintenance_window="sun:05:30-sun:06:30",
                **base,
            ),
        )
    )  # fmt: skip
    assert str(err).startswith("backup_window '05:00-06:00'") and "overlaps" in str(err)


@pytest.mark.parametrize(
    ("overrides", "key", "field"),
    [
        ({"performanceInsightsRetentionDays": 10}, "postgres.performanceInsightsRetentionDays",
         "performance_insights_retention_days"),
        ({"maintenanceWindow": "sunday 4am"}, "postgres.maintenanceWindow", "maintenance_window"),
        ({"backupWindow": "04:45-05:45"}, "postgres.backupWindow", "backup_window"),
        ({"instanceClass": "t4g.medium"}, "postgres.instanceClass", "instance_class"),
        ({"dbName": "my-db"}, "postgres.dbName", "db_name"),
    ],
)  # fmt: skip
def test_stack_config_reports_the_components_rule_under_its_key(
    overrides: dict[str, Any], key: str, field: str
) -> None:
    """The config parser delegates: its message is the component's own, prefixed with the key."""
    from commerce_db_components.config import ConfigError, parse_stack_config
    from test_config import stack_raw

    raw = stack_raw("staging")
    raw["postgres"] = json.dumps({**json.loads(raw.get("postgres", "{}")), **overrides})
    with pytest.raises(ConfigError) as info:
        parse_stack_config(raw, stack="staging", aws_region="us-east-1")
    assert info.value.key == key, str(info.value)
    assert info.value.allowed.startswith(f"{field} "), info.value.allowed
    settings = {
        "performanceInsightsRetentionDays": "performance_insights_retention_days",
        "maintenanceWindow": "maintenance_window",
        "backupWindow": "backup_window",
        "instanceClass": "instance_class",
        "dbName": "db_name",
    }
    args = {settings[k]: v for k, v in overrides.items()}
    with pytest.raises(ValueError) as direct:
        PostgresClusterArgs(region="us-east-1", **WIRING, **args)
    assert info.value.allowed == str(direct.value)
