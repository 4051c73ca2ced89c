"""Typed stack configuration: parsed once, validated early, frozen.

This is the only module that reads Pulumi config. :func:`load_stack_config` reads every
key of the ``commerce-db`` namespace, checks it against the schema below (unknown keys are
errors, so a typo never silently falls back to a default), applies environment-aware
defaults and the AWS rules that would otherwise only fail at deploy time, and returns a
frozen :class:`StackConfig`.

Keys are camelCase, as Pulumi config usually is. Top-level scalar keys
(``commerce-db:primaryRegion``) are strings on the wire; sections (``commerce-db:postgres``)
are structured YAML objects. Every field below carries its config key, its documentation and
its default in ``field(metadata=...)``; :func:`config_reference` turns that into the table in
the README's configuration reference, so code and docs cannot drift apart.

Errors are :class:`ConfigError` (a ``ValueError``) naming the key, the bad value and what is
allowed, e.g. ``commerce-db:backup.retentionDays = 40: must be an integer from 1 to 35 ...``.
"""

# The schema is dataclass fields built by _key() (a dataclasses.field wrapper), which RUF009 cannot see.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import types
import typing
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import pulumi

from . import validation as _validation

NAMESPACE = "commerce-db"
"""Pulumi config namespace (= project name)."""

KNOWN_REGIONS = _validation.KNOWN_REGIONS
"""AWS commercial regions (defined with the components' rules in :mod:`.validation`)."""

# Global Datastore: these node families, size large or above, nothing burstable (aws-infra-facts §2.13).
GLOBAL_DATASTORE_FAMILIES: frozenset[str] = frozenset(
    {"m5", "m6g", "m7g", "r5", "r6g", "r6gd", "r7g", "c7gn"}
)
_SMALLER_THAN_LARGE: frozenset[str] = frozenset({"nano", "micro", "small", "medium"})

# ElastiCache AUTH token: printable, only these specials (aws-infra-facts §2.12).
AUTH_TOKEN_SPECIALS = "!&#$^<>-"
# RDS master password: printable ASCII except / " @ (and space).
MASTER_PASSWORD_SPECIALS = "!#$%&*()_+-=[]{}<>:?"

FIXED_PARAMETERS: frozenset[str] = frozenset({"rds.force_ssl", "shared_preload_libraries"})
"""PostgreSQL parameters the components set and ``PostgresParameters.extra`` cannot override."""

# TLS floor the component keeps whatever ``extra`` says: PostgreSQL's ssl must stay on and the
# minimum protocol at least TLS 1.2 (rds.force_ssl=1 alone does not stop an old protocol).
_SSL_ON = frozenset({"on", "1", "true"})
_TLS_MIN_OK = frozenset({"tlsv1.2", "tlsv1.3"})


def tls_parameter_problem(extra: Mapping[str, str]) -> tuple[str, str, str] | None:
    """The first ``extra`` entry that would weaken TLS, as (name, value, what is allowed), else None.

    Names are compared case-insensitively with surrounding whitespace ignored, so
    ``" RDS.FORCE_SSL"`` is caught like ``rds.force_ssl``."""
    for raw_name, raw_value in sorted(extra.items()):
        name = str(raw_name).strip().lower()
        value = str(raw_value).strip().lower()
        if name in FIXED_PARAMETERS:
            return (
                str(raw_name), str(raw_value),
                f"any parameter except {', '.join(sorted(FIXED_PARAMETERS))}, which the component fixes "
                "(rds.force_ssl=1: TLS is required)",
            )  # fmt: skip
        if name == "ssl" and value not in _SSL_ON:
            return str(raw_name), str(raw_value), "ssl only on/1 (TLS is required)"
        if name == "ssl_min_protocol_version" and value not in _TLS_MIN_OK:
            return str(raw_name), str(raw_value), "ssl_min_protocol_version TLSv1.2 or TLSv1.3"
    return None


_MISSING = dataclasses.MISSING
T = TypeVar("T")


class ConfigError(ValueError):
    """Invalid stack configuration.

    ``key`` is the offending key relative to the namespace (``"backup.retentionDays"``),
    ``value`` the rejected value (never a secret: secret keys are reported as ``[secret]``),
    ``allowed`` a short description of what would be accepted.
    """

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        shown = (
            "<unset>" if value is None else json.dumps(value) if not isinstance(value, str) else repr(value)
        )
        super().__init__(f"invalid config {NAMESPACE}:{key} = {shown}: {allowed}")


