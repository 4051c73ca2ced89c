"""Approximate monthly on-demand cost of a planned stack, from a small dated price table.

``estimate(resources)`` prices what the offline plan registered: RDS instance hours (x2 for
Multi-AZ), storage GB-month (gp2/gp3/io1/io2), provisioned IOPS (io1/io2, gp3 above its
baseline) and gp3 throughput above baseline, RDS Proxy vCPU-hours of its target, ElastiCache
node hours, backup storage (RDS automated backups and AWS Backup incl. cross-region copies,
estimated from allocated storage x a daily-change factor x retention), and the small monthly
items (KMS keys, secrets, alarms, dashboards, audit bucket). Everything is an **estimate**
from the list prices in ``commerce_db/data/prices-<date>.json``; unknown instance classes or
regions give a line marked ``price unknown`` instead of failing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from commerce_db.mock_engine import RegisteredResource
from commerce_db.plan.refs import RefIndex
from commerce_db.plan.settings import cache_nodes
from commerce_db.policy_rules import inputs as rt
from commerce_db.policy_rules.inputs import (
    is_cache_secondary,
    is_rds_replica,
    items,
    mapping,
    number,
    strings,
    truthy,
)

PRICE_FILE = "prices-2026-11.json"
GP3_BASELINE_SMALL = (3000, 125)  # IOPS, MiB/s included below 400 GiB
GP3_BASELINE_LARGE = (12000, 500)  # from 400 GiB (RDS PostgreSQL stripes over 4 volumes)
GP3_LARGE_FROM_GB = 400


def load_prices(path: str | Path | None = None) -> dict[str, Any]:
    """The price table: ``path`` if given, else the one shipped in ``commerce_db/data/``."""
    if path is not None:
        return dict(json.loads(Path(path).read_text()))
    text = importlib_resources.files("commerce_db").joinpath("data", PRICE_FILE).read_text()
    return dict(json.loads(text))


@dataclass(frozen=True)
class CostLine:
    """One priced item; ``monthly`` is None when the price is unknown."""

    region: str
    category: str
    resource: str
    detail: str
    quantity: float
    unit: str
    unit_price: float | None
    monthly: float | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "category": self.category,
            "resource": self.resource,
            "detail": self.detail,
            "quantity": round(self.quantity, 3),
            "unit": self.unit,
            "unit_price": self.unit_price,
            "monthly": None if self.monthly is None else round(self.monthly, 2),
            "note": self.note,
        }


EXCLUDED: tuple[str, ...] = (
    "VPC interface endpoints",
    "Database Insights Advanced (per vCPU)",
    "enhanced monitoring",
    "cross-region data transfer other than the backup copy",
    "CloudWatch Logs and Firehose ingestion and storage",
    "CloudTrail data events and a second trail",
    "snapshots beyond the backup estimates",
)
"""What every estimate leaves out (priced by usage this plan cannot know); shown with the total."""


@dataclass(frozen=True)
class CostEstimate:
    """Lines plus per-region and stack totals (lines with unknown prices are excluded from totals)."""

    currency: str
    as_of: str
    label: str
    source: str
    lines: tuple[CostLine, ...]
    per_region: dict[str, float] = field(default_factory=dict)
    monthly_total: float = 0.0
    unknown: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``cost`` object of ``commerce-db plan --json``."""
        return {
            "currency": self.currency,
            "as_of": self.as_of,
            "note": "estimate",
            "label": self.label,
            "source": self.source,
            "per_region": {k: round(v, 2) for k, v in self.per_region.items()},
            "lines": [line.to_json() for line in self.lines],
            "monthly_total": round(self.monthly_total, 2),
            "unpriced_lines": self.unknown,
            "excluded": list(EXCLUDED),
        }

    def restricted_to(self, resources: set[str]) -> CostEstimate:
        """The same estimate over the lines of the named ``resources`` only, totals recomputed
        (what a filtered plan shows)."""
        return _with_totals(self, tuple(line for line in self.lines if line.resource in resources))

    def caveat(self) -> str:
        """What the total leaves out, in one line: unpriced lines and the :data:`EXCLUDED` costs."""
        unpriced = f"{self.unknown} unpriced line(s) and " if self.unknown else ""
        return f"excludes {unpriced}{', '.join(EXCLUDED)}"


