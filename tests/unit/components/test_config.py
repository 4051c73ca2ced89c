"""Stack config parsing: defaults, environment rules, and ConfigError naming key, value, allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from commerce_db_components.config import (
    ConfigError,
    StackConfig,
    config_reference,
    gp3_performance,
    is_global_datastore_node_type,
    parse_stack_config,
)

ROOT = Path(__file__).resolve().parents[3]


def stack_raw(stack: str) -> dict[str, Any]:
    """The stack file's commerce-db keys without namespace, JSON-encoded as the engine hands them over."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {
        k.split(":", 1)[1]: v if isinstance(v, str) else json.dumps(v)
        for k, v in data.items()
        if k.startswith("commerce-db:")
    }


def parse(raw: dict[str, Any], stack: str = "staging", region: str = "us-east-1") -> StackConfig:
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    return parse_stack_config(encoded, stack=stack, aws_region=region)


def with_section(stack: str, section: str, **values: Any) -> dict[str, Any]:
    """The stack file's config with ``values`` merged into ``section``."""
    raw = stack_raw(stack)
    merged = {**json.loads(raw.get(section, "{}")), **values}
    return {**raw, section: json.dumps(merged)}


def expect_error(raw: dict[str, Any], key: str, stack: str = "staging") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(raw, stack=stack)
    assert info.value.key == key, str(info.value)
    assert f"commerce-db:{key}" in str(info.value)
    return info.value


# ---------------------------------------------------------------- the stack files


def test_prod_stack_file_parses_to_prod_settings() -> None:
    cfg = parse(stack_raw("prod"), stack="prod")
    assert cfg.environment == "prod"
    assert cfg.primary_region == "us-east-1"
    assert cfg.replica_regions == ("us-west-2", "eu-west-1")
    assert cfg.dr_region == "us-west-2"
    assert cfg.postgres.multi_az and cfg.postgres.deletion_protection
    assert cfg.postgres.instance_class.startswith(("db.r6g.", "db.r7g."))
    assert cfg.postgres.effective_replica_class.startswith(("db.r6g.", "db.r7g."))
    assert cfg.postgres.family == "postgres16"
    assert cfg.backup.retention_days == 35
    assert cfg.cache.global_datastore is True
    assert set(cfg.network.existing_vpcs) == {"us-east-1", "us-west-2", "eu-west-1"}


def test_staging_stack_file_is_small_and_unprotected() -> None:
    cfg = parse(stack_raw("staging"), stack="staging")
    assert cfg.environment == "staging"
    assert len(cfg.regions) <= 2
    assert cfg.postgres.deletion_protection is False
    assert cfg.cache.global_datastore is False
    assert cfg.backup.retention_days < 35
    assert cfg.network.existing_vpcs == {}  # staging creates its VPCs


def test_environment_defaults_follow_stack_name() -> None:
    prod = parse({"replicaRegions": ["us-west-2"]}, stack="prod")
    staging = parse({"drRegion": "us-west-2"}, stack="feature-x")
    assert prod.environment == "prod" and staging.environment == "staging"
    assert prod.postgres.deletion_protection and prod.postgres.multi_az and prod.backup.retention_days == 35
    assert not staging.postgres.deletion_protection and not staging.postgres.multi_az
    assert prod.dr_region == "us-west-2"  # defaults to the first replica region


def test_config_is_frozen() -> None:
    cfg = parse({"drRegion": "us-west-2"})
    with pytest.raises(AttributeError):
        cfg.primary_region = "eu-west-1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.tags["x"] = "y"  # type: ignore[index]


def test_primary_region_defaults_to_aws_region() -> None:
    assert parse({"drRegion": "us-west-2"}, region="eu-central-1").primary_region == "eu-central-1"


# ---------------------------------------------------------------- invalid configs


def test_unknown_primary_region() -> None:
    err = expect_error({"primaryRegion": "us-east-9", "drRegion": "us-west-2"}, "primaryRegion")
    assert "us-east-9" in str(err) and "region" in err.allowed


def test_unknown_replica_region() -> None:
    expect_error({"replicaRegions": ["us-west-2", "mars-north-1"]}, "replicaRegions[1]")


def test_primary_in_replica_regions() -> None:
    expect_error({"replicaRegions": ["us-east-1"], "drRegion": "us-west-2"}, "replicaRegions[0]")


