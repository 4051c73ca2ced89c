"""RegionStack: every layer of the tier in one region, behind that region's explicit provider.

The primary region holds the writer: network, CMK, PostgresCluster (primary + in-region replicas,
or the Aurora cluster), BackupPlan (with its DR copy), ProxyLayer, CacheLayer (Global Datastore
primary when on), ObservabilityLayer and AuditTrail (CloudTrail + audit bucket). A replica region
holds network, CMK, the cross-region read replicas of the primary, the cache's Global Datastore
secondary (when on), and observability plus a bucket-only AuditTrail for what lives there.

The caller passes ``opts=ResourceOptions(providers={"aws": provider})``; children inherit it via
``parent``, so nothing here names a region except where AWS needs it in a string.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_aws as aws

from ._alarms import DbCapacity, derive_thresholds
from .audit import AuditTrail, AuditTrailArgs
from .aurora_alarms import AuroraAlarms, AuroraAlarmsArgs
from .backup import BackupPlan, BackupPlanArgs
from .cache_layer import CacheLayer, CacheLayerArgs, GlobalDatastoreRole
from .config import StackConfig, cache_layer_settings, gp3_performance
from .keys import RegionKeys, RegionKeysArgs
from .network import Network, NetworkArgs
from .observability_layer import (
    AlarmSubscription,
    AlarmThresholds,
    ObservabilityLayer,
    ObservabilityLayerArgs,
)
from .postgres_cluster import (
    AURORA_LOG_EXPORTS,
    RDS_LOG_EXPORTS,
    AuroraSecondaryCluster,
    AuroraSecondaryClusterArgs,
    CrossRegionReplicas,
    CrossRegionReplicasArgs,
    PostgresCluster,
    PostgresClusterArgs,
    planned_identifiers,
    planned_replica_identifiers,
)
from .proxy_layer import ProxyLayer, ProxyLayerArgs
from .rds_log_groups import RdsLogGroups, RdsLogGroupsArgs
from .validation import stack_hash

_DIRECTIONS = {
    "north": "n", "south": "s", "east": "e", "west": "w", "central": "c",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}  # fmt: skip


def region_code(region: str) -> str:
    """Short code used in logical names: ``us-east-1`` -> ``use1``, ``ap-southeast-2`` -> ``apse2``."""
    parts = region.split("-")
    return parts[0] + "".join(_DIRECTIONS.get(p, p[:1]) for p in parts[1:-1]) + parts[-1]


@dataclass(frozen=True)
class PrimaryHandles:
    """What replica regions need from the primary region's stack."""

    region: str
    db_source_arn: pulumi.Output[str] | None
    """ARN of the primary DB instance (cross-region replicas' ``replicate_source_db``)."""
    db_secret_arn: pulumi.Output[str | None]
    """Master secret ARN in the primary region (replicated to replica regions)."""
    monitoring_role_arn: pulumi.Output[str | None]
    """Enhanced monitoring role (IAM is global)."""
    cache_global_group_id: pulumi.Output[str | None] | None
    """Global Datastore id (None when off)."""
    cache_auth_secret_arn: pulumi.Output[str | None]
    """AUTH-token secret ARN in the primary region (replicated when Global Datastore is on)."""
    aurora_global_cluster_id: pulumi.Output[str] | None = None
    """Aurora Global Database id (Aurora variant with replica regions), else None."""
    aurora_writer: pulumi.Resource | None = None
    """The primary Aurora writer instance: secondaries wait for it."""
    db_app_secret_arns: Mapping[str, pulumi.Output[str]] = dataclasses.field(default_factory=dict)
    """Application users' secret ARNs in the primary region (replicated to replica regions), by
    user; empty when the database has none (the master secret is then the proxy's login)."""


def page_subscriptions(cfg: StackConfig) -> list[AlarmSubscription]:
    """Who gets paged: the pager (``pagerEndpoint``, a secret: it stays one in the state), or,
    until a pager is configured, the on-call addresses (``observability.alarmEmails``)."""
    if cfg.pager_endpoint:
        endpoint = pulumi.Output.secret(cfg.pager_endpoint)
        return [AlarmSubscription(protocol="https", endpoint=endpoint, auto_confirms=True)]
    return [AlarmSubscription(protocol="email", endpoint=e) for e in cfg.observability.alarm_emails]


@dataclass(frozen=True, kw_only=True)
class RegionStackArgs:
    """Inputs of :class:`RegionStack`."""

    config: StackConfig
    """The parsed stack configuration. Required."""
    region: str
    """This region. Required."""
    primary: PrimaryHandles | None = None
    """Handles of the primary region's stack; None makes this the primary region. Default: None."""
    monitoring_role_arn: pulumi.Input[str] | None = None
    """Stack-wide enhanced-monitoring role (``StackShared``); None lets the primary region's
    PostgresCluster create one. Default: None."""
    aurora_global_cluster_id: pulumi.Input[str] | None = None
    """Stack-wide Aurora Global Database to join (``StackShared``); None: the primary region's
    PostgresCluster creates one when replica regions need it. Default: None."""
    cache_global_group_outside: bool = False
    """The caller creates the Global Datastore from this (primary) region's replication group
    (``StackShared.add_cache_global_group``) instead of the CacheLayer. Default: False."""
    replica_key_arns: Mapping[str, pulumi.Input[str]] = dataclasses.field(default_factory=dict)
    """Primary region only: replica region -> its CMK ARN (built after this region, so usually a
    ``pulumi.deferred_output``), to encrypt the secrets' replicas there. Missing regions get the
    AWS managed key. Default: {}."""
    cache_after: Sequence[pulumi.Resource] = ()
    """Resources this region's cache replication group waits for: the previous replica region's
    Global Datastore secondary, as AWS adds secondaries one at a time. Default: ()."""
    retiring_logins: Mapping[str, pulumi.Input[str]] = dataclasses.field(default_factory=dict)
    """Primary region, completing a failover (``retiringLoginsFrom``): user -> ARN of a promoted
    copy of the old writer's application secret that the proxy accepts besides the region's own
    while the apps reload. Default: {}."""

    def __post_init__(self) -> None:
        is_primary = self.region == self.config.primary_region
        if is_primary != (self.primary is None):
            raise ValueError(
                f"region {self.region!r}: primary handles must be given exactly for replica regions "
                f"(primary region is {self.config.primary_region!r})"
            )
        if not is_primary and self.region not in self.config.replica_regions:
            raise ValueError(f"region {self.region!r} is neither the primary nor a replica region")