def instance_size(instance_class: str) -> str:
    """``db.r7g.2xlarge`` -> ``2xlarge``."""
    return instance_class.rsplit(".", 1)[-1]


class _Pricer:
    def __init__(self, prices: Mapping[str, Any], refs: RefIndex) -> None:
        self.p = prices
        self.refs = refs
        self.hours = float(prices.get("hours_per_month", 730))
        self.assume = prices.get("assumptions", {})
        self.lines: list[CostLine] = []

    def region_table(self, region: str) -> Mapping[str, Any] | None:
        table = self.p.get("regions", {}).get(region)
        return table if isinstance(table, Mapping) else None

    def price(self, region: str, key: str, sub: str | None = None) -> float | None:
        table = self.region_table(region)
        if table is None:
            return None
        v = table.get(key)
        if sub is not None:
            v = v.get(sub) if isinstance(v, Mapping) else None
        return float(v) if isinstance(v, int | float) else None

    def add(
        self,
        region: str,
        category: str,
        resource: str,
        detail: str,
        qty: float,
        unit: str,
        unit_price: float | None,
        note: str = "",
    ) -> None:
        if unit_price is None:
            why = "region not in price table" if self.region_table(region) is None else "price unknown"
            note = f"{why}{'; ' + note if note else ''}"
            self.lines.append(CostLine(region, category, resource, detail, qty, unit, None, None, note))
            return
        self.lines.append(
            CostLine(region, category, resource, detail, qty, unit, unit_price, qty * unit_price, note)
        )

    def vcpus(self, instance_class: str | None) -> int | None:
        if not instance_class:
            return None
        v = self.p.get("vcpus_by_size", {}).get(instance_size(instance_class))
        return int(v) if isinstance(v, int | float) else None


def _region(r: RegisteredResource) -> str:
    return r.region or "unknown"


def _rds_storage(pr: _Pricer, r: RegisteredResource, storage_src: RegisteredResource, factor: int) -> float:
    """Price storage (and IOPS/throughput) of one instance; returns allocated GiB."""
    region = _region(r)
    # A replica inherits its size from the source, but its storage type, IOPS and throughput are
    # its own when it sets them (storage is chosen per role).
    own = {k: r.inputs[k] for k in ("storageType", "iops", "storageThroughput") if k in r.inputs}
    inp = (
        {**storage_src.inputs, **own} if storage_src is not r and "storageType" in own else storage_src.inputs
    )
    gb = number(inp.get("allocatedStorage")) or 0.0
    stype = str(inp.get("storageType") or ("io1" if number(inp.get("iops")) else "gp2"))
    az = " x2 (Multi-AZ)" if factor == 2 else ""
    if gb:
        pr.add(
            region,
            "rds-storage",
            r.name,
            f"{stype} {gb:g} GiB{az}",
            gb * factor,
            "GB-month",
            pr.price(region, "rds_storage_gb_month", stype),
        )
    iops = number(inp.get("iops")) or 0.0
    if stype in ("io1", "io2") and iops:
        pr.add(
            region,
            "rds-iops",
            r.name,
            f"{stype} {iops:g} provisioned IOPS{az}",
            iops * factor,
            "IOPS-month",
            pr.price(region, "rds_provisioned_iops_month", stype),
        )
    elif stype == "gp3":
        base_iops, base_tp = GP3_BASELINE_LARGE if gb >= GP3_LARGE_FROM_GB else GP3_BASELINE_SMALL
        extra = max(0.0, iops - base_iops)
        if extra:
            pr.add(
                region,
                "rds-iops",
                r.name,
                f"gp3 {extra:g} IOPS above the {base_iops} baseline{az}",
                extra * factor,
                "IOPS-month",
                pr.price(region, "rds_gp3_extra_iops_month"),
            )
        tp = number(inp.get("storageThroughput")) or 0.0
        extra_tp = max(0.0, tp - base_tp)
        if extra_tp:
            pr.add(
                region,
                "rds-iops",
                r.name,
                f"gp3 {extra_tp:g} MiB/s above the {base_tp} baseline{az}",
                extra_tp * factor,
                "MiBps-month",
                pr.price(region, "rds_gp3_extra_throughput_mibps_month"),
            )
    return gb