def test_at_most_two_replica_regions() -> None:
    err = expect_error({"replicaRegions": ["us-west-2", "eu-west-1", "ap-south-1"]}, "replicaRegions")
    assert "2" in err.allowed


def test_backup_retention_40_is_rejected() -> None:
    err = expect_error(with_section("prod", "backup", retentionDays=40), "backup.retentionDays", stack="prod")
    assert err.value == 40 and "35" in err.allowed


def test_backup_retention_zero_is_rejected() -> None:
    expect_error(with_section("staging", "backup", retentionDays=0), "backup.retentionDays")


def test_unknown_top_level_key_is_a_typo_error() -> None:
    raw = {**stack_raw("staging"), "primaryRegoin": "us-east-1"}
    err = expect_error(raw, "primaryRegoin")
    assert "primaryRegion" in err.allowed  # lists the known keys


def test_unknown_nested_key_is_a_typo_error() -> None:
    err = expect_error(
        with_section("staging", "postgres", instanceClas="db.r7g.large"), "postgres.instanceClas"
    )
    assert "instanceClass" in err.allowed


def test_wrong_type_names_the_key() -> None:
    expect_error(with_section("staging", "postgres", inRegionReplicas="two"), "postgres.inRegionReplicas")
    expect_error(with_section("staging", "proxy", enabled="yes"), "proxy.enabled")


def test_engine_version_major_must_be_16_or_17() -> None:
    expect_error(with_section("staging", "postgres", engineVersion="15.7"), "postgres.engineVersion")
    cfg = parse(with_section("staging", "postgres", engineVersion="17"))
    assert cfg.postgres.family == "postgres17"
    pinned = parse(with_section("staging", "postgres", engineVersion="17.2", autoMinorVersionUpgrade=False))
    assert pinned.postgres.family == "postgres17"


def test_pinned_minor_with_auto_minor_upgrades_is_refused() -> None:
    """Finding 5: after AWS upgrades 16.6, the next `up` would try a downgrade."""
    err = expect_error(with_section("prod", "postgres", engineVersion="16.6"), "postgres.engineVersion")
    assert "'16'" in str(err) and "auto_minor_version_upgrade" in str(err)


def test_managed_master_password_with_replicas_is_rejected() -> None:
    err = expect_error(
        with_section("prod", "postgres", manageMasterUserPassword=True),
        "postgres.manageMasterUserPassword",
        "prod",
    )
    assert "replica" in err.allowed


def test_managed_master_password_without_replicas_is_allowed() -> None:
    raw = with_section(
        "staging", "postgres", manageMasterUserPassword=True, inRegionReplicas=0, crossRegionReplicas=0
    )
    assert parse(raw).postgres.manage_master_user_password


@pytest.mark.parametrize("iops", [999, 256001])
def test_io2_iops_out_of_range(iops: int) -> None:
    raw = with_section("prod", "postgres", storageType="io2", allocatedStorageGib=1000, iops=iops)
    err = expect_error(raw, "postgres.iops", "prod")
    assert "1000" in err.allowed and "256000" in err.allowed


def test_io2_iops_per_gib_ratio() -> None:
    raw = with_section("prod", "postgres", storageType="io2", allocatedStorageGib=100, iops=100001)
    assert "per GiB" in expect_error(raw, "postgres.iops", "prod").allowed
    ok = with_section(
        "prod", "postgres", storageType="io2", allocatedStorageGib=100, iops=100000,
        instanceClass="db.r6i.24xlarge",  # a class whose EBS maximum allows it (120000)
    )  # fmt: skip
    assert parse(ok, stack="prod").postgres.iops == 100000


def test_io2_needs_iops_and_no_throughput() -> None:
    raw = json.loads(with_section("prod", "postgres")["postgres"])
    raw.pop("iops")
    expect_error({**stack_raw("prod"), "postgres": json.dumps(raw)}, "postgres.iops", "prod")
    expect_error(
        with_section("prod", "postgres", storageThroughputMibps=1000),
        "postgres.storageThroughputMibps",
        "prod",
    )


def test_gp3_small_volume_has_fixed_iops() -> None:
    expect_error(with_section("staging", "postgres", storageType="gp3", iops=6000), "postgres.iops")
    cfg = parse(with_section("staging", "postgres", storageType="gp3", allocatedStorageGib=100))
    assert gp3_performance(cfg.postgres) == (None, None)  # AWS fixes 3000 IOPS / 125 MiBps


