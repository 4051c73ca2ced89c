"""The architecture's guardrails as plain functions over ``(type, inputs)`` resources.

Every rule is data (:class:`~commerce_db.policy_rules.model.Rule`): a name, a description, an
enforcement level, the resource types it inspects and a check yielding violation messages.
``RULES`` is the single list both the offline plan and the ``pulumi-policy`` pack evaluate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from commerce_db.policy_rules.inputs import (
    BACKUP_PLAN,
    BACKUP_VAULT,
    CACHE_GLOBAL,
    CACHE_GROUP,
    DB_INSTANCE_TYPES,
    KMS_KEY,
    METRIC_ALARM,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_CLUSTER_PARAMETER_GROUP,
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    RDS_PROXY,
    S3_BUCKET,
    S3_BUCKET_V2,
    S3_SSE,
    SECRET,
    SG,
    SG_INGRESS_RULE,
    SG_RULE,
    SNS_TOPIC,
    alarm_metrics,
    falsy_explicit,
    identifiers_of,
    is_cache_secondary,
    is_cross_region_replica,
    is_rds_replica,
    is_set,
    items,
    mapping,
    number,
    short_type,
    strings,
    truthy,
)
from commerce_db.policy_rules.model import Enforcement, PolicyContext, PolicySubject, Rule

MANDATORY = Enforcement.MANDATORY
ADVISORY = Enforcement.ADVISORY

MIN_BACKUP_DAYS = 7
"""The project's floor for automated and AWS Backup retention (a choice; AWS accepts 1-35 days, which
the stack config and the components' Args check, so this rule judges only the floor)."""
MIN_PROD_GLOBAL_ACU = 2.0
"""Aurora Serverless v2 floor in prod with a Global Database: secondaries replay the primary's
writes at this size and are the writer right after a failover (AWS accepts 0 or 0.5 and up)."""
PROTECTED_TYPES = frozenset(
    {RDS_INSTANCE, RDS_CLUSTER, CACHE_GROUP, CACHE_GLOBAL, KMS_KEY, BACKUP_VAULT, SECRET}
)
"""What holds or guards data: Pulumi ``protect`` keeps a stray ``destroy`` or rename from deleting it."""
DB_PORTS = (5432, 6379)  # PostgreSQL, Redis
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
REQUIRED_DB_ALARMS = ("CPUUtilization", "FreeStorageSpace")
REQUIRED_AURORA_ALARMS = ("CPUUtilization",)  # Aurora storage is managed, no FreeStorageSpace


def _who(r: PolicySubject) -> str:
    where = f" in {r.region}" if r.region else ""
    return f"{short_type(r.type)} '{r.name}'{where}"


# --- encryption at rest ----------------------------------------------------------------------------