def _rds_instance(pr: _Pricer, r: RegisteredResource) -> None:
    region = _region(r)
    inp = r.inputs
    cls = inp.get("instanceClass")
    multi = truthy(inp.get("multiAz"))
    factor = 2 if multi else 1
    if isinstance(cls, str):
        pr.add(
            region,
            "rds-instance",
            r.name,
            f"{cls}{' Multi-AZ' if multi else ''}",
            pr.hours * factor,
            "instance-hour",
            pr.price(region, "rds_postgres_instance_hour", cls),
        )
    else:
        pr.add(region, "rds-instance", r.name, "instance class not set", pr.hours, "instance-hour", None)
    storage_src = r
    note = ""
    if is_rds_replica(inp) and number(inp.get("allocatedStorage")) is None:
        src = pr.refs.resolve(inp.get("replicateSourceDb"), [rt.RDS_INSTANCE])
        if src is not None:
            storage_src, note = src, "storage as source"
    gb = _rds_storage(pr, r, storage_src, factor)
    retention = number(inp.get("backupRetentionPeriod")) or 0.0
    if not is_rds_replica(inp) and gb and retention:
        change = float(pr.assume.get("backup_daily_change_fraction", 0.02))
        billable = gb * change * retention  # first full copy is free (100% of provisioned storage)
        pr.add(
            region,
            "backup",
            r.name,
            f"automated backups {retention:g}d (~{change:.0%}/day change beyond the free full copy)",
            billable,
            "GB-month",
            pr.price(region, "backup_storage_gb_month"),
            note,
        )


def _aurora(pr: _Pricer, r: RegisteredResource, resources: list[RegisteredResource]) -> None:
    region = _region(r)
    inp = r.inputs
    if r.type == rt.RDS_CLUSTER:
        gb = number(inp.get("allocatedStorage")) or float(pr.assume.get("aurora_storage_gb", 100))
        pr.add(
            region,
            "aurora-storage",
            r.name,
            f"{gb:g} GB (assumed)",
            gb,
            "GB-month",
            pr.price(region, "aurora_storage_gb_month"),
        )
        return
    cls = str(inp.get("instanceClass") or "")
    if cls == "db.serverless":
        cluster = pr.refs.resolve(inp.get("clusterIdentifier"), [rt.RDS_CLUSTER])
        scaling = cluster.inputs.get("serverlessv2ScalingConfiguration") if cluster else None
        acu = number(scaling.get("minCapacity")) if isinstance(scaling, Mapping) else None
        acu = acu if acu else 0.5
        pr.add(
            region,
            "aurora-instance",
            r.name,
            f"Serverless v2 at minimum {acu:g} ACU",
            acu * pr.hours,
            "ACU-hour",
            pr.price(region, "aurora_serverless_v2_acu_hour"),
            "grows with load",
        )
        return
    pr.add(
        region,
        "aurora-instance",
        r.name,
        cls,
        pr.hours,
        "instance-hour",
        pr.price(region, "aurora_postgres_instance_hour", cls),
    )