class MultipleConfigError(ConfigError):
    """Several invalid keys found in one pass; ``errors`` lists each (the first also fills
    ``key``/``value``/``allowed``, so code written for one :class:`ConfigError` keeps working)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.key, first.value, first.allowed)
        self.errors = errors
        self.args = ("\n".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return str(self.args[0])


def _flatten(errors: list[ConfigError]) -> list[ConfigError]:
    out: list[ConfigError] = []
    for e in errors:
        out.extend(e.errors if isinstance(e, MultipleConfigError) else [e])
    return out


def _key(
    key: str,
    doc: str,
    default: Any = _MISSING,
    *,
    factory: Any = _MISSING,
    env: Mapping[str, Any] | None = None,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    """A dataclass field that documents its config key, default and constraints."""
    meta = {"key": key, "doc": doc, "env": env, "choices": choices, "min": minimum, "max": maximum}
    if factory is not _MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


_LOG_RETENTION_CHOICES = _validation.LOG_RETENTION_DAYS

Environment = Literal["prod", "staging"]
EngineMode = Literal["rds", "aurora"]
StorageType = Literal["gp3", "io2"]


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True, kw_only=True)
class ExistingVpc:
    """An existing VPC and its private subnets in one region."""

    vpc_id: str = _key("vpcId", "ID of an existing VPC (vpc-...).")
    private_subnet_ids: tuple[str, ...] = _key(
        "privateSubnetIds", "At least 2 private subnets in different AZs (subnet-...)."
    )


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """Where the tier lives: existing VPCs per region, or VPCs this program creates."""

    existing_vpcs: Mapping[str, ExistingVpc] = _key(
        "existingVpcs",
        "Region -> {vpcId, privateSubnetIds}. Regions listed use that VPC; other regions get a new "
        "VPC with private subnets only (no internet gateway).",
        factory=dict,
    )
    cidr_blocks: Mapping[str, str] = _key(
        "cidrBlocks",
        "Region -> CIDR for created VPCs. Unlisted regions get 10.(40+i).0.0/16 in stack region order, "
        "so VPCs never overlap (peering stays possible).",
        factory=dict,
    )
    az_count: int = _key(
        "azCount", "Availability zones (one private subnet each) in created VPCs.", 3, minimum=2, maximum=6
    )
    interface_endpoints: bool | None = _key(
        "interfaceEndpoints",
        "Create Secrets Manager + KMS interface endpoints (private DNS) so the rotation Lambda reaches "
        "them from private subnets. Default: on for created VPCs, off for existing ones: private DNS "
        "changes name resolution for every workload of a shared VPC, and creation fails where the VPC "
        "already has such endpoints. When on, appSecurityGroupIds of the region are admitted too.",
        None,
    )
    app_security_group_ids: Mapping[str, tuple[str, ...]] = _key(
        "appSecurityGroupIds",
        "Region -> application security groups allowed into RDS Proxy and Redis (never CIDRs).",
        factory=dict,
    )


@dataclass(frozen=True, kw_only=True)
class PostgresParameters:
    """Tuned PostgreSQL parameters (the parameter group is built from these)."""

    log_min_duration_statement_ms: int = _key(
        "logMinDurationStatementMs", "Log statements slower than this (ms); -1 disables.", 500, minimum=-1
    )
    work_mem_kb: int = _key(
        "workMemKb", "work_mem per sort/hash node (kB).", 16384, minimum=64, maximum=2097151
    )
    maintenance_work_mem_kb: int = _key(
        "maintenanceWorkMemKb", "maintenance_work_mem (kB).", 524288, minimum=1024, maximum=2147483647
    )
    wal_buffers_pages: int = _key(
        "walBuffersPages",
        "wal_buffers in 8 kB pages (static: applied at reboot).",
        2048,
        minimum=8,
        maximum=262143,
    )
    max_connections: int | None = _key(
        "maxConnections",
        "max_connections (static). Default: unset, i.e. AWS's LEAST(DBInstanceClassMemory/9531392, 5000). "
        "Replicas get the same group, as hot standbys need >= the primary's value.",
        None,
        minimum=6,
        maximum=262143,
    )
    random_page_cost: float = _key("randomPageCost", "random_page_cost (SSD storage).", 1.1, minimum=0.0)
    idle_in_transaction_timeout_ms: int = _key(
        "idleInTransactionSessionTimeoutMs",
        "idle_in_transaction_session_timeout (ms); 0 disables.",
        60000,
        minimum=0,
    )
    extra: Mapping[str, str] = _key(
        "extra",
        "Further parameters, name -> value, applied with apply_method pending-reboot. Cannot override "
        "rds.force_ssl or shared_preload_libraries.",
        factory=dict,
    )

    def __post_init__(self) -> None:
        # Enforced here, not only by the stack config: a reusing team building PostgresParameters
        # directly must not be able to turn TLS off (issue 14).
        problem = tls_parameter_problem(self.extra)
        if problem is not None:
            name, value, allowed = problem
            raise ValueError(f"extra[{name!r}] = {value!r} is invalid; allowed: {allowed}")


@dataclass(frozen=True, kw_only=True)
class AuroraConfig:
    """Aurora PostgreSQL variant (postgres.engineMode = aurora)."""

    readers: int = _key("readers", "Reader instances besides the writer.", 1, minimum=0, maximum=15)
    instance_class: str = _key(
        "instanceClass", "Writer/reader class; db.serverless uses Serverless v2 scaling.", "db.serverless"
    )
    min_capacity_acu: float = _key(
        "minCapacityAcu",
        "Serverless v2 minimum ACUs (2 GiB each). It must hold postgres.parameters.maxConnections "
        "(AWS's per-connection memory, 9531392 bytes each) and, with a Global Database, keep secondaries "
        "able to apply the primary's writes and take over at full size.",
        0.5, minimum=0.0, maximum=256.0, env={"prod": 10.0, "staging": 0.5},
    )  # fmt: skip
    max_capacity_acu: float = _key(
        "maxCapacityAcu", "Serverless v2 maximum ACUs.", 16.0, minimum=1.0, maximum=256.0
    )


@dataclass(frozen=True, kw_only=True)
class PostgresConfig:
    """The PostgreSQL tier: primary, replicas, storage, credentials, monitoring."""

    engine_mode: EngineMode = _key(
        "engineMode", "rds: RDS PostgreSQL instances; aurora: Aurora PostgreSQL cluster (PoC).", "rds",
        choices=("rds", "aurora"),
    )  # fmt: skip
    engine_version: str = _key(
        "engineVersion",
        "PostgreSQL major version, 16 or 17 (family postgres16/17 derived); AWS picks and upgrades the "
        "minor. A major.minor (16.6) only with autoMinorVersionUpgrade false: after AWS upgrades the "
        "minor, the next `up` would try a downgrade.",
        "16",
    )
    engine_lifecycle_support: Literal[
        "open-source-rds-extended-support-disabled", "open-source-rds-extended-support"
    ] = _key(
        "engineLifecycleSupport",
        "RDS Extended Support (paid) after the major version's standard support ends: "
        "open-source-rds-extended-support-disabled (RDS upgrades the major then) or "
        "open-source-rds-extended-support. Stated because AWS's own default is enabled.",
        "open-source-rds-extended-support-disabled",
        choices=("open-source-rds-extended-support-disabled", "open-source-rds-extended-support"),
    )
    instance_class: str = _key("instanceClass", "Primary instance class.", "db.r7g.large")
    replica_instance_class: str | None = _key(
        "replicaInstanceClass", "Read replica class. Default: same as instanceClass.", None
    )
    in_region_replicas: int = _key(
        "inRegionReplicas", "Read replicas in the primary region.", 1, minimum=0, maximum=5
    )
    cross_region_replicas: int = _key(
        "crossRegionReplicas",
        "Read replicas in each replica region (rds), or reader instances of the Aurora Global Database "
        "secondary cluster there (aurora).",
        1,
        minimum=0,
        maximum=5,
    )
    multi_az: bool = _key(
        "multiAz", "Multi-AZ primary (standby in another AZ). Required in prod.", True,
        env={"prod": True, "staging": False},
    )  # fmt: skip
    storage_type: StorageType = _key(
        "storageType", "gp3 or io2 (Provisioned IOPS).", "gp3", choices=("gp3", "io2")
    )
    allocated_storage_gib: int = _key(
        "allocatedStorageGib", "Initial storage (GiB); io2 needs >= 100.", 100, minimum=20, maximum=65536
    )
    max_allocated_storage_gib: int = _key(
        "maxAllocatedStorageGib", "Storage autoscaling ceiling (GiB); 0 disables autoscaling.", 1000,
        minimum=0, maximum=65536,
    )  # fmt: skip
    iops: int | None = _key(
        "iops",
        "Provisioned IOPS. gp3 < 400 GiB: leave unset (fixed 3000). gp3 >= 400 GiB: 12000-64000 (default "
        "12000). io2: required, 1000-256000 and at most 1000 IOPS per GiB.",
        None,
    )
    storage_throughput_mibps: int | None = _key(
        "storageThroughputMibps",
        "gp3 >= 400 GiB only: 500-4000 MiBps (default 500), and throughput/IOPS <= 0.25. Not for io2.",
        None,
    )
    replica_storage_type: StorageType = _key(
        "replicaStorageType",
        "Storage type of the read replicas (in-region and cross-region): storage is set per role, so "
        "io2 on the primary does not put provisioned IOPS on every replica.",
        "gp3",
        choices=("gp3", "io2"),
    )
    replica_iops: int | None = _key(
        "replicaIops", "Provisioned IOPS of the replicas (rules as for iops). Default: gp3 baseline.", None
    )
    replica_storage_throughput_mibps: int | None = _key(
        "replicaStorageThroughputMibps",
        "gp3 throughput of the replicas (rules as for storageThroughputMibps). Default: gp3 baseline.",
        None,
    )
    db_name: str = _key("dbName", "Initial database name.", "commerce")
    master_username: str = _key("masterUsername", "Master user name.", "commerce_admin")
    port: int = _key("port", "Listener port.", 5432, minimum=1150, maximum=65535)
    manage_master_user_password: bool = _key(
        "manageMasterUserPassword",
        "Let RDS manage the master password in Secrets Manager. AWS refuses read replicas of such a "
        "source, so only allowed without replicas; the default generates a password into our own secret.",
        False,
    )
    password_rotation_days: int = _key(
        "passwordRotationDays", "Secrets Manager rotation schedule for the master secret.", 30,
        minimum=1, maximum=1000,
    )  # fmt: skip
    rotation_lambda_arn: str | None = _key(
        "rotationLambdaArn",
        "Existing rotation Lambda (single-user PostgreSQL). Default: deploy AWS's "
        "SecretsManagerRDSPostgreSQLRotationSingleUser from the Serverless Application Repository.",
        None,
    )
    publicly_accessible: bool = _key(
        "publiclyAccessible",
        "Give the primary and its in-region replicas a public address. Never wanted: the database "
        "tier lives in private subnets behind the proxy; the mandatory policy no-public-database "
        "rejects true.",
        False,
    )
    deletion_protection: bool = _key(
        "deletionProtection", "Deletion protection + final snapshot. Required in prod.", True,
        env={"prod": True, "staging": False},
    )  # fmt: skip
    backup_window: str = _key(
        "backupWindow", "Daily automated-backup window (UTC, hh:mm-hh:mm).", "03:00-04:00"
    )
    maintenance_window: str = _key(
        "maintenanceWindow", "Weekly maintenance window (UTC, ddd:hh:mm-ddd:hh:mm).", "sun:04:30-sun:05:30"
    )
    auto_minor_version_upgrade: bool = _key(
        "autoMinorVersionUpgrade", "Apply minor versions in the window.", True
    )
    performance_insights_retention_days: int = _key(
        "performanceInsightsRetentionDays", "7, month * 31 (31-713) or 731; advanced mode needs >= 465.",
        7,
        env={"prod": 465, "staging": 7},
    )  # fmt: skip
    database_insights_mode: Literal["standard", "advanced"] = _key(
        "databaseInsightsMode", "CloudWatch Database Insights mode.", "standard",
        choices=("standard", "advanced"), env={"prod": "advanced", "staging": "standard"},
    )  # fmt: skip
    monitoring_interval_seconds: int = _key(
        "monitoringIntervalSeconds", "Enhanced monitoring interval (0 disables).", 60,
        choices=(0, 1, 5, 10, 15, 30, 60),
    )  # fmt: skip
    iam_auth: bool = _key("iamAuth", "IAM database authentication (grant_connect).", True)
    parameters: PostgresParameters = _key(
        "parameters", "Tuned parameters, see postgres.parameters.*.", factory=PostgresParameters
    )
    aurora: AuroraConfig = _key(
        "aurora", "Aurora variant settings, see postgres.aurora.*.", factory=AuroraConfig
    )

    @property
    def major_version(self) -> int:
        """Major version from ``engine_version`` (``"16.6"`` -> 16)."""
        return int(self.engine_version.split(".")[0])

    @property
    def family(self) -> str:
        """Parameter-group family: ``postgres16``/``postgres17`` (``aurora-postgresql16/17`` for Aurora)."""
        prefix = "aurora-postgresql" if self.engine_mode == "aurora" else "postgres"
        return f"{prefix}{self.major_version}"

    @property
    def effective_replica_class(self) -> str:
        """Replica instance class (defaults to the primary's)."""
        return self.replica_instance_class or self.instance_class


@dataclass(frozen=True, kw_only=True)
class ProxyConfig:
    """RDS Proxy in front of the writer."""

    enabled: bool = _key("enabled", "Create the RDS Proxy (writer endpoint for apps).", True)
    iam_auth: Literal["REQUIRED", "DISABLED"] = _key(
        "iamAuth", "Client IAM auth to the proxy (ENABLED is SQL Server only).", "DISABLED",
        choices=("REQUIRED", "DISABLED"),
    )  # fmt: skip
    default_auth_scheme: Literal["NONE", "IAM_AUTH"] = _key(
        "defaultAuthScheme", "IAM_AUTH: end-to-end IAM (no secret lookup); NONE: Secrets Manager auth.",
        "NONE",
        choices=("NONE", "IAM_AUTH"),
    )  # fmt: skip
    max_connections_percent: int = _key(
        "maxConnectionsPercent", "Share of max_connections the proxy may use.", 90, minimum=1, maximum=100
    )
    max_idle_connections_percent: int = _key(
        "maxIdleConnectionsPercent",
        "Idle connections kept (<= maxConnectionsPercent).",
        50,
        minimum=0,
        maximum=100,
    )
    connection_borrow_timeout_seconds: int = _key(
        "connectionBorrowTimeoutSeconds", "Wait for a free pooled connection before erroring.", 120,
        minimum=0, maximum=3600,
    )  # fmt: skip
    idle_client_timeout_seconds: int = _key(
        "idleClientTimeoutSeconds", "Close idle client connections after.", 1800, minimum=1, maximum=28800
    )
    debug_logging: bool = _key("debugLogging", "Log SQL text (debug only).", False)


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    """ElastiCache (Redis OSS / Valkey) replication group, optionally a Global Datastore."""

    enabled: bool = _key("enabled", "Create the cache layer.", True)
    engine: Literal["redis", "valkey"] = _key("engine", "Cache engine.", "redis", choices=("redis", "valkey"))
    engine_version: str = _key(
        "engineVersion", "Engine version (Global Datastore needs Redis >= 5.0.6).", "7.1"
    )
    node_type: str = _key(
        "nodeType",
        "Node type. Global Datastore: M5/M6g/M7g/R5/R6g/R6gd/R7g/C7gn, large or above.",
        "cache.r7g.large",
    )
    num_cache_clusters: int = _key(
        "numCacheClusters", "Nodes (primary + replicas); >= 2 for Multi-AZ failover.", 2, minimum=2, maximum=6
    )
    global_datastore: bool = _key(
        "globalDatastore", "Global Datastore: primary here, secondaries in replica regions (<= 2).", False,
        env={"prod": True, "staging": False},
    )  # fmt: skip
    snapshot_retention_days: int = _key(
        "snapshotRetentionDays", "Daily snapshot retention (0 disables).", 7, minimum=0, maximum=35
    )
    snapshot_window: str = _key(
        "snapshotWindow", "Daily snapshot window (UTC, hh:mm-hh:mm, >= 60 min, not overlapping maintenance).",
        "03:00-04:00",
    )  # fmt: skip
    maintenance_window: str = _key(
        "maintenanceWindow", "Weekly maintenance window (UTC, ddd:hh:mm-ddd:hh:mm).", "sun:05:00-sun:06:00"
    )
    auth_token_length: int = _key(
        "authTokenLength", "Generated AUTH token length (TLS is always on).", 64, minimum=16, maximum=128
    )
    auth_token_update_strategy: Literal["ROTATE", "SET", "DELETE"] = _key(
        "authTokenUpdateStrategy", "How a changed token is applied (ROTATE keeps the old one valid).",
        "ROTATE", choices=("ROTATE", "SET", "DELETE"),
    )  # fmt: skip
    port: int = _key("port", "Redis port.", 6379, minimum=1024, maximum=65535)
    maxmemory_policy: str = _key(
        "maxmemoryPolicy",
        "Eviction policy (volatile-lru spares TTL-less queues and counters).",
        "volatile-lru",
    )
    parameters: Mapping[str, str] = _key(
        "parameters", "Further parameter group settings, name -> value.", factory=dict
    )
    log_retention_days: int = _key(
        "logRetentionDays", "Retention of the slow-log / engine-log groups.", 30,
        choices=_LOG_RETENTION_CHOICES, env={"prod": 90, "staging": 14},
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ObservabilityConfig:
    """SNS alarm topic, CloudWatch alarms, dashboard, log retention."""

    alarm_emails: tuple[str, ...] = _key(
        "alarmEmails", "E-mail subscriptions to the alarm topic.", factory=tuple
    )
    log_retention_days: int = _key(
        "logRetentionDays", "Retention of exported PostgreSQL logs in CloudWatch Logs.", 30,
        choices=_LOG_RETENTION_CHOICES,
        env={"prod": 365, "staging": 14},
    )  # fmt: skip
    thresholds: Mapping[str, float] = _key(
        "thresholds",
        "Alarm threshold overrides, name -> number (names as in ObservabilityLayer's AlarmThresholds).",
        factory=dict,
    )
    dashboard: bool = _key("dashboard", "Create the CloudWatch dashboard.", True)


@dataclass(frozen=True, kw_only=True)
class BackupConfig:
    """AWS Backup plan for the primary, copied to the DR region."""

    retention_days: int = _key(
        "retentionDays",
        "Daily backup retention in days, also the RDS automated-backup retention (continuous backups keep "
        "at most 35).",
        35,
        minimum=1,
        maximum=35,
        env={"prod": 35, "staging": 7},
    )
    schedule: str = _key("schedule", "Backup rule schedule (AWS cron).", "cron(0 5 ? * * *)")
    start_window_minutes: int = _key("startWindowMinutes", "Start window.", 60, minimum=60, maximum=720)
    completion_window_minutes: int = _key(
        "completionWindowMinutes", "Completion window.", 360, minimum=120, maximum=10080
    )
    continuous: bool = _key("continuous", "Continuous backup (point-in-time restore) in the rule.", True)
    copy_to_dr: bool = _key("copyToDr", "Copy each recovery point to the vault in drRegion.", True)
    automated_backups_replication: bool = _key(
        "automatedBackupsReplication",
        "RDS mode: replicate the writer's automated backups (snapshots + transaction logs) to drRegion, "
        "so point-in-time restore works there (AWS Backup copies are snapshots only).",
        True,
    )
    vault_lock: bool = _key(
        "vaultLock", "Lock every region's backup vault (minimum retention = retentionDays).", True,
        env={"prod": True, "staging": False},
    )  # fmt: skip
    vault_lock_changeable_for_days: int = _key(
        "vaultLockChangeableForDays",
        "Days the lock can still be removed; after that it is in compliance mode (nobody, root included, "
        "deletes a recovery point early). 0 = governance mode (removable with the right IAM permission).",
        3, minimum=0, maximum=36500, env={"prod": 3, "staging": 0},
    )  # fmt: skip
    restore_testing: bool = _key(
        "restoreTesting",
        "AWS Backup restore testing: restore the latest recovery point weekly, delete it after validation.",
        True,
    )
    restore_testing_schedule: str = _key(
        "restoreTestingSchedule", "Restore-testing schedule (AWS cron, UTC).", "cron(0 6 ? * SUN *)"
    )


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """CloudTrail + audit bucket (PostgreSQL logs are delivered there too)."""

    enabled: bool = _key("enabled", "Create the CloudTrail trail and audit bucket.", True)
    trail: Literal["none", "first", "additional"] = _key(
        "trail",
        "The multi-region trail, a stated and priced choice: none (the organisation's trail already "
        "records this account; bucket only), first (this trail is the account's first copy of "
        "management events: free) or additional (a paid second copy, $2.00 per 100,000 events).",
        "additional",
        choices=("none", "first", "additional"),
    )
    glacier_after_days: int = _key(
        "glacierAfterDays", "Move audit objects to Glacier after.", 90, minimum=1, maximum=3650
    )
    expire_after_days: int = _key(
        "expireAfterDays", "Delete audit objects after (must exceed glacierAfterDays).", 2557,
        minimum=2, maximum=36500, env={"prod": 2557, "staging": 365},
    )  # fmt: skip
    ship_postgres_logs: bool = _key(
        "shipPostgresLogs", "Subscription filter -> Firehose -> audit bucket for PostgreSQL logs.", True
    )


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """The whole stack configuration. Top-level keys are ``commerce-db:<key>``."""

    stack: str = _key("-", "Stack name (from Pulumi, not config).", "dev")
    environment: Environment = _key(
        "environment", "prod or staging; drives the defaults marked per environment. Default: the stack "
        "name when it is prod/staging, else staging.", "staging", choices=("prod", "staging"),
    )  # fmt: skip
    primary_region: str = _key("primaryRegion", "Region of the writer. Default: aws:region.", "us-east-1")
    replica_regions: tuple[str, ...] = _key(
        "replicaRegions", "Regions with cross-region read replicas (and Global Datastore secondaries); <= 2.",
        factory=tuple,
    )  # fmt: skip
    dr_region: str = _key(
        "drRegion", "Region of the backup copy vault, not primaryRegion. Default: the first replica region.",
        "",
    )  # fmt: skip
    home_region: str = _key(
        "homeRegion", "Region whose provider holds the stack-wide resources (IAM roles, Aurora global "
        "cluster, Global Datastore, shared secrets); `failover promote` pins it so a failover never moves "
        "them. Default: primaryRegion.", "",
    )  # fmt: skip
    unreachable_regions: tuple[str, ...] = _key(
        "unreachableRegions", "Regions whose AWS endpoints are down (set by `failover promote` during an "
        "outage): their providers are configured without any AWS call, so a targeted `up` of the other "
        "regions never waits on them. Remove a region once it answers again.",
        factory=tuple,
    )  # fmt: skip
    promoted_from: str = _key(
        "promotedFrom", "Set by `failover promote` (outage and planned) to the old primary region until the "
        "failover is complete: the new writer region's master secret starts from the promoted copy of that "
        "region's master secret (the promoted database keeps its password; read in primaryRegion by its "
        "fixed name) and rotates first on its schedule, every proxy keeps its logins and the promoted cache "
        "its AUTH token, and the stack exports the promoted copies of the application users' and cache AUTH "
        "secrets (what those accept). Remove it after recovery, at the latest passwordRotationDays after the "
        "failover's update (the runbook says when). Default: none.", "",
    )  # fmt: skip
    retiring_logins_from: str = _key(
        "retiringLoginsFrom", "Completing a failover in two updates: set to the old primary region when "
        "promotedFrom is removed, so that every proxy accepts the promoted copies of that region's "
        "application secrets besides the new writer region's own (distinct users: `app_writer` and, after "
        "its first rotation, `app_writer_clone`) while the apps reload the exported ARNs; remove it in the "
        "next update, before the new secrets' second rotation (passwordRotationDays). Default: none.", "",
    )  # fmt: skip
    writer_dns: Literal["arc", "none"] = _key(
        "writerDns", "A writer name that survives a failover: `writer.<stack>.db.internal` in a private "
        "hosted zone of every region's VPC, one weighted record per region (its RDS Proxy) gated by a Route "
        "53 ARC routing control. A failover switches the controls through ARC's data plane (five regional "
        "endpoints), never through Route 53's control plane in us-east-1; the ARC cluster costs about "
        "$2.50/hour. `none`: apps follow writerEndpoint (Aurora: globalWriterEndpoint). Only with "
        "replicaRegions.", "none", env={"prod": "arc", "staging": "none"}, choices=("arc", "none"),
    )  # fmt: skip
    tags: Mapping[str, str] = _key("tags", "Extra tags on every taggable resource.", factory=dict)
    pager_endpoint: str = _key(
        "pagerEndpoint",
        "HTTPS endpoint of the on-call pager, subscribed to every region's page topic (ALARM and OK; "
        "observability.alarmEmails then get the tickets only), e.g. PagerDuty "
        "https://events.pagerduty.com/integration/<key>/enqueue or Opsgenie "
        "https://api.opsgenie.com/v1/json/amazonsns?apiKey=<key>. The URL carries the integration key: "
        "set it with `pulumi config set --secret pagerEndpoint <url>`; a plain value is refused. "
        "Default: none (observability.alarmEmails get the pages too).",
        "",
    )
    protect_resources: bool = _key(
        "protectResources",
        "Pulumi protect + retain_on_delete on what holds or guards data: databases, Aurora clusters, "
        "ElastiCache groups, KMS keys, backup vaults, audit buckets, secrets; ElastiCache also takes a "
        "final snapshot. Required in prod.",
        True,
        env={"prod": True, "staging": False},
    )
    network: NetworkConfig = _key("network", "Network section.", factory=NetworkConfig)
    postgres: PostgresConfig = _key("postgres", "PostgreSQL section.", factory=PostgresConfig)
    proxy: ProxyConfig = _key("proxy", "RDS Proxy section.", factory=ProxyConfig)
    cache: CacheConfig = _key("cache", "ElastiCache section.", factory=CacheConfig)
    observability: ObservabilityConfig = _key(
        "observability", "Alarms and logs section.", factory=ObservabilityConfig
    )
    backup: BackupConfig = _key("backup", "AWS Backup section.", factory=BackupConfig)
    audit: AuditConfig = _key("audit", "Audit section.", factory=AuditConfig)

    @property
    def regions(self) -> tuple[str, ...]:
        """Primary region first, then replica regions, in config order."""
        return (self.primary_region, *self.replica_regions)

    @property
    def is_prod(self) -> bool:
        """True for the prod environment."""
        return self.environment == "prod"

    def base_tags(self) -> dict[str, str]:
        """Tags applied to every taggable resource (user tags win over the defaults)."""
        return {
            "project": NAMESPACE,
            "stack": self.stack,
            "environment": self.environment,
            "managed-by": "pulumi",
            **dict(self.tags),
        }

    def app_security_groups(self, region: str) -> tuple[str, ...]:
        """Application security groups allowed into the proxy and cache in ``region``."""
        return tuple(self.network.app_security_group_ids.get(region, ()))

    def vpc_cidr(self, region: str) -> str:
        """CIDR of the VPC created in ``region`` (configured, or 10.(40+i).0.0/16)."""
        if region in self.network.cidr_blocks:
            return self.network.cidr_blocks[region]
        ordered = (*self.regions, *(() if self.dr_region in self.regions else (self.dr_region,)))
        return f"10.{40 + ordered.index(region)}.0.0/16"


# --------------------------------------------------------------------------- generic parsing


def _describe(tp: Any, article: bool = True) -> str:
    """Human name of a field type for error messages and docs."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _describe(inner[0], article) + " (or unset)"
    if origin is tuple:
        return ("a " if article else "") + f"list of {_describe(typing.get_args(tp)[0], False)}"
    if origin in (Mapping, dict):
        return ("an " if article else "") + f"object of {_describe(typing.get_args(tp)[1], False)}"
    if dataclasses.is_dataclass(tp):
        return "an object with keys " + ", ".join(f.metadata["key"] for f in dataclasses.fields(tp))
    names = {str: ("a ", "string"), int: ("an ", "integer"), float: ("a ", "number"), bool: ("", "boolean")}
    art, name = names.get(tp, ("", str(tp)))
    return (art if article else "") + name


def _coerce(tp: Any, value: Any, key: str, env: str) -> Any:
    """Convert a raw config value to ``tp`` or raise :class:`ConfigError`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner[0], value, key, env)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(key, value, "must be one of " + ", ".join(repr(a) for a in allowed))
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(key, value, "must be true or false")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(key, value, "must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise ConfigError(key, value, "must be an integer")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(key, value, "must be a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(key, value, "must be a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, value, "must be a string")
    if origin is tuple:
        value = _maybe_json(value)
        if not isinstance(value, list):
            raise ConfigError(key, value, f"must be {_describe(tp)}")
        item_tp = typing.get_args(tp)[0]
        return tuple(_coerce(item_tp, v, f"{key}[{i}]", env) for i, v in enumerate(value))
    if origin is not None and issubclass(origin, Mapping):
        value = _maybe_json(value)
        if not isinstance(value, Mapping):
            raise ConfigError(key, value, f"must be {_describe(tp)}")
        val_tp = typing.get_args(tp)[1]
        out: dict[str, Any] = {}
        for k, v in value.items():
            if val_tp is str and isinstance(v, int | float | bool) and not isinstance(v, bool):
                v = str(v)  # parameter values like 1.1 or 300 are fine as numbers in YAML
            out[str(k)] = _coerce(val_tp, v, f"{key}.{k}", env)
        return types.MappingProxyType(out)
    if dataclasses.is_dataclass(tp):
        return _parse_section(typing.cast(type, tp), _maybe_json(value), key, env)
    raise TypeError(f"unsupported config field type {tp!r} for {key}")  # programming error


def _maybe_json(value: Any) -> Any:
    """Structured values may arrive JSON-encoded (top-level keys are strings on the wire)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _check_bounds(f: dataclasses.Field[Any], value: Any, key: str) -> None:
    """Apply the ``choices``/``min``/``max`` metadata of a field."""
    if value is None:
        return
    choices, lo, hi = f.metadata.get("choices"), f.metadata.get("min"), f.metadata.get("max")
    if choices is not None and value not in choices:
        raise ConfigError(key, value, "must be one of " + ", ".join(str(c) for c in choices))
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        kind = "an integer" if isinstance(value, int) else "a number"
        bounds = (
            f"from {lo:g} to {hi:g}"
            if lo is not None and hi is not None
            else (f">= {lo:g}" if lo is not None else f"<= {hi:g}")
        )
        raise ConfigError(key, value, f"must be {kind} {bounds}")


def _field_default(f: dataclasses.Field[Any], env: str) -> Any:
    env_defaults = f.metadata.get("env")
    if env_defaults and env in env_defaults:
        return env_defaults[env]
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:
        value = f.default_factory()
        return types.MappingProxyType(value) if isinstance(value, dict) else value
    return _MISSING


def _parse_section(cls: type[T], raw: Any, path: str, env: str) -> T:
    """Parse one object section into dataclass ``cls``; unknown keys are errors."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, f"must be {_describe(cls)}")
    fields_ = dataclasses.fields(typing.cast(Any, cls))
    known = {f.metadata["key"]: f for f in fields_}
    # Every problem of the section is collected and reported at once (MultipleConfigError), not the first.
    errors: list[ConfigError] = []
    names = sorted(k for k in known if k != "-")
    for bad in sorted(set(raw) - set(known)):
        close = difflib.get_close_matches(str(bad), names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        errors.append(
            ConfigError(
                f"{path}.{bad}" if path else bad,
                raw[bad],
                f"unknown key; {hint}known keys here: " + ", ".join(names),
            )
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields_:
        key = f.metadata["key"]
        full = f"{path}.{key}" if path else key
        try:
            if key in raw and raw[key] is not None:
                value = _coerce(hints[f.name], raw[key], full, env)
            elif dataclasses.is_dataclass(hints[f.name]):
                value = _parse_section(hints[f.name], {}, full, env)  # absent section: environment defaults
            else:
                value = _field_default(f, env)
                if value is _MISSING:
                    raise ConfigError(full, None, f"is required ({_describe(hints[f.name])})")
            _check_bounds(f, value, full)
        except ConfigError as exc:
            errors.append(exc)
            continue
        kwargs[f.name] = value
    if cls is PostgresParameters:
        for name, value in dict(kwargs.get("extra") or {}).items():
            if name.lower() in FIXED_PARAMETERS:
                raise ConfigError(f"{path}.extra.{name}", value, "is fixed by the component")
    if errors:
        flat = _flatten(errors)
        raise flat[0] if len(flat) == 1 else MultipleConfigError(flat)
    return cls(**kwargs)


# --------------------------------------------------------------------------- cross-field rules


def _check_region(key: str, region: str) -> None:
    try:
        _validation.check_region("region", region)
    except _validation.ArgumentError as exc:
        raise ConfigError(key, region, exc.allowed) from None


def gp3_performance(pg: PostgresConfig) -> tuple[int | None, int | None]:
    """(iops, throughput) to pass to RDS for ``pg``'s primary; ``None`` where AWS fixes the value."""
    from .postgres_cluster import storage_performance

    return storage_performance(
        pg.storage_type, pg.allocated_storage_gib, pg.iops, pg.storage_throughput_mibps
    )


_CACHE_LAYER_SETTINGS: dict[str, str] = {
    "engine": "engine",
    "engine_version": "engine_version",
    "node_type": "node_type",
    "num_cache_clusters": "num_cache_clusters",
    "port": "port",
    "maxmemory_policy": "maxmemory_policy",
    "snapshot_retention_limit": "snapshot_retention_days",
    "snapshot_window": "snapshot_window",
    "maintenance_window": "maintenance_window",
    "auth_token_length": "auth_token_length",
    "auth_token_update_strategy": "auth_token_update_strategy",
    "log_retention_days": "log_retention_days",
}
"""CacheLayerArgs field -> the CacheConfig attribute it is taken from unchanged."""


def cache_layer_settings(c: CacheConfig) -> dict[str, Any]:
    """The CacheLayerArgs keyword arguments that come straight from the cache config (no wiring)."""
    settings = {arg: getattr(c, attr) for arg, attr in _CACHE_LAYER_SETTINGS.items()}
    settings["extra_parameters"] = dict(c.parameters)
    return settings


def _cache_layer_config_keys(c: CacheConfig) -> dict[str, tuple[str, Any]]:
    """CacheLayerArgs field -> (config key, configured value), to name the key in an error."""
    keys = {f.name: f.metadata["key"] for f in dataclasses.fields(CacheConfig)}
    return {arg: (f"cache.{keys[attr]}", getattr(c, attr)) for arg, attr in _CACHE_LAYER_SETTINGS.items()}


def is_global_datastore_node_type(node_type: str) -> bool:
    """True if ``node_type`` may join a Global Datastore (family listed, size large or above)."""
    parts = node_type.split(".")
    if len(parts) != 3 or parts[0] != "cache":
        return False
    family, size = parts[1], parts[2]
    return family in GLOBAL_DATASTORE_FAMILIES and size not in _SMALLER_THAN_LARGE


_PG_ARG_KEYS: dict[str, str] = {
    "region": "primaryRegion",
    "backup_retention_days": "backup.retentionDays",
    "lambda_log_retention_days": "observability.logRetentionDays",
    "aurora_readers": "postgres.aurora.readers",
    "aurora_instance_class": "postgres.aurora.instanceClass",
    "aurora_min_capacity_acu": "postgres.aurora.minCapacityAcu",
    "aurora_max_capacity_acu": "postgres.aurora.maxCapacityAcu",
    "replica_allocated_storage_gib": "postgres.allocatedStorageGib",
    "parameters.max_connections": "postgres.parameters.maxConnections",
    "replica_max_allocated_storage_gib": "postgres.maxAllocatedStorageGib",
}
"""PostgresClusterArgs field -> config key, where the names differ (the rest is ``postgres.<key>``)."""


def postgres_cluster_settings(cfg: StackConfig) -> dict[str, Any]:
    """The PostgresClusterArgs keyword arguments that come straight from the stack config."""
    pg = cfg.postgres
    return {
        "region": cfg.primary_region,
        "engine_mode": pg.engine_mode,
        "engine_version": pg.engine_version,
        "engine_lifecycle_support": pg.engine_lifecycle_support,
        "instance_class": pg.instance_class,
        "replica_instance_class": pg.replica_instance_class,
        "in_region_replicas": pg.in_region_replicas,
        "multi_az": pg.multi_az,
        "storage_type": pg.storage_type,
        "allocated_storage_gib": pg.allocated_storage_gib,
        "max_allocated_storage_gib": pg.max_allocated_storage_gib,
        "iops": pg.iops,
        "storage_throughput_mibps": pg.storage_throughput_mibps,
        "replica_storage_type": pg.replica_storage_type,
        "replica_iops": pg.replica_iops,
        "replica_storage_throughput_mibps": pg.replica_storage_throughput_mibps,
        "db_name": pg.db_name,
        "master_username": pg.master_username,
        "port": pg.port,
        "manage_master_user_password": pg.manage_master_user_password,
        "password_rotation_days": pg.password_rotation_days,
        "publicly_accessible": pg.publicly_accessible,
        "deletion_protection": pg.deletion_protection,
        "backup_retention_days": cfg.backup.retention_days,
        "backup_window": pg.backup_window,
        "maintenance_window": pg.maintenance_window,
        "auto_minor_version_upgrade": pg.auto_minor_version_upgrade,
        "performance_insights_retention_days": pg.performance_insights_retention_days,
        "database_insights_mode": pg.database_insights_mode,
        "monitoring_interval_seconds": pg.monitoring_interval_seconds,
        "iam_auth": pg.iam_auth,
        "parameters": pg.parameters,
        "aurora_readers": pg.aurora.readers,
        "aurora_instance_class": pg.aurora.instance_class,
        "aurora_min_capacity_acu": pg.aurora.min_capacity_acu,
        "aurora_max_capacity_acu": pg.aurora.max_capacity_acu,
        "lambda_log_retention_days": cfg.observability.log_retention_days,
    }


def _check_postgres_args(cfg: StackConfig) -> None:
    """Build PostgresClusterArgs from the config (placeholder wiring) so that its own rules run,
    and report a violation under the config key it came from."""
    from .postgres_cluster import PostgresClusterArgs

    settings = postgres_cluster_settings(cfg)
    keys = {f.name: f"postgres.{f.metadata['key']}" for f in dataclasses.fields(PostgresConfig)}
    keys.update(_PG_ARG_KEYS)
    try:
        PostgresClusterArgs(
            vpc_id="vpc-placeholder", subnet_ids=[], kms_key_arn="arn:placeholder", **settings
        )
    except ValueError as exc:
        field_name = getattr(exc, "field", None) or str(exc).split(" ", 1)[0]
        key = keys.get(field_name, "postgres")
        value = settings[field_name] if field_name in settings else getattr(exc, "value", None)
        if field_name == "replica_instance_class" and cfg.postgres.replica_instance_class is None:
            key, value = "postgres.instanceClass", cfg.postgres.instance_class  # the replicas inherit it
        raise ConfigError(key, value, str(exc)) from None


def _check_postgres(cfg: StackConfig) -> None:
    pg = cfg.postgres
    cross = pg.cross_region_replicas * len(cfg.replica_regions)
    replicas = (pg.in_region_replicas if pg.engine_mode == "rds" else 0) + cross
    if pg.manage_master_user_password and replicas:
        raise ConfigError(
            "postgres.manageMasterUserPassword", True,
            "AWS refuses read replicas of a source whose master password Secrets Manager manages "
            f"({replicas} replicas configured; for Aurora this program also keeps its own secret when a "
            "Global Database spans regions); leave it false (our own rotated secret) or configure no "
            "replicas",
        )  # fmt: skip
    if pg.cross_region_replicas * len(cfg.replica_regions) > 5:
        raise ConfigError(
            "postgres.crossRegionReplicas", pg.cross_region_replicas,
            "AWS guarantees at most 5 cross-region replicas per source",
        )  # fmt: skip
    # Every AWS rule of the database itself (engine version, classes, storage, names, windows,
    # Performance Insights, ...) is PostgresClusterArgs' own: build it and report under the key.
    _check_postgres_args(cfg)
    if pg.engine_mode == "aurora" and pg.aurora.instance_class == "db.serverless":
        _check_aurora_capacity(cfg)
    tls_problem = tls_parameter_problem(pg.parameters.extra)
    if tls_problem is not None:
        name, value, allowed = tls_problem
        raise ConfigError(f"postgres.parameters.extra.{name}", value, f"allowed: {allowed}")
    if cfg.is_prod:
        if not cfg.protect_resources:
            raise ConfigError("protectResources", False, "must be true in prod")
        if not pg.deletion_protection:
            raise ConfigError("postgres.deletionProtection", False, "must be true in prod")
        if not pg.multi_az:
            raise ConfigError("postgres.multiAz", False, "must be true in prod")


def _check_catalogue(cfg: StackConfig) -> None:
    """Classes, node types and engine versions against the dated AWS catalogue, per region, and the
    per-class limits AWS documents (components/catalogue.py names its sources)."""
    from . import catalogue as cat

    def check(key: str, value: Any, fn: Any, **kwargs: Any) -> None:
        try:
            fn(**kwargs)
        except ValueError as exc:
            raise ConfigError(key, value, str(exc)) from None

    pg = cfg.postgres
    aurora = pg.engine_mode == "aurora"
    engine = "aurora-postgresql" if aurora else "postgres"
    check(
        "postgres.engineVersion", pg.engine_version, cat.check_rds_engine_version,
        version=pg.engine_version, engine=engine,
    )  # fmt: skip
    cross_regions = cfg.replica_regions if pg.cross_region_replicas else ()
    if aurora:
        for region in (cfg.primary_region, *cross_regions):
            check(
                "postgres.aurora.instanceClass", pg.aurora.instance_class, cat.check_rds_instance_class,
                instance_class=pg.aurora.instance_class, engine=engine, region=region, field="instance class",
            )  # fmt: skip
    else:
        replica_key = (
            "postgres.replicaInstanceClass" if pg.replica_instance_class else "postgres.instanceClass"
        )
        placements = [("postgres.instanceClass", pg.instance_class, cfg.primary_region, "")]
        if pg.in_region_replicas:
            placements.append((replica_key, pg.effective_replica_class, cfg.primary_region, "replica"))
        placements += [(replica_key, pg.effective_replica_class, r, "replica") for r in cross_regions]
        # Slot 1 of every replica region is the writer-to-be: the writer's class and storage there.
        placements += [("postgres.instanceClass", pg.instance_class, r, "") for r in cross_regions]
        for key, cls, region, role in placements:
            check(
                key, cls, cat.check_rds_instance_class,
                instance_class=cls, engine=engine, region=region, field="instance class",
            )  # fmt: skip
            check(key, cls, cat.check_class_limits, instance_class=cls, field="instance class")
            prefix = "replica" if role else ""
            stype = pg.replica_storage_type if role else pg.storage_type
            iops = pg.replica_iops if role else pg.iops
            thr = pg.replica_storage_throughput_mibps if role else pg.storage_throughput_mibps
            iops_key = f"postgres.{prefix + 'Iops' if prefix else 'iops'}"
            thr_key = f"postgres.{prefix + 'StorageThroughputMibps' if prefix else 'storageThroughputMibps'}"
            if stype == "io2" or iops is not None:
                check(
                    iops_key, iops, cat.check_class_limits, instance_class=cls, field="instance class",
                    iops=iops, performance_insights=False,
                )  # fmt: skip
            check(
                thr_key, thr, cat.check_class_limits, instance_class=cls, field="instance class",
                throughput_mibps=thr, performance_insights=False,
            )  # fmt: skip
            check(
                "postgres.parameters.maxConnections", pg.parameters.max_connections, cat.check_class_limits,
                instance_class=cls, field="instance class", max_connections=pg.parameters.max_connections,
                performance_insights=False,
            )  # fmt: skip
    c = cfg.cache
    if c.enabled:
        check(
            "cache.engineVersion", c.engine_version, cat.check_cache_engine_version,
            engine=c.engine, version=c.engine_version,
        )  # fmt: skip
        cache_regions = (cfg.primary_region, *(cfg.replica_regions if c.global_datastore else ()))
        for region in cache_regions:
            check(
                "cache.nodeType", c.node_type, cat.check_node_type,
                node_type=c.node_type, region=region, field="node type",
            )  # fmt: skip


def _check_cache(cfg: StackConfig) -> None:
    c = cfg.cache
    if not c.enabled:
        return
    if not re.fullmatch(r"cache\.[a-z0-9]+\.[a-z0-9]+", c.node_type):
        raise ConfigError(
            "cache.nodeType", c.node_type, "must be an ElastiCache node type like cache.r7g.large"
        )
    if c.global_datastore:
        if not is_global_datastore_node_type(c.node_type):
            raise ConfigError(
                "cache.nodeType", c.node_type,
                "Global Datastore needs a non-burstable large+ node of family "
                + "/".join(sorted(GLOBAL_DATASTORE_FAMILIES)) + " (e.g. cache.r7g.large)",
            )  # fmt: skip
        if not cfg.replica_regions:
            raise ConfigError(
                "cache.globalDatastore", True, "needs at least one replica region (replicaRegions)"
            )
        if c.engine == "redis":
            parts = tuple(int(p) for p in re.findall(r"\d+", c.engine_version)[:3])
            if parts < (5, 0, 6):
                raise ConfigError(
                    "cache.engineVersion", c.engine_version, "Global Datastore needs Redis >= 5.0.6"
                )
    # Windows and the other replication-group rules are CacheLayerArgs' (_check_component_rules).


def _validate(cfg: StackConfig) -> None:
    """Cross-field rules; raises the first violation found."""
    _check_region("primaryRegion", cfg.primary_region)
    seen: set[str] = set()
    for i, region in enumerate(cfg.replica_regions):
        _check_region(f"replicaRegions[{i}]", region)
        if region == cfg.primary_region:
            raise ConfigError(f"replicaRegions[{i}]", region, "must differ from primaryRegion")
        if region in seen:
            raise ConfigError(f"replicaRegions[{i}]", region, "is listed twice")
        seen.add(region)
    if len(cfg.replica_regions) > 2:
        raise ConfigError(
            "replicaRegions", list(cfg.replica_regions),
            "at most 2 replica regions (a Global Datastore has at most 2 secondaries; 3 regions in all)",
        )  # fmt: skip
    _check_region("drRegion", cfg.dr_region)
    if cfg.dr_region == cfg.primary_region:
        raise ConfigError(
            "drRegion", cfg.dr_region, "must differ from primaryRegion (backups are copied away)"
        )
    _check_region("homeRegion", cfg.home_region)
    if cfg.retiring_logins_from:
        _check_region("retiringLoginsFrom", cfg.retiring_logins_from)
        if cfg.promoted_from:
            raise ConfigError(
                "retiringLoginsFrom", cfg.retiring_logins_from,
                "only after promotedFrom is removed (the proxies keep the promoted logins until then)",
            )  # fmt: skip
    if cfg.promoted_from:
        _check_region("promotedFrom", cfg.promoted_from)
        if cfg.promoted_from == cfg.primary_region:
            raise ConfigError(
                "promotedFrom", cfg.promoted_from, "must differ from primaryRegion (the region promoted from)"
            )
    for i, region in enumerate(cfg.unreachable_regions):
        _check_region(f"unreachableRegions[{i}]", region)
        if region == cfg.primary_region:
            raise ConfigError(
                f"unreachableRegions[{i}]", region, "must not be primaryRegion (the writer must be reachable)"
            )
    for region in (*cfg.network.existing_vpcs, *cfg.network.cidr_blocks, *cfg.network.app_security_group_ids):
        if region not in KNOWN_REGIONS:
            raise ConfigError(f"network.{region}", region, "section keys must be known AWS regions")
    for region, vpc in cfg.network.existing_vpcs.items():
        key = f"network.existingVpcs.{region}"
        if not vpc.vpc_id.startswith("vpc-"):
            raise ConfigError(f"{key}.vpcId", vpc.vpc_id, "must be a VPC id (vpc-...)")
        if len(vpc.private_subnet_ids) < 2 or not all(
            s.startswith("subnet-") for s in vpc.private_subnet_ids
        ):
            raise ConfigError(
                f"{key}.privateSubnetIds",
                list(vpc.private_subnet_ids),
                "needs >= 2 subnet ids (subnet-...) in 2 AZs",
            )
    for region, cidr in cfg.network.cidr_blocks.items():
        if not re.fullmatch(r"10\.\d{1,3}\.0\.0/16|172\.(1[6-9]|2\d|3[01])\.0\.0/16|192\.168\.0\.0/16", cidr):
            raise ConfigError(f"network.cidrBlocks.{region}", cidr, "must be a private /16 like 10.40.0.0/16")
    for region, sgs in cfg.network.app_security_group_ids.items():
        for i, sg in enumerate(sgs):
            if not sg.startswith("sg-"):
                raise ConfigError(
                    f"network.appSecurityGroupIds.{region}[{i}]", sg, "must be a security group id"
                )
    _check_postgres(cfg)
    p = cfg.proxy
    if p.max_idle_connections_percent > p.max_connections_percent:
        raise ConfigError(
            "proxy.maxIdleConnectionsPercent", p.max_idle_connections_percent,
            f"must be <= proxy.maxConnectionsPercent ({p.max_connections_percent})",
        )  # fmt: skip
    if p.default_auth_scheme == "IAM_AUTH" and not cfg.postgres.iam_auth:
        raise ConfigError("proxy.defaultAuthScheme", "IAM_AUTH", "needs postgres.iamAuth true")
    _check_cache(cfg)
    _check_catalogue(cfg)
    if cfg.audit.expire_after_days <= cfg.audit.glacier_after_days:
        raise ConfigError(
            "audit.expireAfterDays", cfg.audit.expire_after_days,
            f"must exceed audit.glacierAfterDays ({cfg.audit.glacier_after_days})",
        )  # fmt: skip
    for i, email in enumerate(cfg.observability.alarm_emails):
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise ConfigError(f"observability.alarmEmails[{i}]", email, "must be an e-mail address")
    for tag, tag_value in cfg.tags.items():
        if not 1 <= len(tag) <= 128 or tag.lower().startswith("aws:"):
            raise ConfigError(
                f"tags.{tag}", tag_value, "tag keys are 1-128 characters and must not start with aws:"
            )
        if len(tag_value) > 256:
            raise ConfigError(f"tags.{tag}", tag_value, "tag values are at most 256 characters")
    for name, value in cfg.observability.thresholds.items():
        if value < 0:
            raise ConfigError(f"observability.thresholds.{name}", value, "must be >= 0")


AURORA_ACU_BYTES = 2 * 1024**3
"""Memory of one Aurora capacity unit."""
PG_CONNECTION_BYTES = 9531392
"""Memory AWS budgets per PostgreSQL connection (default max_connections = memory / 9531392)."""


def _check_aurora_capacity(cfg: StackConfig) -> None:
    """Serverless v2 floor: the minimum must hold the configured connections, and a Global Database's
    secondaries (which become the writer in a failover) must not idle at a toy size."""
    aurora = cfg.postgres.aurora
    max_connections = cfg.postgres.parameters.max_connections
    if max_connections is not None:
        needed = max_connections * PG_CONNECTION_BYTES / AURORA_ACU_BYTES
        if aurora.min_capacity_acu < needed:
            raise ConfigError(
                "postgres.aurora.minCapacityAcu",
                aurora.min_capacity_acu,
                f"must be >= {math.ceil(needed * 2) / 2:g} to hold postgres.parameters.maxConnections="
                f"{max_connections} (AWS budgets 9531392 bytes per connection, 2 GiB per ACU); lower "
                "maxConnections or raise the minimum",
            )
    if (
        cfg.is_prod
        and cfg.replica_regions
        and cfg.postgres.cross_region_replicas
        and aurora.min_capacity_acu < 2
    ):
        raise ConfigError(
            "postgres.aurora.minCapacityAcu",
            aurora.min_capacity_acu,
            "must be >= 2 in prod with a Global Database: secondaries replay the primary's writes at this "
            "size and are the writer right after a failover",
        )


def _check_component_rules(cfg: StackConfig) -> None:
    """Run the layers' own Args validation on the configured values, reported as ConfigError.

    CacheLayerArgs, AlarmThresholds and AuditTrailArgs validate in ``__post_init__`` (window
    overlaps, Global Datastore node families, threshold ranges...). Building them here with
    placeholder wiring turns their ValueError into an error naming the config key.
    """
    import dataclasses as dc

    from .audit import AuditTrailArgs
    from .cache_layer import CacheLayerArgs, GlobalDatastoreRole
    from .observability_layer import AlarmThresholds

    def surface(exc: Exception, keys: Mapping[str, tuple[str, Any]], fallback: str) -> ConfigError:
        field_name = str(exc).split(" ", 1)[0]
        key, value = keys.get(field_name, (fallback, None))
        return ConfigError(key, value, str(exc))

    c = cfg.cache
    if c.enabled:
        try:
            CacheLayerArgs(
                vpc_id="vpc-placeholder",
                subnet_ids=[],
                kms_key_arn="arn:placeholder",
                global_datastore_role=GlobalDatastoreRole.PRIMARY
                if c.global_datastore
                else GlobalDatastoreRole.NONE,
                **cache_layer_settings(c),
            )
        except ValueError as exc:
            raise surface(exc, _cache_layer_config_keys(c), "cache") from None

    known = {f.name: f.type for f in dc.fields(AlarmThresholds)}
    thresholds: dict[str, Any] = {}
    for name, value in cfg.observability.thresholds.items():
        if name not in known:
            raise ConfigError(
                f"observability.thresholds.{name}",
                value,
                "unknown threshold; known: " + ", ".join(sorted(known)),
            )
        is_int = known[name] in (int, "int")
        if is_int and not float(value).is_integer():
            raise ConfigError(f"observability.thresholds.{name}", value, "must be an integer")
        thresholds[name] = int(value) if is_int else value
    try:
        AlarmThresholds(**thresholds)
    except ValueError as exc:
        keys = {n: (f"observability.thresholds.{n}", v) for n, v in thresholds.items()}
        raise surface(exc, keys, "observability.thresholds") from None

    a = cfg.audit
    if a.enabled:
        try:
            AuditTrailArgs(
                region=cfg.primary_region,
                kms_key_arn="arn:placeholder",
                transition_to_glacier_days=a.glacier_after_days,
                expiration_days=a.expire_after_days,
            )
        except ValueError as exc:
            audit_keys = {
                "transition_to_glacier_days": ("audit.glacierAfterDays", a.glacier_after_days),
                "expiration_days": ("audit.expireAfterDays", a.expire_after_days),
            }
            raise surface(exc, audit_keys, "audit") from None


# --------------------------------------------------------------------------- loading


def _namespace_keys() -> dict[str, Any]:
    """Every ``commerce-db:*`` key the engine handed us (explicit config and PULUMI_CONFIG)."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = {}
    for source in (runtime_config.get_config_env(), runtime_config.CONFIG.get()):
        for full_key, value in source.items():
            if full_key.startswith(f"{NAMESPACE}:"):
                raw[full_key.split(":", 1)[1]] = value
    return raw


def parse_stack_config(
    raw: Mapping[str, Any],
    *,
    stack: str,
    aws_region: str | None = None,
    secret_keys: frozenset[str] = frozenset(),
) -> StackConfig:
    """Parse ``raw`` (key -> value without the namespace) into a validated :class:`StackConfig`.

    Pure function (no Pulumi runtime needed); :func:`load_stack_config` feeds it the engine's config.
    ``secret_keys`` are top-level keys set with ``--secret``: errors under them show ``[secret]``
    instead of the value.
    """
    try:
        cfg = _parse_stack_config(raw, stack=stack, aws_region=aws_region)
        check_pager_endpoint(cfg.pager_endpoint, is_secret="pagerEndpoint" in secret_keys)
        return cfg
    except ConfigError as exc:
        top = re.split(r"[.\[]", exc.key, maxsplit=1)[0]
        if top in secret_keys:
            raise ConfigError(exc.key, "[secret]", exc.allowed) from None
        raise


PAGER_ENDPOINT_EXAMPLES = (
    "PagerDuty https://events.pagerduty.com/integration/<key>/enqueue, "
    "Opsgenie https://api.opsgenie.com/v1/json/amazonsns?apiKey=<key>"
)


def check_pager_endpoint(url: str, *, is_secret: bool) -> None:
    """``pagerEndpoint``: empty, or an https URL with a host that was set as a secret (it carries
    the pager's integration key). Errors never show the value."""
    if not url:
        return
    if not is_secret:
        raise ConfigError(
            "pagerEndpoint", "[not shown]",
            "must be set as a secret (the URL carries the pager's integration key, and a plain value sits "
            "in the stack file and the state in clear text): pulumi config set --secret pagerEndpoint <url>",
        )  # fmt: skip
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
        raise ConfigError(
            "pagerEndpoint",
            "[secret]",
            f"must be an https:// URL with a host, e.g. {PAGER_ENDPOINT_EXAMPLES}",
        )


def _parse_stack_config(raw: Mapping[str, Any], *, stack: str, aws_region: str | None) -> StackConfig:
    # Pulumi.yaml declares "" defaults for the optional scalar keys: empty means unset.
    raw = {k: v for k, v in raw.items() if v != ""}
    if "-" in raw:
        raise ConfigError("-", raw["-"], "unknown key")
    env_raw = raw.get("environment")
    environment = env_raw if env_raw is not None else ("prod" if stack == "prod" else "staging")
    if environment not in ("prod", "staging"):
        raise ConfigError("environment", environment, "must be 'prod' or 'staging'")
    primary = raw.get("primaryRegion") or aws_region
    if not primary:
        raise ConfigError("primaryRegion", None, "is required (or set aws:region)")
    raw["primaryRegion"] = primary
    raw["environment"] = environment
    parsed = _parse_section(StackConfig, raw, "", environment)
    cfg = dataclasses.replace(parsed, stack=stack)
    if not cfg.dr_region:
        if not cfg.replica_regions:
            raise ConfigError(
                "drRegion", "", "is required when replicaRegions is empty (backups need a DR copy)"
            )
        cfg = dataclasses.replace(cfg, dr_region=cfg.replica_regions[0])
    if not cfg.home_region:
        cfg = dataclasses.replace(cfg, home_region=cfg.primary_region)
    _validate(cfg)
    _check_component_rules(cfg)
    return cfg


def load_stack_config(cfg: pulumi.Config | None = None, stack: str | None = None) -> StackConfig:
    """Read and validate the whole ``commerce-db`` namespace once.

    :param cfg: the ``pulumi.Config`` to read; default ``pulumi.Config("commerce-db")``. Only its
        namespace is used: all keys are enumerated so unknown ones can be rejected.
    :param stack: stack name; default ``pulumi.get_stack()``.
    :raises ConfigError: the first invalid key, with its value and what is allowed.
    """
    namespace = cfg.name if cfg is not None else NAMESPACE
    if namespace != NAMESPACE:
        raise ValueError(f"config namespace must be {NAMESPACE!r}, got {namespace!r}")
    from pulumi.runtime import config as runtime_config

    aws_region = pulumi.Config("aws").get("region")
    raw = _namespace_keys()
    secret = frozenset(k for k in raw if runtime_config.is_config_secret(f"{NAMESPACE}:{k}"))
    return parse_stack_config(
        raw, stack=stack or pulumi.get_stack(), aws_region=aws_region, secret_keys=secret
    )


# --------------------------------------------------------------------------- documentation


@dataclass(frozen=True)
class ConfigKeyDoc:
    """One documented config key (a row of the docs table)."""

    key: str
    type: str
    default: str
    meaning: str


def _fmt_default(f: dataclasses.Field[Any]) -> str:
    env_defaults = f.metadata.get("env")
    if env_defaults:
        return ", ".join(f"{env}: {json.dumps(v)}" for env, v in env_defaults.items())
    if f.default is not _MISSING:
        return "unset" if f.default is None else json.dumps(f.default)
    if f.default_factory is not _MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return "(section)"
        return json.dumps(list(value) if isinstance(value, tuple) else dict(value))
    return "required"


def config_reference() -> list[ConfigKeyDoc]:
    """Every config key with type, default and meaning, depth-first.

    Drives the README's configuration reference (a unit test keeps the two in sync).
    """
    rows: list[ConfigKeyDoc] = []

    def walk(cls: Any, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = f.metadata["key"]
            if key == "-":
                continue
            full = f"{prefix}{key}"
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{full}.")
                continue
            args = typing.get_args(tp)
            if args and len(args) == 2 and dataclasses.is_dataclass(args[1]):
                rows.append(ConfigKeyDoc(full, "object of region -> object", "{}", f.metadata["doc"]))
                walk(args[1], f"{full}.<region>.")
                continue
            rows.append(ConfigKeyDoc(full, _describe(tp), _fmt_default(f), f.metadata["doc"]))

    walk(StackConfig, "")
    return rows