def stack_slug(stack: str) -> str:
    """Lower-case stack name used in physical names (at most 24 characters)."""
    slug = re.sub(r"[^a-z0-9]+", "-", stack.lower()).strip("-")[:24] or "stack"
    if slug == stack:
        return slug
    # Sanitising or the cut changed the name (team.dev, team_dev, long names): a hash of the real
    # name keeps such stacks' physical names apart; prod/staging are unchanged.
    return f"{slug[:17].rstrip('-')}-{stack_hash(stack)}"


def identifier_prefix(stack: str, region: str) -> str:
    """Prefix of this stack's DB identifiers in ``region``: ``cdb-<stack>-<regioncode>``."""
    return f"cdb-{stack_slug(stack)}-{region_code(region)}"


def backup_vault_name(stack: str, region: str) -> str:
    """Fixed name of a region's backup vault: ``cdb-<stack>-<regioncode>`` (known before it exists)."""
    return identifier_prefix(stack, region)


def alarm_thresholds(overrides: Mapping[str, float], capacity: DbCapacity | None = None) -> AlarmThresholds:
    """:class:`AlarmThresholds` sized from ``capacity`` (instance class, storage, RPO; see
    ``_alarms.derive_thresholds``), then config overrides (integer fields given as numbers are cast)."""
    kinds = {f.name: f.type for f in dataclasses.fields(AlarmThresholds)}
    kwargs: dict[str, Any] = {
        k: int(v) if kinds.get(k) in (int, "int") and float(v).is_integer() else v
        for k, v in overrides.items()
    }
    if capacity is not None:
        rpo = float(kwargs.get("rpo_seconds", AlarmThresholds().rpo_seconds))
        beat = float(kwargs.get("primary_heartbeat_seconds", AlarmThresholds().primary_heartbeat_seconds))
        reasoned = derive_thresholds(capacity, rpo_seconds=rpo, heartbeat_seconds=beat)
        derived = {k: v for k, (v, _why) in reasoned.items()}
        kwargs = {**derived, **kwargs}
    return AlarmThresholds(**kwargs)


def db_capacity(cfg: StackConfig, *, primary: bool) -> DbCapacity:
    """What sizes a region's database alarms: the primary's class there, the replicas' elsewhere."""
    pg = cfg.postgres
    return DbCapacity(
        instance_class=pg.instance_class if primary else pg.effective_replica_class,
        allocated_gib=pg.allocated_storage_gib,
        max_allocated_gib=pg.max_allocated_storage_gib or None,
        storage_type=pg.storage_type,
        provisioned_iops=pg.iops,
        max_connections=pg.parameters.max_connections,
        proxy_max_connections_percent=cfg.proxy.max_connections_percent,
    )


def replicated_arn(arn: str | None, source_region: str, region: str) -> str | None:
    """ARN of a Secrets Manager replica: same secret id, the replica's region."""
    return arn.replace(f":{source_region}:", f":{region}:", 1) if arn else None


def proxy_secret_name_patterns(stack: str) -> tuple[str, ...]:
    """Names of the secrets a region's proxy may read, whatever the region's role: the master
    secrets (``cdb-<stack>-<region code>-master``, the primary's own or its replica) and the
    application users' secrets (auto-named ``<region code>-pg-<user>-...``). The same role policy
    serves before and after a failover, so promoting a region changes nothing in IAM."""
    return (f"cdb-{stack_slug(stack)}-*-master-*", "*-pg-*")


def _keep_proxy_logins(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """While a failover is in progress (``promotedFrom`` set): the proxy keeps the logins it has.

    A promoted region's proxy serves the apps with the secrets replicated there (made standalone
    by the runbook); the failover's update creates that region's own application secrets, whose
    first passwords the database does not know until their first rotation, and the apps hold the
    promoted copies. Switching the proxy's auths then would lock the apps out, so the switch waits
    until ``promotedFrom`` is removed (the failover complete: the new secrets rotated, the apps told
    to reload the exported ARNs)."""
    if args.type_ != "aws:rds/proxy:Proxy":
        return None
    opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(ignore_changes=["auths"]))
    return pulumi.ResourceTransformationResult(args.props, opts)


def _add_proxy_logins(
    logins: Mapping[str, pulumi.Input[str]], iam_auth: str
) -> Callable[[pulumi.ResourceTransformationArgs], pulumi.ResourceTransformationResult | None]:
    """Completing a failover (``retiringLoginsFrom``): the proxy accepts the promoted copies of the
    old writer's application secrets besides its own (their users differ: ``app_writer`` and the
    new secrets' ``app_writer_clone`` after their first rotation), so apps that still hold a
    promoted copy keep connecting until they have reloaded the exported ARNs."""

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != "aws:rds/proxy:Proxy":
            return None
        extra = [
            aws.rds.ProxyAuthArgs(
                auth_scheme="SECRETS",
                secret_arn=arn,
                iam_auth=iam_auth,
                client_password_auth_type="POSTGRES_SCRAM_SHA_256",
                description=f"{user} credentials, promoted copy (retiring)",
            )
            for user, arn in sorted(logins.items())
        ]
        existing: list[Any] = list(cast(Any, args.props.get("auths")) or [])
        props = {**args.props, "auths": [*existing, *extra]}
        return pulumi.ResourceTransformationResult(props, args.opts)

    return transform