def _proxy(pr: _Pricer, r: RegisteredResource, resources: list[RegisteredResource]) -> None:
    region = _region(r)
    target_class: str | None = None
    for t in resources:
        if (
            t.type != rt.RDS_PROXY_TARGET
            or pr.refs.resolve(t.inputs.get("dbProxyName"), [rt.RDS_PROXY]) is not r
        ):
            continue
        tgt = pr.refs.resolve(
            t.inputs.get("dbInstanceIdentifier") or t.inputs.get("dbClusterIdentifier"),
            [rt.RDS_INSTANCE, rt.RDS_CLUSTER],
        )
        if tgt is not None and tgt.type == rt.RDS_INSTANCE:
            target_class = tgt.inputs.get("instanceClass")
        elif tgt is not None:  # Aurora: sum of the cluster's provisioned instances
            classes = [
                c.inputs.get("instanceClass")
                for c in resources
                if c.type == rt.RDS_CLUSTER_INSTANCE
                and pr.refs.resolve(c.inputs.get("clusterIdentifier"), [rt.RDS_CLUSTER]) is tgt
            ]
            target_class = next((c for c in classes if isinstance(c, str)), None)
    standby = ""
    if target_class is None:  # fall back to the region's primary
        prim = [
            x
            for x in resources
            if x.type == rt.RDS_INSTANCE and not is_rds_replica(x.inputs) and x.region == r.region
        ]
        if not prim:
            # A replica region's standby proxy (issue 15): no target until a failover registers the
            # promoted replica, and AWS bills per vCPU of the targets; priced as if it had one.
            prim = sorted(
                (x for x in resources if x.type == rt.RDS_INSTANCE and x.region == r.region),
                key=lambda x: x.name,
            )
            standby = "standby without target until a failover: upper bound" if prim else ""
        target_class = prim[0].inputs.get("instanceClass") if prim else None
    if target_class == "db.serverless":  # Aurora Serverless v2 targets bill per ACU (minimum 8)
        acus = float(pr.assume.get("proxy_min_acus", 8))
        pr.add(
            region,
            "rds-proxy",
            r.name,
            f"Serverless v2 target, {acus:g} ACU minimum",
            acus * pr.hours,
            "ACU-hour",
            pr.price(region, "rds_proxy_acu_hour"),
            "grows with load",
        )
        return
    vcpus = pr.vcpus(target_class if isinstance(target_class, str) else None)
    if vcpus is None:
        pr.add(region, "rds-proxy", r.name, f"target {target_class or '?'}", pr.hours, "vCPU-hour", None)
        return
    vcpus = max(vcpus, int(pr.assume.get("proxy_min_vcpus", 2)))
    pr.add(
        region,
        "rds-proxy",
        r.name,
        f"{vcpus} vCPU of target {target_class}",
        vcpus * pr.hours,
        "vCPU-hour",
        pr.price(region, "rds_proxy_vcpu_hour"),
        standby,
    )


def _cache(pr: _Pricer, r: RegisteredResource, resources: list[RegisteredResource]) -> None:
    region = _region(r)
    inp = r.inputs
    node_type = inp.get("nodeType")
    engine = inp.get("engine")
    note = ""
    if not node_type and is_cache_secondary(inp):
        glob = pr.refs.resolve(inp.get("globalReplicationGroupId"), [rt.CACHE_GLOBAL])
        prim = (
            pr.refs.resolve(glob.inputs.get("primaryReplicationGroupId"), [rt.CACHE_GROUP]) if glob else None
        )
        if glob is not None:
            node_type = glob.inputs.get("cacheNodeType") or (prim.inputs.get("nodeType") if prim else None)
            engine = engine or (prim.inputs.get("engine") if prim else None)
            note = "node type of the Global Datastore primary"
    nodes = cache_nodes(inp) or 1
    price = pr.price(region, "elasticache_node_hour", str(node_type)) if node_type else None
    if price is not None and str(engine or "").lower() == "valkey":
        price *= 1 - float(pr.assume.get("valkey_node_discount", 0.2))
        note = f"{note + '; ' if note else ''}Valkey pricing"
    pr.add(
        region,
        "elasticache",
        r.name,
        f"{nodes} x {node_type or '?'}",
        nodes * pr.hours,
        "node-hour",
        price,
        note,
    )