def test_gp3_large_volume_baseline_and_ratio() -> None:
    big = {"allocatedStorageGib": 500, "maxAllocatedStorageGib": 1000}
    cfg = parse(with_section("staging", "postgres", storageType="gp3", **big))
    assert gp3_performance(cfg.postgres) == (12000, 500)
    expect_error(with_section("staging", "postgres", iops=11000, **big), "postgres.iops")  # < 12000 baseline
    err = expect_error(
        with_section("staging", "postgres", iops=12000, storageThroughputMibps=4000, **big),
        "postgres.storageThroughputMibps",
    )
    assert "0.25" in err.allowed


def test_prod_requires_deletion_protection_and_multi_az() -> None:
    expect_error(
        with_section("prod", "postgres", deletionProtection=False), "postgres.deletionProtection", "prod"
    )
    expect_error(with_section("prod", "postgres", multiAz=False), "postgres.multiAz", "prod")


def test_global_datastore_with_burstable_node_type() -> None:
    raw = with_section("prod", "cache", nodeType="cache.t4g.medium")
    err = expect_error(raw, "cache.nodeType", "prod")
    assert "Global Datastore" in err.allowed


@pytest.mark.parametrize(
    ("node_type", "ok"),
    [("cache.r7g.large", True), ("cache.m6g.xlarge", True), ("cache.c7gn.large", True),
     ("cache.t4g.large", False), ("cache.r6g.medium", False), ("cache.r7i.large", False)],
)  # fmt: skip
def test_global_datastore_node_families(node_type: str, ok: bool) -> None:
    assert is_global_datastore_node_type(node_type) is ok


def test_global_datastore_needs_replica_regions() -> None:
    expect_error({"drRegion": "us-west-2", "cache": {"globalDatastore": True}}, "cache.globalDatastore")


@pytest.mark.parametrize("length", [15, 129])
def test_auth_token_length_bounds(length: int) -> None:
    expect_error(with_section("staging", "cache", authTokenLength=length), "cache.authTokenLength")


def test_cache_window_overlap_is_surfaced_from_cache_layer_rules() -> None:
    raw = with_section(
        "staging", "cache", snapshotWindow="05:00-06:00", maintenanceWindow="sun:05:30-sun:06:30"
    )
    assert "overlap" in expect_error(raw, "cache.snapshotWindow").allowed


def test_cache_layer_settings_map_config_to_real_cache_layer_fields() -> None:
    import dataclasses

    from commerce_db_components.cache_layer import CacheLayerArgs
    from commerce_db_components.config import CacheConfig, _cache_layer_config_keys, cache_layer_settings

    c = CacheConfig(snapshot_retention_days=3, parameters={"timeout": "300"})
    settings = cache_layer_settings(c)
    assert set(settings) <= {f.name for f in dataclasses.fields(CacheLayerArgs)}
    assert settings["snapshot_retention_limit"] == 3 and settings["extra_parameters"] == {"timeout": "300"}
    keys = _cache_layer_config_keys(c)
    assert keys["snapshot_retention_limit"] == ("cache.snapshotRetentionDays", 3)
    assert keys["auth_token_update_strategy"] == ("cache.authTokenUpdateStrategy", "ROTATE")


def test_unknown_alarm_threshold_name() -> None:
    raw = with_section("staging", "observability", thresholds={"rds_cpu": 50})
    assert "rds_cpu_percent" in expect_error(raw, "observability.thresholds.rds_cpu").allowed


def test_alarm_threshold_range_from_observability_rules() -> None:
    raw = with_section("staging", "observability", thresholds={"rds_cpu_percent": 150})
    expect_error(raw, "observability.thresholds.rds_cpu_percent")


def test_dr_region_must_differ_from_primary() -> None:
    expect_error({"drRegion": "us-east-1"}, "drRegion")


def test_dr_region_required_without_replicas() -> None:
    expect_error({}, "drRegion")