def _rds_encrypted(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    inp = r.inputs
    if r.type == RDS_INSTANCE and is_rds_replica(inp):
        # Replicas inherit encryption; a cross-region one needs a key in its own region.
        if falsy_explicit(inp.get("storageEncrypted")):
            yield f"{_who(r)}: storage_encrypted is false; replicas of an encrypted source must be encrypted"
        if is_cross_region_replica(inp) and not is_set(inp.get("kmsKeyId")):
            yield (
                f"{_who(r)}: cross-region replica without kms_key_id; an encrypted replica needs a KMS key "
                "in its destination region"
            )
        return
    if not truthy(inp.get("storageEncrypted")):
        yield f"{_who(r)}: storage_encrypted is not true; database storage must be encrypted at rest (KMS)"


def _rds_cmk(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    inp = r.inputs
    if r.type == RDS_INSTANCE and is_rds_replica(inp) and not is_cross_region_replica(inp):
        return  # same-region replicas use the source's key
    if truthy(inp.get("storageEncrypted", True)) and not is_set(inp.get("kmsKeyId")):
        yield f"{_who(r)}: encrypted with the AWS-managed key; use a customer-managed KMS key (kms_key_id)"


def _cache_at_rest(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if is_cache_secondary(r.inputs):
        return  # Global Datastore secondaries inherit (and must not set) encryption
    if not truthy(r.inputs.get("atRestEncryptionEnabled")):
        yield f"{_who(r)}: at_rest_encryption_enabled is not true; cache data must be encrypted at rest"


def _sns_encrypted(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if not is_set(r.inputs.get("kmsMasterKeyId")):
        yield f"{_who(r)}: kms_master_key_id is not set; alarm topics must be encrypted at rest"


def _s3_encrypted(
    resources: Sequence[PolicySubject], ctx: PolicyContext
) -> Iterable[tuple[PolicySubject | None, str]]:
    buckets = [r for r in resources if r.type in (S3_BUCKET, S3_BUCKET_V2)]
    covered: set[str] = set()
    for r in resources:
        if r.type in S3_SSE and isinstance(r.inputs.get("bucket"), str):
            covered.add(r.inputs["bucket"])
    for b in buckets:
        if is_set(b.inputs.get("serverSideEncryptionConfiguration")):
            continue
        if identifiers_of(b) & covered:
            continue
        yield (
            b,
            (
                f"{_who(b)}: no server-side encryption configuration; audit/backup buckets must set SSE "
                "(aws:kms with a CMK preferred)"
            ),
        )


# --- encryption in transit ---------------------------------------------------------------------------


def _cache_in_transit(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if is_cache_secondary(r.inputs):
        return
    if not truthy(r.inputs.get("transitEncryptionEnabled")):
        yield f"{_who(r)}: transit_encryption_enabled is not true; Redis traffic must use TLS"


def _proxy_tls(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if not truthy(r.inputs.get("requireTls")):
        yield f"{_who(r)}: require_tls is not true; clients must connect to the proxy over TLS"


def _force_ssl(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    family = str(r.inputs.get("family") or "")
    aurora = family.startswith("aurora-postgresql")
    if r.type == RDS_PARAMETER_GROUP and not family.startswith("postgres"):
        return  # Aurora instance groups don't carry rds.force_ssl; the cluster group does
    if r.type == RDS_CLUSTER_PARAMETER_GROUP and not aurora:
        return
    value = None
    for p in items(r.inputs.get("parameters")):
        if p.get("name") == "rds.force_ssl":
            value = str(p.get("value")).strip()
    if value is None:
        digits = "".join(ch for ch in family if ch.isdigit())
        # rds.force_ssl defaults to 1 from RDS PostgreSQL 15; Aurora must set it explicitly.
        if not aurora and digits and int(digits) >= 15:
            return
        yield f"{_who(r)}: rds.force_ssl is not 1 in family {family or '?'}; require TLS to the database"
    elif value != "1":
        yield f"{_who(r)}: rds.force_ssl = {value}; must be 1 so the database refuses non-TLS connections"


# --- exposure -----------------------------------------------------------------------------------------


def _not_public(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if truthy(r.inputs.get("publiclyAccessible")):
        yield f"{_who(r)}: publicly_accessible is true; databases must not be reachable from the internet"


def _port_range(inp: Mapping[str, Any], proto_key: str) -> tuple[float, float] | None:
    proto = str(inp.get(proto_key) or "").lower()
    if proto in ("-1", "all"):
        return (0, 65535)
    lo, hi = number(inp.get("fromPort")), number(inp.get("toPort"))
    if lo is None and hi is None:
        return None
    lo = lo if lo is not None else hi
    hi = hi if hi is not None else lo
    assert lo is not None and hi is not None
    if lo == 0 and hi == 0 and proto in ("", "tcp", "6"):
        return None
    return (lo, hi)


def _exposed_ports(rng: tuple[float, float] | None) -> list[int]:
    if rng is None:
        return []
    return [p for p in DB_PORTS if rng[0] <= p <= rng[1]]


def _open_cidrs(*values: Any) -> list[str]:
    found: list[str] = []
    for v in values:
        found.extend(c for c in strings(v) if c in OPEN_CIDRS)
    return found


def _no_open_ingress(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    inp = r.inputs
    blocks: list[tuple[Mapping[str, Any], str]] = []
    if r.type == SG:
        blocks = [(b, "protocol") for b in items(inp.get("ingress"))]
    elif r.type == SG_RULE:
        if str(inp.get("type") or "").lower() == "ingress":
            blocks = [(inp, "protocol")]
    elif r.type == SG_INGRESS_RULE:
        blocks = [(inp, "ipProtocol")]
    for block, proto_key in blocks:
        cidrs = _open_cidrs(
            block.get("cidrBlocks"), block.get("ipv6CidrBlocks"), block.get("cidrIpv4"), block.get("cidrIpv6")
        )
        ports = _exposed_ports(_port_range(block, proto_key))
        if cidrs and ports:
            yield (
                f"{_who(r)}: ingress from {', '.join(sorted(set(cidrs)))} on port "
                f"{', '.join(map(str, ports))}; allow only named security groups"
            )


# --- durability ---------------------------------------------------------------------------------------


def _is_primary(r: PolicySubject) -> bool:
    return r.type == RDS_CLUSTER or (r.type == RDS_INSTANCE and not is_rds_replica(r.inputs))


def _deletion_protection(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if _is_primary(r) and not truthy(r.inputs.get("deletionProtection")):
        yield f"{_who(r)}: deletion_protection is not true; prod primaries must be protected from deletion"


def _final_snapshot(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if not _is_primary(r):
        return
    if truthy(r.inputs.get("skipFinalSnapshot")):
        yield f"{_who(r)}: skip_final_snapshot is true; prod primaries must take a final snapshot on delete"
    elif not is_set(r.inputs.get("finalSnapshotIdentifier")):
        yield f"{_who(r)}: final_snapshot_identifier is not set; prod primaries need a named final snapshot"


def _retention_msg(what: str, days: float | None) -> str | None:
    # Only the floor: the ceiling (35 days) is AWS's and refused before any policy runs.
    if days is None:
        return f"{what} is not set; keep backups at least {MIN_BACKUP_DAYS} days"
    if days < MIN_BACKUP_DAYS:
        return f"{what} = {days:g} days; keep backups at least {MIN_BACKUP_DAYS} days"
    return None


def _backup_retention(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    inp = r.inputs
    if r.type in (RDS_INSTANCE, RDS_CLUSTER):
        if not _is_primary(r):
            return
        msg = _retention_msg("backup_retention_period", number(inp.get("backupRetentionPeriod")))
        if msg:
            yield f"{_who(r)}: {msg}"
        return
    for rule in items(inp.get("rules")):  # aws:backup/plan:Plan
        rule_name = rule.get("ruleName") or "?"
        lifecycle = mapping(rule.get("lifecycle"))
        msg = _retention_msg(
            f"rule '{rule_name}' lifecycle.delete_after", number(lifecycle.get("deleteAfter"))
        )
        if msg:
            yield f"{_who(r)}: {msg}"
        for copy in items(rule.get("copyActions")):
            clc = mapping(copy.get("lifecycle"))
            msg = _retention_msg(
                f"rule '{rule_name}' copy_action lifecycle.delete_after", number(clc.get("deleteAfter"))
            )
            if msg:
                yield f"{_who(r)}: {msg}"


def _protected(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    protect = getattr(r, "protect", None)
    if protect is False:  # None: the caller does not know the options (nothing to judge)
        yield (
            f"{_who(r)}: not protected (ResourceOptions.protect); in prod what holds or guards data "
            "is protected (commerce-db:protectResources)"
        )


def _aurora_min_capacity(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if not is_set(r.inputs.get("globalClusterIdentifier")):
        return
    minimum = number(mapping(r.inputs.get("serverlessv2ScalingConfiguration")).get("minCapacity"))
    if minimum is not None and minimum < MIN_PROD_GLOBAL_ACU:
        yield (
            f"{_who(r)}: Serverless v2 minimum capacity {minimum:g} ACU in a Global Database; prod keeps "
            f"at least {MIN_PROD_GLOBAL_ACU:g} (secondaries replay the primary's writes at this size and "
            "are the writer right after a failover)"
        )


def _multi_az(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    inp = r.inputs
    if r.type == RDS_INSTANCE:
        if not is_rds_replica(inp) and not truthy(inp.get("multiAz")):
            yield f"{_who(r)}: multi_az is not true; prod primaries need a standby in another AZ"
    elif (
        r.type == CACHE_GROUP
        and not is_cache_secondary(inp)
        and not (truthy(inp.get("multiAzEnabled")) and truthy(inp.get("automaticFailoverEnabled")))
    ):
        yield (
            f"{_who(r)}: multi_az_enabled and automatic_failover_enabled must both be true in prod "
            "(Global Datastore secondaries inherit them)"
        )


def _aurora_readers(
    resources: Sequence[PolicySubject], ctx: PolicyContext
) -> Iterable[tuple[PolicySubject | None, str]]:
    members: dict[str, int] = {}
    for r in resources:
        if r.type == RDS_CLUSTER_INSTANCE and isinstance(r.inputs.get("clusterIdentifier"), str):
            members[r.inputs["clusterIdentifier"]] = members.get(r.inputs["clusterIdentifier"], 0) + 1
    for cluster in (r for r in resources if r.type == RDS_CLUSTER):
        count = sum(members.get(i, 0) for i in identifiers_of(cluster))
        if count < 2:
            yield (
                cluster,
                (
                    f"{_who(cluster)}: {count} instance(s); prod Aurora clusters need a writer and "
                    "at least one reader in another AZ to fail over to"
                ),
            )


# --- observability ------------------------------------------------------------------------------------


def _insights(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    inp = r.inputs
    mode = str(inp.get("databaseInsightsMode") or "").lower()
    if truthy(inp.get("performanceInsightsEnabled")) or mode in ("standard", "advanced"):
        return
    yield f"{_who(r)}: Performance Insights / Database Insights are off; enable them to diagnose load"


def _db_alarms(
    resources: Sequence[PolicySubject], ctx: PolicyContext
) -> Iterable[tuple[PolicySubject | None, str]]:
    covered: dict[str, set[str]] = {}  # DB instance identifier -> metric names alarmed on
    for r in resources:
        if r.type != METRIC_ALARM:
            continue
        for namespace, metric, dims in alarm_metrics(r.inputs):
            ident = dims.get("DBInstanceIdentifier") if isinstance(dims, Mapping) else None
            if namespace == "AWS/RDS" and isinstance(ident, str) and isinstance(metric, str):
                covered.setdefault(ident, set()).add(metric)
    for db in resources:
        if db.type not in DB_INSTANCE_TYPES:
            continue
        metrics: set[str] = set()
        for ident in identifiers_of(db):
            metrics |= covered.get(ident, set())
        required = REQUIRED_AURORA_ALARMS if db.type == RDS_CLUSTER_INSTANCE else REQUIRED_DB_ALARMS
        missing = [m for m in required if m not in metrics]
        if missing:
            yield db, f"{_who(db)}: no CloudWatch alarm on {', '.join(missing)} (AWS/RDS) for this instance"


def _alarm_actions(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if not strings(r.inputs.get("alarmActions")):
        yield f"{_who(r)}: alarm has no alarm_actions; nobody is notified when it fires"


# --- authentication -----------------------------------------------------------------------------------


def _redis_auth(r: PolicySubject, ctx: PolicyContext) -> Iterable[str]:
    if is_cache_secondary(r.inputs):
        return  # secondaries inherit the primary's AUTH token
    if not is_set(r.inputs.get("authToken")) and not strings(r.inputs.get("userGroupIds")):
        yield f"{_who(r)}: no auth_token (or RBAC user group); Redis must require authentication"


RULES: tuple[Rule, ...] = (
    Rule(
        "encryption-at-rest-rds",
        "RDS/Aurora storage is encrypted; cross-region replicas carry a KMS key in their region.",
        MANDATORY,
        frozenset({RDS_INSTANCE, RDS_CLUSTER}),
        _rds_encrypted,
    ),
    Rule(
        "encryption-at-rest-elasticache",
        "ElastiCache replication groups encrypt data at rest.",
        MANDATORY,
        frozenset({CACHE_GROUP}),
        _cache_at_rest,
    ),
    Rule(
        "encryption-at-rest-s3",
        "S3 buckets declare server-side encryption.",
        MANDATORY,
        check_stack=_s3_encrypted,
    ),
    Rule(
        "encryption-at-rest-sns",
        "SNS topics are KMS-encrypted.",
        MANDATORY,
        frozenset({SNS_TOPIC}),
        _sns_encrypted,
    ),
    Rule(
        "customer-managed-key",
        "Database storage uses a customer-managed KMS key rather than the AWS-managed one.",
        ADVISORY,
        frozenset({RDS_INSTANCE, RDS_CLUSTER}),
        _rds_cmk,
    ),
    Rule(
        "encryption-in-transit-elasticache",
        "ElastiCache replication groups use in-transit encryption (TLS).",
        MANDATORY,
        frozenset({CACHE_GROUP}),
        _cache_in_transit,
    ),
    Rule("proxy-require-tls", "RDS Proxy requires TLS.", MANDATORY, frozenset({RDS_PROXY}), _proxy_tls),
    Rule(
        "rds-force-ssl",
        "PostgreSQL parameter groups keep rds.force_ssl = 1.",
        MANDATORY,
        frozenset({RDS_PARAMETER_GROUP, RDS_CLUSTER_PARAMETER_GROUP}),
        _force_ssl,
    ),
    Rule(
        "no-public-database",
        "Database instances are not publicly accessible.",
        MANDATORY,
        frozenset({RDS_INSTANCE, RDS_CLUSTER_INSTANCE}),
        _not_public,
    ),
    Rule(
        "no-open-ingress-db-ports",
        "No security-group ingress from 0.0.0.0/0 or ::/0 on 5432 (PostgreSQL) or 6379 (Redis).",
        MANDATORY,
        frozenset({SG, SG_RULE, SG_INGRESS_RULE}),
        _no_open_ingress,
    ),
    Rule(
        "prod-deletion-protection",
        "Prod database primaries have deletion protection.",
        MANDATORY,
        frozenset({RDS_INSTANCE, RDS_CLUSTER}),
        _deletion_protection,
        prod_only=True,
    ),
    Rule(
        "prod-final-snapshot",
        "Prod database primaries take a final snapshot when deleted.",
        MANDATORY,
        frozenset({RDS_INSTANCE, RDS_CLUSTER}),
        _final_snapshot,
        prod_only=True,
    ),
    Rule(
        "backup-retention",
        f"Automated and AWS Backup retention is at least {MIN_BACKUP_DAYS} days.",
        MANDATORY,
        frozenset({RDS_INSTANCE, RDS_CLUSTER, BACKUP_PLAN}),
        _backup_retention,
    ),
    Rule(
        "prod-multi-az",
        "Prod primaries (RDS and ElastiCache) are Multi-AZ with automatic failover.",
        MANDATORY,
        frozenset({RDS_INSTANCE, CACHE_GROUP}),
        _multi_az,
        prod_only=True,
    ),
    Rule(
        "prod-protected-data",
        "Prod databases, caches, KMS keys, backup vaults and secrets are Pulumi-protected.",
        MANDATORY,
        PROTECTED_TYPES,
        _protected,
        prod_only=True,
    ),
    Rule(
        "prod-aurora-min-capacity",
        f"Prod Aurora Serverless v2 clusters in a Global Database keep at least {MIN_PROD_GLOBAL_ACU:g} ACU.",
        MANDATORY,
        frozenset({RDS_CLUSTER}),
        _aurora_min_capacity,
        prod_only=True,
    ),
    Rule(
        "prod-aurora-readers",
        "Prod Aurora clusters have a writer and at least one reader (Multi-AZ failover).",
        MANDATORY,
        check_stack=_aurora_readers,
        prod_only=True,
    ),
    Rule(
        "performance-insights",
        "Performance Insights or Database Insights are enabled on every database instance.",
        ADVISORY,
        frozenset({RDS_INSTANCE, RDS_CLUSTER_INSTANCE}),
        _insights,
    ),
    Rule(
        "redis-auth-token",
        "Redis requires AUTH (token or RBAC); Global Datastore secondaries inherit it.",
        MANDATORY,
        frozenset({CACHE_GROUP}),
        _redis_auth,
    ),
    Rule(
        "db-alarms",
        "Every database instance has CloudWatch alarms on CPU and free storage.",
        MANDATORY,
        check_stack=_db_alarms,
    ),
    Rule(
        "alarm-actions",
        "Every CloudWatch alarm notifies someone (alarm_actions set).",
        ADVISORY,
        frozenset({METRIC_ALARM}),
        _alarm_actions,
    ),
)
"""Every rule, in report order."""