def _backup_plans(pr: _Pricer, resources: list[RegisteredResource]) -> None:
    change = float(pr.assume.get("backup_daily_change_fraction", 0.02))
    for plan in (r for r in resources if r.type == rt.BACKUP_PLAN):
        protected: list[RegisteredResource] = []
        for sel in resources:
            if (
                sel.type != rt.BACKUP_SELECTION
                or pr.refs.resolve(sel.inputs.get("planId"), [rt.BACKUP_PLAN]) is not plan
            ):
                continue
            for arn in strings(sel.inputs.get("resources")):
                db = pr.refs.resolve(arn, [rt.RDS_INSTANCE, rt.RDS_CLUSTER])
                if db is not None:
                    protected.append(db)
        gb = 0.0
        for db in protected:
            gb += number(db.inputs.get("allocatedStorage")) or float(
                pr.assume.get("aurora_storage_gb", 100) if db.type == rt.RDS_CLUSTER else 0
            )
        if not gb:
            continue
        region = _region(plan)
        for rule in items(plan.inputs.get("rules")):
            lc = mapping(rule.get("lifecycle"))
            days = number(lc.get("deleteAfter")) or 35.0
            stored = gb * (1 + change * days)
            name = f"{plan.name}/{rule.get('ruleName') or 'rule'}"
            pr.add(
                region,
                "backup",
                name,
                f"AWS Backup {gb:g} GB kept {days:g}d (~{change:.0%}/day change)",
                stored,
                "GB-month",
                pr.price(region, "backup_storage_gb_month"),
            )
            for copy in items(rule.get("copyActions")):
                dest = pr.refs.resolve(copy.get("destinationVaultArn"), [rt.BACKUP_VAULT])
                dregion = _region(dest) if dest is not None else "unknown"
                clc = mapping(copy.get("lifecycle"))
                cdays = number(clc.get("deleteAfter")) or days
                pr.add(
                    dregion,
                    "backup",
                    f"{name} copy",
                    f"copy in {dest.name if dest else '?'} kept {cdays:g}d",
                    gb * (1 + change * cdays),
                    "GB-month",
                    pr.price(dregion, "backup_storage_gb_month"),
                )
                monthly_transfer = gb * change * 30
                pr.add(
                    region,
                    "backup",
                    f"{name} copy",
                    f"cross-region transfer ~{monthly_transfer:g} GB/month of changes",
                    monthly_transfer,
                    "GB",
                    pr.price(region, "cross_region_transfer_gb"),
                )


# Small per-resource monthly items: type -> (category, price key, detail).
_FLAT: dict[str, tuple[str, str, str]] = {
    "aws:kms/key:Key": ("kms", "kms_key_month", "customer-managed key"),
    "aws:secretsmanager/secret:Secret": ("secrets", "secret_month", "secret"),
    rt.METRIC_ALARM: ("cloudwatch", "alarm_month", "alarm"),
    "aws:cloudwatch/dashboard:Dashboard": ("cloudwatch", "dashboard_month", "dashboard"),
    # The writer name's ARC cluster (commerce-db:writerDns: arc): billed per cluster-hour.
    "aws:route53recoverycontrol/cluster:Cluster": ("dns", "arc_cluster_month", "Route 53 ARC cluster"),
}