def _keep_cache_token(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """While a failover is in progress (``promotedFrom`` set): the promoted cache keeps its AUTH token.

    The new primary's CacheLayer creates its own token secret; applying that token (ROTATE) in the
    failover's update would change AUTH on a Global Datastore member during the outage (not proven
    to be accepted) while the apps hold the promoted copy of the old token. The stack exports that
    copy meanwhile; the new token is applied (ROTATE: both valid) when the failover is complete."""
    if args.type_ != "aws:elasticache/replicationGroup:ReplicationGroup":
        return None
    opts = pulumi.ResourceOptions.merge(
        args.opts, pulumi.ResourceOptions(ignore_changes=["authToken", "authTokenUpdateStrategy"])
    )
    return pulumi.ResourceTransformationResult(args.props, opts)


@dataclass(frozen=True)
class _ReplicaRegionDatabase:
    """What :class:`ProxyLayer` reads from its ``target``, for a replica region's database (cross-
    region read replicas or the Aurora secondary): the proxy there is created before the region is
    ever promoted (duck-types the parts of ``PostgresCluster`` the proxy uses)."""

    is_aurora: bool
    primary_identifier: pulumi.Output[str]
    """RDS: the replica that a failover promotes (slot 1); Aurora: the secondary cluster."""
    security_group_id: pulumi.Output[str]
    _port: int
    allow_from: Callable[[str, pulumi.Input[str]], object]
    secret_arn: pulumi.Output[str]
    app_secret_arns: Mapping[str, pulumi.Output[str]]
    kms_key_arn: pulumi.Output[str]
    resource_ids: pulumi.Output[list[str]]
    reader_endpoints: pulumi.Output[list[str]]


class RegionStack(pulumi.ComponentResource):
    """All layers of one region."""

    region: str
    writer_endpoint: pulumi.Output[str | None]
    """RDS Proxy endpoint (primary region; the writer address without a proxy; None elsewhere)."""
    writer_target: pulumi.Output[str | None]
    """Where this region's writes go once it is (or while it is) the primary: its RDS Proxy (pre-
    created in replica regions), else the database that a promotion makes the writer (RDS slot 1,
    the Aurora cluster endpoint). The stack's writer name points here for the active region."""
    reader_endpoints: pulumi.Output[list[str]]
    """Read endpoints in this region (replica addresses, or the Aurora proxy read-only endpoint)."""
    db_secret_arn: pulumi.Output[str | None]
    """Master secret ARN usable in this region (the replica ARN in replica regions)."""
    redis_primary_endpoint: pulumi.Output[str | None]
    redis_reader_endpoint: pulumi.Output[str | None]
    redis_auth_secret_arn: pulumi.Output[str | None]
    alarm_topic_arn: pulumi.Output[str | None]
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RegionStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:RegionStack", name, None, opts)
        cfg = args.config
        region = args.region
        self._args = args
        self._name = name
        self._cfg = cfg
        self._cache_after = tuple(args.cache_after)
        self._replica_key_arns = dict(args.replica_key_arns)
        self.region = region
        self.is_primary = args.primary is None
        self._child = pulumi.ResourceOptions(parent=self)
        self._tags = {**cfg.base_tags(), "region-role": "primary" if self.is_primary else "replica"}
        self._prefix = identifier_prefix(cfg.stack, region)

        existing = cfg.network.existing_vpcs.get(region)
        endpoints = cfg.network.interface_endpoints
        if endpoints is None:
            endpoints = existing is None
        # Keys first: the network's flow-log group is encrypted with this region's key.
        self.keys = RegionKeys(
            f"{name}-keys",
            RegionKeysArgs(
                region=region,
                alias="commerce-db-" + re.sub(r"[^A-Za-z0-9/_-]", "-", cfg.stack),
                deletion_window_days=30 if cfg.is_prod else 7,
                protect=cfg.protect_resources,
                tags=self._tags,
            ),
            opts=self._child,
        )
        self.kms_key_arn = self.keys.key_arn
        self.network = Network(
            f"{name}-net",
            NetworkArgs(
                region=region,
                existing_vpc_id=existing.vpc_id if existing else None,
                existing_subnet_ids=existing.private_subnet_ids if existing else (),
                cidr_block=cfg.vpc_cidr(region),
                az_count=cfg.network.az_count,
                interface_endpoints=endpoints,
                flow_logs_kms_key_arn=self.keys.key_arn,
                flow_logs_retention_days=cfg.observability.log_retention_days,
                tags=self._tags,
            ),
            opts=self._child,
        )
        self._app_sgs = {f"app-{i + 1}": sg for i, sg in enumerate(cfg.app_security_groups(region))}
        # Private DNS of our endpoints changes name resolution for every workload of the VPC: the
        # applications must reach them too, or they time out reading their secrets.
        for label, sg in self._app_sgs.items():
            self.network.allow_endpoint_access(label, sg)

        none: pulumi.Output[None] = pulumi.Output.from_input(None)
        self.writer_endpoint = none
        self.writer_target = none
        self.reader_endpoints = pulumi.Output.from_input([])
        self.db_secret_arn = none
        self.app_secret_arns: dict[str, pulumi.Output[str]] = {}
        """Application users' secrets by user name (primary region; empty elsewhere)."""
        self.redis_primary_endpoint = none
        self.redis_reader_endpoint = none
        self.redis_auth_secret_arn = none
        self.alarm_topic_arn = none
        self._monitoring_role_arn: pulumi.Output[str | None] = none
        self._db_source_arn: pulumi.Output[str] | None = None
        self._cache_global_group_id: pulumi.Output[str | None] | None = None
        self.pg: PostgresCluster | None = None
        self.replicas: CrossRegionReplicas | None = None
        self.aurora_secondary: AuroraSecondaryCluster | None = None
        self.proxy: ProxyLayer | None = None
        self.cache: CacheLayer | None = None
        self.audit: AuditTrail | None = None
        self.observability: ObservabilityLayer | None = None
        self.backup: BackupPlan | None = None

        # The alarm topic is created with the observability layer, after the cache that sends its
        # events there: hand it over as a deferred output.
        topic: tuple[pulumi.Output[str], Callable[[pulumi.Output[str]], None]] = pulumi.deferred_output()
        self._topic_arn, self._resolve_topic_arn = topic
        if args.primary is None:
            self._build_primary()
        else:
            self._build_replica(args.primary)

        self.register_outputs(
            {
                "writer_endpoint": self.writer_endpoint,
                "reader_endpoints": self.reader_endpoints,
                "db_secret_arn": self.db_secret_arn,
                "redis_primary_endpoint": self.redis_primary_endpoint,
                "redis_reader_endpoint": self.redis_reader_endpoint,
                "alarm_topic_arn": self.alarm_topic_arn,
                "kms_key_arn": self.kms_key_arn,
            }
        )

    # ------------------------------------------------------------------ primary region

    def _build_primary(self) -> None:
        cfg, pg_cfg, name = self._cfg, self._cfg.postgres, self._name
        aurora = pg_cfg.engine_mode == "aurora"
        ids = planned_identifiers(
            self._prefix,
            engine_mode=pg_cfg.engine_mode,
            replicas=pg_cfg.in_region_replicas,
            aurora_readers=pg_cfg.aurora.readers,
        )
        # Log groups first, with our retention and CMK; RDS would otherwise create them unmanaged.
        logs = self._rds_log_groups({"cluster": ids["cluster"]} if aurora else ids, aurora=aurora)
        iops, throughput = gp3_performance(pg_cfg)
        pg = PostgresCluster(
            f"{name}-pg",  # same name in every role: a failover keeps the URNs (see _role_aliases)
            PostgresClusterArgs(
                engine_mode=pg_cfg.engine_mode,
                engine_lifecycle_support=pg_cfg.engine_lifecycle_support,
                instance_class=pg_cfg.instance_class,
                replica_instance_class=pg_cfg.effective_replica_class,
                in_region_replicas=pg_cfg.in_region_replicas,
                multi_az=pg_cfg.multi_az,
                storage_type=pg_cfg.storage_type,
                allocated_storage_gib=pg_cfg.allocated_storage_gib,
                max_allocated_storage_gib=pg_cfg.max_allocated_storage_gib,
                iops=iops,
                storage_throughput_mibps=throughput,
                replica_storage_type=pg_cfg.replica_storage_type,
                replica_iops=pg_cfg.replica_iops,
                replica_storage_throughput_mibps=pg_cfg.replica_storage_throughput_mibps,
                db_name=pg_cfg.db_name,
                master_username=pg_cfg.master_username,
                manage_master_user_password=pg_cfg.manage_master_user_password,
                password_rotation_days=pg_cfg.password_rotation_days,
                rotation_lambda_arn=pg_cfg.rotation_lambda_arn,
                endpoint_security_group_id=self.network.endpoint_security_group_id,
                # Replica regions read the secret locally, encrypted with their own region's CMK.
                secret_replica_regions=self._replica_keys(),
                publicly_accessible=pg_cfg.publicly_accessible,
                deletion_protection=pg_cfg.deletion_protection,
                final_snapshot_identifier=f"{self._prefix}-final",
                backup_retention_days=cfg.backup.retention_days,
                backup_window=pg_cfg.backup_window,
                database_insights_mode=pg_cfg.database_insights_mode,
                aurora_readers=pg_cfg.aurora.readers,
                aurora_instance_class=pg_cfg.aurora.instance_class,
                aurora_min_capacity_acu=pg_cfg.aurora.min_capacity_acu,
                aurora_max_capacity_acu=pg_cfg.aurora.max_capacity_acu,
                aurora_global=aurora and bool(cfg.replica_regions) and pg_cfg.cross_region_replicas > 0,
                global_cluster_id=self._args.aurora_global_cluster_id if aurora else None,
                monitoring_role_arn=self._args.monitoring_role_arn,
                identifier_prefix=self._prefix,
                lambda_log_retention_days=cfg.observability.log_retention_days,
                # The primary moved at least once: the writer is a promoted replica.
                writer_promoted=cfg.primary_region != cfg.home_region or bool(cfg.promoted_from),
                # After a failover the database has the old writer's master password.
                master_password_from_secret=f"{identifier_prefix(cfg.stack, cfg.promoted_from)}-master"
                if cfg.promoted_from and not pg_cfg.manage_master_user_password
                else None,
                # ... and the application users' logins (the bootstrap leaves existing users alone).
                app_credentials_from_secret_prefix=f"{region_code(cfg.promoted_from)}-pg-"
                if cfg.promoted_from and not pg_cfg.manage_master_user_password
                else None,
                depends_on=logs.log_groups,
                **self._db_args(),
            ),
            opts=self._role_aliases(
                "commerce:db:AuroraSecondaryCluster" if aurora else "commerce:db:CrossRegionReplicas"
            ),
        )
        self.pg = pg
        self._admit_apps(pg.allow_readers_from)
        self._db_source_arn = pg.primary_arn
        self._monitoring_role_arn = pg.monitoring_role_arn
        self.db_secret_arn = pg.secret_arn
        self.app_secret_arns = dict(getattr(pg, "app_secret_arns", None) or {})

        self.backup = self._backup_vault()

        if cfg.proxy.enabled:
            self.proxy = self._proxy_layer(pg, register_target=True)
            self.writer_endpoint = self.proxy.writer_endpoint
            self.reader_endpoints = self.proxy.reader_endpoints
        else:
            self._admit_apps(pg.allow_from)
            self.writer_endpoint = pg.writer_endpoint
            self.reader_endpoints = pg.reader_endpoints
        self.writer_target = self.writer_endpoint

        if cfg.cache.enabled:
            role = GlobalDatastoreRole.PRIMARY if cfg.cache.global_datastore else GlobalDatastoreRole.NONE
            self.cache = CacheLayer(
                f"{name}-cache",
                self._cache_args(
                    role,
                    secret_replica_regions=self._replica_keys() if cfg.cache.global_datastore else {},
                    create_global_group=not self._args.cache_global_group_outside,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    transformations=[_keep_cache_token]
                    if cfg.promoted_from and cfg.cache.global_datastore
                    else [],
                ),
            )
            self._cache_global_group_id = (
                self.cache.global_replication_group_id if cfg.cache.global_datastore else None
            )
            self._export_cache(self.cache)

        self._build_audit_and_observability(log_groups=logs.postgresql_log_group_names)
        if aurora:
            self._aurora_alarms(
                pg.primary_identifier,
                [*pg.instances, *pg.replicas],
                global_member=self._args.aurora_global_cluster_id is not None
                or pg.global_cluster is not None,
            )

    # ------------------------------------------------------------------ replica region

    def _build_replica(self, primary: PrimaryHandles) -> None:
        cfg, pg_cfg, name, region = self._cfg, self._cfg.postgres, self._name, self.region
        log_groups: dict[str, pulumi.Output[str]] = {}
        if pg_cfg.engine_mode == "rds" and pg_cfg.cross_region_replicas and primary.db_source_arn is not None:
            ids = planned_replica_identifiers(self._prefix, pg_cfg.cross_region_replicas)
            writer_iops, writer_throughput = gp3_performance(pg_cfg)
            logs = self._rds_log_groups(ids, aurora=False)
            log_groups = dict(logs.postgresql_log_group_names)
            self.replicas = CrossRegionReplicas(
                f"{name}-pg",
                CrossRegionReplicasArgs(
                    source_arn=primary.db_source_arn,
                    count=pg_cfg.cross_region_replicas,
                    instance_class=pg_cfg.effective_replica_class,
                    # Storage per role: replicas get the replica settings, not the primary's io2.
                    storage_type=pg_cfg.replica_storage_type,
                    iops=pg_cfg.replica_iops,
                    storage_throughput_mibps=pg_cfg.replica_storage_throughput_mibps,
                    allocated_storage_gib=pg_cfg.allocated_storage_gib,
                    # Slot 1 becomes the writer in a failover: the writer's class and storage, so
                    # the promotion loses no capacity and the update after it changes neither.
                    promotable_instance_class=pg_cfg.instance_class,
                    promotable_storage_type=pg_cfg.storage_type,
                    promotable_iops=writer_iops,
                    promotable_storage_throughput_mibps=writer_throughput,
                    max_allocated_storage_gib=pg_cfg.max_allocated_storage_gib,
                    database_insights_mode=pg_cfg.database_insights_mode,
                    deletion_protection=pg_cfg.deletion_protection,
                    identifier_prefix=self._prefix,
                    depends_on=logs.log_groups,
                    **self._replica_region_db_args(primary),
                ),
                opts=self._role_aliases("commerce:db:PostgresCluster"),
            )
            self._admit_apps(self.replicas.allow_from)
            self.reader_endpoints = self.replicas.reader_endpoints
        if pg_cfg.engine_mode == "aurora" and primary.aurora_global_cluster_id is not None:
            prefix = self._prefix
            logs = self._rds_log_groups({"cluster": f"{prefix}-cluster"}, aurora=True)
            log_groups = dict(logs.postgresql_log_group_names)
            self.aurora_secondary = AuroraSecondaryCluster(
                f"{name}-pg",
                AuroraSecondaryClusterArgs(
                    global_cluster_id=primary.aurora_global_cluster_id,
                    engine_lifecycle_support=pg_cfg.engine_lifecycle_support,
                    # In prod a secondary has as many instances as the primary: it is the writer
                    # right after a failover (Multi-AZ from the first minute, nothing to create).
                    readers=max(pg_cfg.cross_region_replicas, pg_cfg.aurora.readers + 1)
                    if cfg.is_prod
                    else pg_cfg.cross_region_replicas,
                    backup_retention_days=cfg.backup.retention_days,
                    backup_window=pg_cfg.backup_window,
                    instance_class=pg_cfg.aurora.instance_class,
                    min_capacity_acu=pg_cfg.aurora.min_capacity_acu,
                    max_capacity_acu=pg_cfg.aurora.max_capacity_acu,
                    identifier_prefix=prefix,
                    deletion_protection=pg_cfg.deletion_protection,
                    final_snapshot_identifier=f"{self._prefix}-final",
                    depends_on=[
                        *logs.log_groups,
                        *([primary.aurora_writer] if primary.aurora_writer else []),
                    ],
                    **self._replica_region_db_args(primary),
                ),
                opts=self._role_aliases("commerce:db:PostgresCluster"),
            )
            self._admit_apps(self.aurora_secondary.allow_from)
            self.reader_endpoints = self.aurora_secondary.reader_endpoints
        self.db_secret_arn = primary.db_secret_arn.apply(lambda a: replicated_arn(a, primary.region, region))
        self._build_standby_proxy(primary)

        if cfg.cache.enabled and cfg.cache.global_datastore and primary.cache_global_group_id is not None:
            secret = primary.cache_auth_secret_arn.apply(lambda a: replicated_arn(a, primary.region, region))
            self.cache = CacheLayer(
                f"{name}-cache",
                self._cache_args(
                    GlobalDatastoreRole.SECONDARY,
                    global_replication_group_id=primary.cache_global_group_id,
                    auth_token_secret_arn=secret,
                ),
                opts=self._child,
            )
            self._export_cache(self.cache)

        self.backup = self._backup_vault()
        self._build_audit_and_observability(log_groups=log_groups)
        if self.aurora_secondary is not None:
            self._aurora_alarms(
                self.aurora_secondary.cluster_identifier, self.aurora_secondary.readers, global_member=True
            )

    def _build_standby_proxy(self, primary: PrimaryHandles) -> None:
        """``<name>-proxy`` in a replica region: the proxy this region serves writes through once
        promoted, created now so that a failover needs no IAM call and no new proxy.

        Same name, role, policy, security groups and settings as in the primary role (the policy
        grants secret *names*, see :func:`proxy_secret_name_patterns`); it logs in with the
        primary's secrets replicated here. Aurora: the secondary cluster is registered as the target
        already (AWS supports proxies on any Global Database member: the read/write endpoint fails
        until the promotion, then RDS Proxy sends writes to the new writer by itself). RDS: AWS
        refuses read replicas as targets; the runbook registers the promoted instance.
        """
        cfg, region = self._cfg, self.region
        # The application users' secrets as replicated here (this region's copy: what apps and
        # the proxy here read, and what a failover makes standalone).
        app_secrets = {
            user: arn.apply(lambda a: replicated_arn(a, primary.region, region) or "")
            for user, arn in primary.db_app_secret_arns.items()
        }
        self.app_secret_arns = app_secrets
        if not cfg.proxy.enabled:
            if self.replicas is not None and self.replicas.replicas:
                self.writer_target = self.replicas.replicas[0].address
            elif self.aurora_secondary is not None:
                self.writer_target = self.aurora_secondary.cluster.endpoint
            return
        target: _ReplicaRegionDatabase
        common: dict[str, Any] = {
            "_port": cfg.postgres.port,
            "secret_arn": self.db_secret_arn,
            "app_secret_arns": app_secrets,
            "kms_key_arn": self.keys.key_arn,
        }
        if self.replicas is not None and self.replicas.replicas:
            replicas = self.replicas
            target = _ReplicaRegionDatabase(
                is_aurora=False,
                primary_identifier=replicas.replicas[0].identifier,
                security_group_id=replicas.security_group_id,
                allow_from=replicas.allow_from,
                resource_ids=replicas.resource_ids,
                reader_endpoints=replicas.reader_endpoints,
                **common,
            )
        elif self.aurora_secondary is not None:
            secondary = self.aurora_secondary
            target = _ReplicaRegionDatabase(
                is_aurora=True,
                primary_identifier=secondary.cluster_identifier,
                security_group_id=secondary.security_group_id,
                allow_from=secondary.allow_from,
                resource_ids=secondary.cluster.cluster_resource_id.apply(lambda r: [r]),
                reader_endpoints=secondary.reader_endpoints,
                **common,
            )
        else:
            return
        self.proxy = self._proxy_layer(cast(PostgresCluster, target), register_target=target.is_aurora)
        self.writer_target = self.proxy.writer_endpoint

    def _proxy_layer(self, target: PostgresCluster, *, register_target: bool) -> ProxyLayer:
        """``<name>-proxy``: the same proxy in every role (the writer region's, or a replica region's
        standby): name, settings, logs, secret access and role-free tags (a tag naming the region's
        role would change the proxy's IAM role in a failover). Only whether ``target`` is registered
        differs (AWS refuses an RDS read replica as a target)."""
        cfg = self._cfg
        return ProxyLayer(
            f"{self._name}-proxy",
            ProxyLayerArgs(
                region=self.region,
                target=target,
                register_target=register_target,
                vpc_id=self.network.vpc_id,
                subnet_ids=self.network.private_subnet_ids,
                iam_auth=cfg.proxy.iam_auth,
                default_auth_scheme=cfg.proxy.default_auth_scheme,
                max_connections_percent=cfg.proxy.max_connections_percent,
                max_idle_connections_percent=cfg.proxy.max_idle_connections_percent,
                connection_borrow_timeout_seconds=cfg.proxy.connection_borrow_timeout_seconds,
                idle_client_timeout_seconds=cfg.proxy.idle_client_timeout_seconds,
                debug_logging=cfg.proxy.debug_logging,
                read_only_endpoint=target.is_aurora,
                allowed_security_groups=self._app_sgs,
                proxy_name=f"{self._prefix}-proxy",
                log_retention_days=cfg.observability.log_retention_days,
                log_kms_key_arn=self.keys.key_arn,
                secret_name_patterns=()
                if cfg.postgres.manage_master_user_password
                else proxy_secret_name_patterns(cfg.stack),
                tags={k: v for k, v in self._tags.items() if k != "region-role"},
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                transformations=[_keep_proxy_logins]
                if cfg.promoted_from
                else [_add_proxy_logins(self._args.retiring_logins, cfg.proxy.iam_auth)]
                if self._args.retiring_logins and self.is_primary
                else [],
            ),
        )

    # ------------------------------------------------------------------ shared layers

    def _backup_vault(self) -> BackupPlan:
        """``<name>-backup``: this region's vault (every region has one, whatever its role)."""
        cfg = self._cfg
        return BackupPlan(
            f"{self._name}-backup",
            BackupPlanArgs(
                region=self.region,
                kms_key_arn=self.keys.key_arn,
                vault_name=backup_vault_name(cfg.stack, self.region),
                retention_days=cfg.backup.retention_days,
                lock=cfg.backup.vault_lock,
                lock_changeable_for_days=cfg.backup.vault_lock_changeable_for_days,
                force_destroy=not cfg.is_prod and not cfg.backup.vault_lock,
                tags=self._tags,
            ),
            opts=self._child,
        )

    def add_backup_plan(self, *, role_arn: pulumi.Input[str], dr_vault_arn: pulumi.Input[str] | None) -> None:
        """Writer's region: the AWS Backup plan (copies to ``dr_vault_arn``) and its restore testing."""
        if self.pg is None or self.backup is None:
            raise ValueError(
                f"{self._name} is a replica region; the backup plan belongs to the writer's region"
            )
        cfg, pg = self._cfg, self.pg
        self.backup.add_plan(
            resource_arns=[pg.primary_arn],
            role_arn=role_arn,
            schedule=cfg.backup.schedule,
            start_window_minutes=cfg.backup.start_window_minutes,
            completion_window_minutes=cfg.backup.completion_window_minutes,
            continuous=cfg.backup.continuous,
            dr_vault_arn=dr_vault_arn if cfg.backup.copy_to_dr else None,
        )
        if cfg.backup.restore_testing:
            self.backup.add_restore_testing(
                resource_arns=[pg.primary_arn],
                role_arn=role_arn,
                resource_type="Aurora" if pg.is_aurora else "RDS",
                schedule=cfg.backup.restore_testing_schedule,
                # The restored copy lands in the tier's private subnets behind its security group.
                restore_metadata_overrides={
                    "dbSubnetGroupName": pg.subnet_group_name,
                    "vpcSecurityGroupIds": pg.security_group_id.apply(lambda sg: json.dumps([sg])),
                },
            )

    def add_backup_replication(self, source_instance_arn: pulumi.Input[str]) -> None:
        """DR region (RDS mode): replicate the writer's automated backups here (point-in-time restore)."""
        if self.backup is None:
            raise ValueError(f"{self._name} has no backup vault")
        self.backup.add_automated_backups_replication(
            source_instance_arn=source_instance_arn,
            kms_key_arn=self.keys.key_arn,
            retention_days=self._cfg.backup.retention_days,
            # Where data is protected (prod): a failover never waits on the lost source region.
            retain_on_delete=self._cfg.protect_resources,
        )

    def _aurora_alarms(
        self, cluster_id: pulumi.Input[str], instances: list[Any], *, global_member: bool
    ) -> None:
        """``<name>-aurora-alarms``: the Aurora metrics the RDS catalogue lacks (see AuroraAlarms)."""
        assert self.observability is not None
        AuroraAlarms(
            f"{self._name}-aurora-alarms",
            AuroraAlarmsArgs(
                topic_arn=self.observability.topic_arn,
                page_topic_arn=self.observability.page_topic_arn,
                watch_primary=not self.is_primary,
                cluster_identifier=cluster_id,
                instances={str(i + 1): inst.identifier for i, inst in enumerate(instances)},
                global_member=global_member,
                serverless=self._cfg.postgres.aurora.instance_class == "db.serverless",
                tags=self._tags,
            ),
            opts=self._child,
        )

    def _role_aliases(self, other_role_type: str) -> pulumi.ResourceOptions:
        """Options of this region's PostgreSQL component: it answers to the URN it had in the other
        role (same name, the other component type). Children inherit the alias, and they carry the
        same names in both roles (``-subnets``, ``-sg``, ``-params``, ``-cluster``, ``-N``), so a
        promoted replica or a writer demoted to a replica keeps its state instead of being replaced."""
        return pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(type_=other_role_type)])

    def _rds_log_groups(self, identifiers: Mapping[str, str], *, aurora: bool) -> RdsLogGroups:
        """``<name>-rds-logs``: the DB log groups, created before the databases with our retention and CMK
        (RDS would otherwise create them unmanaged). Aurora exports per cluster, RDS per instance."""
        return RdsLogGroups(
            f"{self._name}-rds-logs",
            RdsLogGroupsArgs(
                identifiers=identifiers,
                kind="cluster" if aurora else "instance",
                exports=AURORA_LOG_EXPORTS if aurora else RDS_LOG_EXPORTS,
                retention_days=self._cfg.observability.log_retention_days,
                kms_key_arn=self.keys.key_arn,
                tags=self._tags,
            ),
            opts=self._child,
        )

    def _db_args(self) -> dict[str, Any]:
        """Arguments every PostgreSQL component of this region takes alike (PostgresClusterArgs,
        CrossRegionReplicasArgs, AuroraSecondaryClusterArgs): placement, key and shared settings."""
        pg_cfg = self._cfg.postgres
        return {
            "region": self.region,
            "vpc_id": self.network.vpc_id,
            "subnet_ids": self.network.private_subnet_ids,
            "kms_key_arn": self.keys.key_arn,
            "engine_version": pg_cfg.engine_version,
            "port": pg_cfg.port,
            "parameters": pg_cfg.parameters,
            "monitoring_interval_seconds": pg_cfg.monitoring_interval_seconds,
            "performance_insights_retention_days": pg_cfg.performance_insights_retention_days,
            "iam_auth": pg_cfg.iam_auth,
            "maintenance_window": pg_cfg.maintenance_window,
            "auto_minor_version_upgrade": pg_cfg.auto_minor_version_upgrade,
            "protect": self._cfg.protect_resources,
            "tags": self._tags,
        }

    def _replica_region_db_args(self, primary: PrimaryHandles) -> dict[str, Any]:
        """:meth:`_db_args` plus what a replica region's PostgreSQL takes from the primary region."""
        return {
            **self._db_args(),
            "source_region": primary.region,
            # IAM is global: the primary region's enhanced-monitoring role serves every region.
            "monitoring_role_arn": primary.monitoring_role_arn,
        }

    def _replica_keys(self) -> dict[str, pulumi.Input[str] | None]:
        """Replica region -> CMK ARN for secret replicas (None: AWS managed key, if not given)."""
        return {r: self._replica_key_arns.get(r) for r in self._cfg.replica_regions}

    def _admit_apps(self, allow_from: Callable[[str, pulumi.Input[str]], object]) -> None:
        """Call ``allow_from(label, sg)`` for each configured application security group."""
        for label, sg in self._app_sgs.items():
            allow_from(label, sg)

    def _cache_args(self, role: GlobalDatastoreRole, **wiring: Any) -> CacheLayerArgs:
        return CacheLayerArgs(
            region=self.region,
            vpc_id=self.network.vpc_id,
            subnet_ids=self.network.private_subnet_ids,
            # Every role names the region's CMK: kms_key_id forces replacement when it changes.
            kms_key_arn=self.keys.key_arn,
            log_kms_key_arn=self.keys.key_arn,
            depends_on=self._cache_after,
            notification_topic_arn=self._topic_arn,
            secret_recovery_window_days=30 if self._cfg.is_prod else 7,
            global_datastore_role=role,
            global_replication_group_id_suffix=f"cdb-{re.sub(r'[^a-z0-9]+', '-', self._cfg.stack.lower())}"[
                :40
            ],
            allowed_security_groups=self._app_sgs,
            protect=self._cfg.protect_resources,
            # Sessions, queues and counters live in the cache: snapshot it if it is ever deleted.
            final_snapshot_identifier=f"{self._prefix}-cache-final"
            if self._cfg.protect_resources and role is not GlobalDatastoreRole.SECONDARY
            else None,
            tags=self._tags,
            **cache_layer_settings(self._cfg.cache),
            **wiring,
        )

    def _export_cache(self, cache: CacheLayer) -> None:
        self.redis_primary_endpoint = cache.primary_endpoint
        self.redis_reader_endpoint = cache.reader_endpoint
        self.redis_auth_secret_arn = cache.auth_token_secret_arn

    def _build_audit_and_observability(self, *, log_groups: dict[str, pulumi.Output[str]]) -> None:
        cfg, name, region = self._cfg, self._name, self.region
        audit_bucket: dict[str, pulumi.Input[str] | None] = {
            "audit_bucket_arn": None,
            "audit_bucket_kms_key_arn": None,
        }
        own_trail = self.is_primary and cfg.audit.trail != "none"
        if cfg.audit.enabled and (own_trail or (cfg.audit.ship_postgres_logs and log_groups)):
            # One multi-region trail for the account lives in the primary region; replica regions
            # get a bucket-only AuditTrail so their PostgreSQL logs stay in-region.
            self.audit = AuditTrail(
                f"{name}-audit",
                AuditTrailArgs(
                    region=region,
                    kms_key_arn=self.keys.key_arn,
                    create_trail=own_trail,
                    trail_copy="first" if cfg.audit.trail == "first" else "additional",
                    trail_name=f"commerce-db-{cfg.stack}" if own_trail else None,
                    transition_to_glacier_days=cfg.audit.glacier_after_days,
                    expiration_days=cfg.audit.expire_after_days,
                    force_destroy=not cfg.is_prod,
                    protect=cfg.protect_resources,
                    tags=self._tags,
                ),
                opts=self._child,
            )
            if cfg.audit.ship_postgres_logs:
                audit_bucket = {
                    "audit_bucket_arn": self.audit.bucket_arn,
                    "audit_bucket_kms_key_arn": self.audit.kms_key_arn,
                }
        self.observability = ObservabilityLayer(
            f"{name}-obs",
            ObservabilityLayerArgs(
                region=region,
                kms_key_arn=self.keys.key_arn,
                subscriptions=[
                    AlarmSubscription(protocol="email", endpoint=e) for e in cfg.observability.alarm_emails
                ],
                page_subscriptions=page_subscriptions(cfg),
                thresholds=alarm_thresholds(
                    cfg.observability.thresholds, db_capacity(cfg, primary=self.is_primary)
                ),
                takes_writes=self.is_primary,
                watch_primary=not self.is_primary,
                # The region's components, as they are (labels: primary/replica-N, writer/reader-N,
                # cluster, xr-replica-N, writer for the proxy, node-N for the cache). A replica
                # region's standby proxy has no target (RDS) or only readers behind it until a
                # promotion: its alarms start with the region's writer role.
                watch=[
                    c
                    for c in (
                        self.pg,
                        self.replicas,
                        self.aurora_secondary,
                        self.proxy if self.is_primary else None,
                        self.cache,
                    )
                    if c is not None
                ],
                postgres_log_groups=log_groups if audit_bucket["audit_bucket_arn"] is not None else {},
                create_dashboard=cfg.observability.dashboard,
                tags=self._tags,
                **audit_bucket,  # type: ignore[arg-type]
            ),
            opts=self._child,
        )
        self.alarm_topic_arn = self.observability.topic_arn
        self._resolve_topic_arn(self.observability.topic_arn)

    def handles(self) -> PrimaryHandles:
        """Handles replica regions need (only meaningful on the primary region's stack)."""
        if not self.is_primary:
            raise ValueError(f"{self._name} is a replica region; only the primary region hands out handles")
        return PrimaryHandles(
            region=self.region,
            db_source_arn=self._db_source_arn,
            db_secret_arn=self.db_secret_arn,
            monitoring_role_arn=self._monitoring_role_arn,
            cache_global_group_id=self._cache_global_group_id,
            cache_auth_secret_arn=self.redis_auth_secret_arn,
            aurora_global_cluster_id=self.pg.global_cluster_id if self.pg else None,
            aurora_writer=self.pg.instances[0] if self.pg and self.pg.is_aurora else None,
            db_app_secret_arns=dict(self.pg.app_secret_arns) if self.pg else {},
        )
