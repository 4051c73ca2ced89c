"""Cost arithmetic on tiny known inputs with a hand-made price table."""

from __future__ import annotations

from typing import Any

import pytest

from commerce_db.cost import estimate, load_prices
from commerce_db.mock_engine import RegisteredResource

PRICES: dict[str, Any] = {
    "as_of": "2099-01-01",
    "currency": "USD",
    "hours_per_month": 100,
    "assumptions": {"backup_daily_change_fraction": 0.01, "proxy_min_vcpus": 2},
    "vcpus_by_size": {"large": 2, "xlarge": 4},
    "regions": {
        "r1": {
            "rds_postgres_instance_hour": {"db.m.xlarge": 1.0},
            "rds_storage_gb_month": {"gp3": 0.1, "io2": 0.2},
            "rds_provisioned_iops_month": {"io2": 0.05},
            "rds_gp3_extra_iops_month": 0.01,
            "rds_gp3_extra_throughput_mibps_month": 0.5,
            "rds_proxy_vcpu_hour": 0.02,
            "elasticache_node_hour": {"cache.m.large": 0.5},
            "backup_storage_gb_month": 0.1,
            "kms_key_month": 1.0,
            "alarm_month": 0.1,
        }
    },
}


def rr(type_: str, name: str, region: str = "r1", **inputs: Any) -> RegisteredResource:
    state = {"id": f"{name}-id", "arn": f"arn:aws:x:{region}:1:{name}", "identifier": name, "name": name}
    return RegisteredResource(
        urn=f"urn:pulumi:t::p::{type_}::{name}",
        type=type_,
        name=name,
        parent_urn=None,
        custom=True,
        provider=None,
        inputs=inputs,
        region=region,
        state=state,
    )


def monthly(est: Any, category: str, resource: str) -> float:
    return sum(line.monthly for line in est.lines if line.category == category and line.resource == resource)


def test_rds_multi_az_storage_iops_backup_proxy_and_cache() -> None:
    db = rr(
        "aws:rds/instance:Instance",
        "db",
        instanceClass="db.m.xlarge",
        multiAz=True,
        storageType="io2",
        allocatedStorage=100.0,
        iops=1000.0,
        backupRetentionPeriod=10.0,
    )
    gp3 = rr(
        "aws:rds/instance:Instance",
        "gp3db",
        instanceClass="db.m.xlarge",
        storageType="gp3",
        allocatedStorage=500.0,  # >= 400 GiB: baseline 12000 IOPS / 500 MiB/s
        iops=15000.0,
        storageThroughput=600.0,
    )
    replica = rr("aws:rds/instance:Instance", "rep", instanceClass="db.m.xlarge", replicateSourceDb="db")
    proxy = rr("aws:rds/proxy:Proxy", "px")
    target = rr("aws:rds/proxyTarget:ProxyTarget", "px-t", dbProxyName="px", dbInstanceIdentifier="db")
    cache = rr(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "c",
        nodeType="cache.m.large",
        numCacheClusters=3.0,
    )
    valkey = rr(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "v",
        nodeType="cache.m.large",
        engine="valkey",
        numNodeGroups=2.0,
        replicasPerNodeGroup=1.0,
    )
    key = rr("aws:kms/key:Key", "k")
    est = estimate([db, gp3, replica, proxy, target, cache, valkey, key], PRICES)

    assert monthly(est, "rds-instance", "db") == pytest.approx(1.0 * 100 * 2)  # Multi-AZ doubles hours
    assert monthly(est, "rds-storage", "db") == pytest.approx(100 * 0.2 * 2)
    assert monthly(est, "rds-iops", "db") == pytest.approx(1000 * 0.05 * 2)
    assert monthly(est, "backup", "db") == pytest.approx(
        100 * 0.01 * 10 * 0.1
    )  # incremental beyond free copy
    assert monthly(est, "rds-iops", "gp3db") == pytest.approx(3000 * 0.01 + 100 * 0.5)
    assert monthly(est, "rds-storage", "rep") == pytest.approx(100 * 0.2)  # storage of its source
    assert monthly(est, "rds-proxy", "px") == pytest.approx(4 * 100 * 0.02)  # xlarge = 4 vCPU
    assert monthly(est, "elasticache", "c") == pytest.approx(3 * 100 * 0.5)
    assert monthly(est, "elasticache", "v") == pytest.approx(4 * 100 * 0.5 * 0.8)  # Valkey discount
    assert monthly(est, "kms", "1 x customer-managed key") == pytest.approx(1.0)
    assert est.monthly_total == pytest.approx(
        sum(line.monthly for line in est.lines if line.monthly is not None)
    )
    assert est.per_region == {"r1": pytest.approx(est.monthly_total)}
    assert est.to_json()["note"] == "estimate" and est.as_of == "2099-01-01"


def test_unknown_class_and_region_are_marked_not_crashing() -> None:
    odd = rr(
        "aws:rds/instance:Instance",
        "odd",
        instanceClass="db.q.huge",
        allocatedStorage=10.0,
        storageType="gp3",
    )
    far = rr("aws:rds/instance:Instance", "far", region="mars-1", instanceClass="db.m.xlarge")
    est = estimate([odd, far], PRICES)
    notes = {(line.resource, line.category): line.note for line in est.lines if line.monthly is None}
    assert notes[("odd", "rds-instance")] == "price unknown"
    assert notes[("far", "rds-instance")] == "region not in price table"
    assert est.unknown == 2
    assert est.monthly_total == pytest.approx(10 * 0.1)  # only the priced storage line


def test_shipped_price_table_is_dated_and_covers_the_stack_regions() -> None:
    table = load_prices()
    assert table["as_of"] == "2026-11-01" and "estimate" in table["label"]
    for region in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1"):
        assert table["regions"][region]["rds_postgres_instance_hour"]["db.r7g.large"] > 0