def _flat_items(pr: _Pricer, resources: list[RegisteredResource]) -> None:
    groups: dict[tuple[str, str], int] = {}
    for r in resources:
        if r.type in _FLAT:
            groups[(_region(r), r.type)] = groups.get((_region(r), r.type), 0) + 1
    for (region, typ), n in sorted(groups.items()):
        category, key, detail = _FLAT[typ]
        pr.add(region, category, f"{n} x {detail}", detail, n, "month", pr.price(region, key))
    gb = float(pr.assume.get("audit_bucket_gb", 50))
    for r in resources:
        if r.type in (rt.S3_BUCKET, rt.S3_BUCKET_V2):
            pr.add(
                _region(r),
                "audit",
                r.name,
                f"S3 Standard ~{gb:g} GB assumed",
                gb,
                "GB-month",
                pr.price(_region(r), "s3_standard_gb_month"),
            )
        elif r.type == "aws:cloudtrail/trail:Trail":
            copy = (r.inputs.get("tags") or {}).get("trail-copy", "additional")
            if copy == "first":
                pr.add(_region(r), "audit", r.name, "management events, first copy (free)", 1, "month", 0.0)
            else:
                # A paid second copy where the organisation's trail already records the account.
                events = float(pr.assume.get("cloudtrail_management_events_per_month", 5_000_000))
                price = pr.price(_region(r), "cloudtrail_additional_copy_per_100k_events")
                pr.add(
                    _region(r),
                    "audit",
                    r.name,
                    f"additional copy, ~{events / 1e6:g}M mgmt events",
                    events / 100_000,
                    "100k events",
                    price,
                )


def estimate(
    resources: Iterable[RegisteredResource],
    prices: Mapping[str, Any] | None = None,
    refs: RefIndex | None = None,
    region_order: Sequence[str] = (),
) -> CostEstimate:
    """Approximate monthly on-demand cost of ``resources`` (see the module docstring)."""
    res = [r for r in resources if r.custom]
    table = prices if prices is not None else load_prices()
    pr = _Pricer(table, refs if refs is not None else RefIndex(res))
    # Registration order varies between runs (resources created inside applies); price in a
    # fixed order so the table and the JSON are stable: databases, proxies, caches, by name.
    kinds = (rt.RDS_INSTANCE, rt.RDS_CLUSTER, rt.RDS_CLUSTER_INSTANCE, rt.RDS_PROXY, rt.CACHE_GROUP)
    for r in sorted(res, key=lambda r: (kinds.index(r.type) if r.type in kinds else len(kinds), r.name)):
        if r.type == rt.RDS_INSTANCE:
            _rds_instance(pr, r)
        elif r.type in (rt.RDS_CLUSTER, rt.RDS_CLUSTER_INSTANCE):
            _aurora(pr, r, res)
        elif r.type == rt.RDS_PROXY:
            _proxy(pr, r, res)
        elif r.type == rt.CACHE_GROUP:
            _cache(pr, r, res)
    _backup_plans(pr, res)
    _flat_items(pr, res)
    rank = {r: i for i, r in enumerate(region_order)}
    lines = sorted(pr.lines, key=lambda ln: (rank.get(ln.region, len(rank)), ln.region))  # stable
    bare = CostEstimate(
        currency=str(table.get("currency", "USD")),
        as_of=str(table.get("as_of", "?")),
        label=str(table.get("label") or f"estimate, on-demand list prices as of {table.get('as_of', '?')}"),
        source=str(table.get("source", "")),
        lines=(),
    )
    return _with_totals(bare, tuple(lines))


def _with_totals(estimate: CostEstimate, lines: tuple[CostLine, ...]) -> CostEstimate:
    """``estimate`` holding ``lines``, with its per-region and stack totals summed from them."""
    per_region: dict[str, float] = {}
    for line in lines:
        per_region.setdefault(line.region, 0.0)
        if line.monthly is not None:
            per_region[line.region] += line.monthly
    return dataclasses.replace(
        estimate,
        lines=lines,
        per_region=per_region,
        monthly_total=sum(per_region.values()),
        unknown=sum(1 for line in lines if line.monthly is None),
    )