def test_aurora_variant_config() -> None:
    cfg = parse(with_section("staging", "postgres", engineMode="aurora"))
    assert cfg.postgres.family == "aurora-postgresql16" and cfg.postgres.cross_region_replicas == 1
    raw = with_section("staging", "postgres", engineMode="aurora", manageMasterUserPassword=True)
    expect_error(raw, "postgres.manageMasterUserPassword")  # a Global Database spans regions
    single = with_section(
        "staging", "postgres", engineMode="aurora", manageMasterUserPassword=True, crossRegionReplicas=0
    )
    assert parse(single).postgres.manage_master_user_password


def test_advanced_insights_need_long_retention() -> None:
    raw = with_section("prod", "postgres", performanceInsightsRetentionDays=31)
    expect_error(raw, "postgres.databaseInsightsMode", "prod")


def test_proxy_idle_percent_within_max() -> None:
    raw = with_section("staging", "proxy", maxConnectionsPercent=50, maxIdleConnectionsPercent=60)
    expect_error(raw, "proxy.maxIdleConnectionsPercent")


def test_existing_vpc_needs_two_subnets() -> None:
    raw = with_section(
        "staging", "network", existingVpcs={"us-east-2": {"vpcId": "vpc-1", "privateSubnetIds": ["subnet-1"]}}
    )
    expect_error(raw, "network.existingVpcs.us-east-2.privateSubnetIds")


def test_master_username_must_not_be_reserved() -> None:
    expect_error(with_section("staging", "postgres", masterUsername="rdsadmin"), "postgres.masterUsername")


def test_error_never_echoes_more_than_the_bad_value() -> None:
    err = expect_error(with_section("staging", "backup", retentionDays=40), "backup.retentionDays")
    assert str(err).startswith("invalid config commerce-db:backup.retentionDays = 40:")


# ---------------------------------------------------------------- documentation


def test_every_key_is_documented_with_type_and_default() -> None:
    rows = config_reference()
    keys = {r.key for r in rows}
    assert {
        "primaryRegion",
        "backup.retentionDays",
        "postgres.iops",
        "cache.nodeType",
        "proxy.iamAuth",
    } <= keys
    for row in rows:
        assert row.type and row.default and row.meaning, row


def test_docs_table_lists_every_key() -> None:
    text = (ROOT / "docs" / "reference.md").read_text()
    missing = [r.key for r in config_reference() if f"`{r.key}`" not in text]
    assert not missing, f"docs/reference.md lacks {missing}"


def test_pulumi_yaml_project_and_typed_declarations() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "commerce-db" and project["description"]
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    declared = project["config"]
    documented = {r.key for r in config_reference()}
    for key, decl in declared.items():
        assert key in documented, key
        assert decl["type"] in ("string", "integer", "boolean", "array") and decl["description"]
    # stack files only set keys the program knows (the flat config map the CLI hands over)
    for stack in ("prod", "staging"):
        data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert all(k.startswith(("commerce-db:", "aws:")) for k in data)


def test_components_package_reexports_everything() -> None:
    import commerce_db_components

    for name in commerce_db_components.__all__:
        assert getattr(commerce_db_components, name) is not None, name


def test_alarm_emails_and_tags_are_checked() -> None:
    expect_error(
        with_section("staging", "observability", alarmEmails=["oncall"]), "observability.alarmEmails[0]"
    )
    expect_error({**stack_raw("staging"), "tags": json.dumps({"aws:owner": "x"})}, "tags.aws:owner")


def test_pulumi_yaml_defaults_give_a_valid_minimal_stack() -> None:
    """A new stack with only aws:region and drRegion: the CLI fills in Pulumi.yaml's defaults."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    defaults = {k: d["default"] for k, d in declared.items() if "default" in d}
    assert set(defaults) == set(declared)  # no key is required in every stack
    cfg = parse({**defaults, "drRegion": "us-west-2"}, stack="dev", region="us-east-2")
    assert (cfg.environment, cfg.primary_region, cfg.replica_regions) == ("staging", "us-east-2", ())


def test_errors_under_secret_keys_do_not_show_the_value() -> None:
    raw = {"drRegion": "us-west-2", "observability": json.dumps({"alarmEmails": ["pager-token-abc123"]})}
    with pytest.raises(ConfigError) as info:
        parse_stack_config(
            raw, stack="staging", aws_region="us-east-1", secret_keys=frozenset({"observability"})
        )
    assert info.value.key == "observability.alarmEmails[0]"
    assert "pager-token-abc123" not in str(info.value) and "[secret]" in str(info.value)
