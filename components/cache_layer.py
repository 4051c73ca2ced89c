"""CacheLayer: an ElastiCache Redis OSS / Valkey replication group, optionally in a Global Datastore.

One component per region. It owns the subnet group, the security group (port 6379 reachable only
from security groups named through :meth:`CacheLayer.allow_from`), the parameter group, the
replication group (Multi-AZ, automatic failover, >= 2 nodes, at-rest encryption with the region's
CMK, TLS required, an AUTH token from ``random.RandomPassword`` kept in a KMS-encrypted Secrets
Manager secret) and, for the Global Datastore primary, the ``GlobalReplicationGroup``.

Global Datastore secondaries join the primary's global group and deliberately do **not** set engine,
engine version, parameter group, node type, encryption or an AUTH token: AWS inherits those from the
global group and rejects them with ``InvalidParameterCombination`` otherwise.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ._protection import stateful
from ._security_groups import ingress_from, security_group
from .catalogue import check_cache_engine_version, check_node_type
from .validation import (
    ArgumentError,
    check_daily_window,
    check_log_retention,
    check_region,
    check_unique_label,
    check_weekly_window,
    coerce_args,
    stack_scoped,
    windows_overlap,
)

REDIS_PORT = 6379
"""Port the replication group listens on (the ElastiCache default)."""

AUTH_TOKEN_SPECIALS = "!&#$^<>-"
"""The only non-alphanumeric characters ElastiCache accepts in an AUTH token."""

_GLOBAL_DATASTORE_FAMILIES = ("m5", "m6g", "m7g", "r5", "r6g", "r6gd", "r7g", "c7gn")
# Sizes ElastiCache sells in those families, smallest first; "large" is the floor for Global Datastore.
_SIZES_LARGE_OR_ABOVE = (
    "large",
    "xlarge",
    "2xlarge",
    "4xlarge",
    "8xlarge",
    "12xlarge",
    "16xlarge",
    "24xlarge",
)
_NODE_TYPE_RE = re.compile(r"^cache\.([a-z0-9]+)\.([a-z0-9]+)$")
_MAXMEMORY_POLICIES = (
    "volatile-lru",
    "allkeys-lru",
    "volatile-lfu",
    "allkeys-lfu",
    "volatile-random",
    "allkeys-random",
    "volatile-ttl",
    "noeviction",
)


class GlobalDatastoreRole(enum.StrEnum):
    """This region's part in an ElastiCache Global Datastore."""

    NONE = "none"
    """A stand-alone replication group."""
    PRIMARY = "primary"
    """The writable group; the component also creates the ``GlobalReplicationGroup`` from it."""
    SECONDARY = "secondary"
    """A read-only group joining an existing global group (at most 2 per global group)."""


def check_global_datastore_node_type(node_type: str) -> None:
    """Raise ``ValueError`` unless ``node_type`` may join an ElastiCache Global Datastore.

    Global Datastore needs a non-burstable node of the M5, M6g, M7g, R5, R6g, R6gd, R7g or C7gn
    family, size ``large`` or above (e.g. ``cache.r7g.large``). Burstable ``t`` types, ``medium`` and
    ``small`` sizes are refused. Reused by the stack config parser.
    """
    match = _NODE_TYPE_RE.match(node_type) if isinstance(node_type, str) else None
    allowed = (
        f"a node type of family {', '.join(_GLOBAL_DATASTORE_FAMILIES)} with size large or above "
        "(e.g. cache.r7g.large); burstable (t*) and small/medium nodes are not supported by Global Datastore"
    )
    if match is None:
        raise ValueError(f"node_type {node_type!r} is not a valid ElastiCache node type; expected {allowed}")
    family, size = match.groups()
    if family not in _GLOBAL_DATASTORE_FAMILIES or size not in _SIZES_LARGE_OR_ABOVE:
        raise ValueError(f"node_type {node_type!r} cannot be used with Global Datastore; expected {allowed}")


def parameter_group_family(engine: str, engine_version: str) -> str:
    """ElastiCache parameter group family for an engine and version: ``redis7``, ``valkey8``, ...

    Redis OSS 6.x uses ``redis6.x``; 7.x uses ``redis7``; Valkey 7.x/8.x use ``valkey7``/``valkey8``.
    """
    major = engine_version.split(".", 1)[0]
    if engine == "redis" and major == "6":
        return "redis6.x"
    return f"{engine}{major}"


@dataclass(frozen=True, kw_only=True)
class CacheLayerArgs:
    """Inputs of :class:`CacheLayer`. Plain fields drive control flow; ``Input`` fields are wired."""

    vpc_id: pulumi.Input[str]
    """VPC of the cache nodes and their security group. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets (>= 2 AZs for Multi-AZ) for the cache subnet group. Required."""
    kms_key_arn: pulumi.Input[str] | None = None
    """ARN of this region's CMK: at-rest encryption of the nodes, the AUTH-token secret and the
    engine/slow-log groups. Required unless ``global_datastore_role`` is ``secondary``; a secondary
    given one names it as its nodes' key (AWS allows a secondary its own key), so ``kms_key_id``,
    which forces replacement, does not change when a failover makes it the primary. Default: None."""
    region: str | None = None
    """Region of the group, to check ``node_type`` against what ElastiCache sells there (see
    :mod:`commerce_db_components.catalogue`); None checks it against every region. Default: None."""
    engine: Literal["redis", "valkey"] = "redis"
    """Cache engine, lowercase as pulumi-aws v7 requires. Ignored by a secondary. Default: "redis"."""
    engine_version: str = "7.1"
    """Engine version (Redis OSS >= 5.0.6 for Global Datastore); picks the parameter group family
    (``redis7``, ``valkey8``...). Ignored by a secondary. Default: "7.1"."""
    node_type: str = "cache.r7g.large"
    """Node type. Global Datastore members need large+ non-burstable M5/M6g/M7g/R5/R6g/R6gd/R7g/C7gn
    (see :func:`check_global_datastore_node_type`). Not sent by a secondary (inherited), but still
    validated so that all members agree. Default: "cache.r7g.large"."""
    num_cache_clusters: int = 2
    """Nodes in the (single-shard) group: one primary plus replicas; >= 2 for Multi-AZ failover,
    at most 6. Default: 2."""
    port: int = REDIS_PORT
    """Port for clients and the security-group rule. Default: 6379."""
    maxmemory_policy: str = "volatile-lru"
    """Eviction policy. ``volatile-lru`` evicts only keys with a TTL (cache entries, sessions), so
    queues and counters that live in the same cluster without a TTL are never evicted; use
    ``allkeys-lru`` for a pure cache. Ignored by a secondary. Default: "volatile-lru"."""
    extra_parameters: Mapping[str, str] = field(default_factory=dict)
    """Further parameter-group settings (name -> value), applied after ``maxmemory-policy``.
    Empty values are refused: AWS returns such a parameter without a value, a diff on every
    `up` (leave the parameter out to keep ElastiCache's default). Default: {}."""
    snapshot_retention_limit: int = 7
    """Days of automatic snapshots kept (0 disables, max 35). Default: 7."""
    snapshot_window: str = "03:00-04:00"
    """Daily UTC snapshot window ``hh:mm-hh:mm`` (>= 60 min, must not overlap the maintenance
    window). Default: "03:00-04:00"."""
    maintenance_window: str = "sun:05:00-sun:06:00"
    """Weekly UTC maintenance window ``ddd:hh:mm-ddd:hh:mm`` (>= 60 min). Default: "sun:05:00-sun:06:00"."""
    apply_immediately: bool = False
    """Apply modifications now instead of in the maintenance window; keep False in prod. Default: False."""
    auto_minor_version_upgrade: bool = True
    """Let ElastiCache apply minor engine upgrades in the maintenance window. Default: True."""
    auth_token_length: int = 64
    """Length of the generated AUTH token (16-128). Default: 64."""
    auth_token_use_special: bool = False
    """Include special characters in the token, drawn only from ElastiCache's allowed set
    ``!&#$^<>-``. Off by default: 64 alphanumerics already carry ~380 bits, and ``#``/``&`` break
    naive ``redis://`` URLs. Default: False."""
    auth_token_update_strategy: Literal["ROTATE", "SET", "DELETE"] = "ROTATE"
    """How a changed token is applied. ``ROTATE`` keeps the old token valid next to the new one
    until the next ``SET`` so clients can roll over without an outage; pulumi-aws v7 has no default
    and requires it with ``auth_token``. Default: "ROTATE"."""
    secret_recovery_window_days: int = 7
    """Secrets Manager recovery window of the AUTH-token secret (0 = delete at once, else 7-30).
    Default: 7."""
    secret_replica_regions: Mapping[str, pulumi.Input[str] | None] = field(default_factory=dict)
    """Regions to replicate the AUTH-token secret to (region -> CMK ARN there, or None for the AWS
    managed key), so Global Datastore secondaries' apps can read the token locally. Default: {}."""
    auth_token_secret_arn: pulumi.Input[str | None] | None = None
    """Secondary only: ARN of the (replicated) primary token secret, passed through as this
    component's ``auth_token_secret_arn`` output. Default: None."""
    log_delivery: bool = True
    """Deliver slow-log and engine-log to CloudWatch Logs (JSON). Default: True."""
    log_retention_days: int = 30
    """Retention of those log groups (a CloudWatch Logs allowed value). Default: 30."""
    log_kms_key_arn: pulumi.Input[str] | None = None
    """CMK of those log groups. Default: None (use ``kms_key_arn``; a Global Datastore secondary,
    which takes no ``kms_key_arn``, should pass its region's key here)."""
    global_datastore_role: GlobalDatastoreRole = GlobalDatastoreRole.NONE
    """This region's part in a Global Datastore. Default: GlobalDatastoreRole.NONE."""
    global_replication_group_id_suffix: str | None = None
    """Primary only: suffix of the global group id (AWS prefixes it; unique per account). None:
    ``<name>-<stack>`` (lowercase, cut to 40), so two stacks never share it. Default: None."""
    global_replication_group_id: pulumi.Input[str | None] | None = None
    """Secondary only (required there): id of the primary's global group, usually the primary
    ``CacheLayer.global_replication_group_id`` output. Default: None."""
    create_global_group: bool = True
    """Primary only: create the ``GlobalReplicationGroup`` here. False leaves it to the caller (a
    stack keeps it outside every region's component, so a failover, which makes another region's
    group the primary, never moves or replaces it). Default: True."""
    subnet_group_name: pulumi.Input[str] | None = None
    """Bring your own: an existing ElastiCache subnet group; none is created. Default: None
    (``<name>-subnets`` from ``subnet_ids``)."""
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Bring your own: existing security groups for the nodes; none is created and
    :meth:`CacheLayer.allow_from` adds its rules to the first. Default: () (``<name>-sg``)."""
    parameter_group_name: pulumi.Input[str] | None = None
    """Bring your own: an existing parameter group of the engine's family; none is created and
    ``maxmemory_policy`` / ``extra_parameters`` are not applied (that group's settings rule).
    Ignored by a secondary. Default: None (``<name>-params``)."""
    allowed_security_groups: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Security groups (label -> id) allowed to reach the port, same as calling :meth:`allow_from`
    for each. Default: {}."""
    notification_topic_arn: pulumi.Input[str] | None = None
    """SNS topic (same account and region) for ElastiCache events: failovers, node replacements,
    snapshots failing. None sends none. Default: None."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Resources the replication group waits for. A Global Datastore takes one secondary at a
    time (AWS refuses a join while the global group is modifying), so a second secondary waits for
    the first one's replication group. Default: ()."""
    protect: bool = True
    """Pulumi ``protect`` and ``retain_on_delete`` on the replication group, the global group and
    the AUTH-token secret (sessions, queues and counters live in the cache). Default: True."""
    final_snapshot_identifier: str | None = None
    """Snapshot ElastiCache takes when the replication group is deleted (not for a Global
    Datastore secondary, whose data lives in the primary); must be unique in the account and
    region. None takes none. Default: None."""
    description: str = "commerce-db cache"
    """Replication group description. Default: "commerce-db cache"."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        role = self.global_datastore_role
        if not isinstance(role, GlobalDatastoreRole):
            try:
                object.__setattr__(self, "global_datastore_role", GlobalDatastoreRole(role))
            except ValueError:
                raise ValueError(
                    f"global_datastore_role {role!r} is invalid; allowed: none, primary, secondary"
                ) from None
            role = self.global_datastore_role
        if self.engine not in ("redis", "valkey"):
            raise ValueError(f"engine {self.engine!r} is invalid; allowed: 'redis' or 'valkey' (lowercase)")
        if not re.fullmatch(r"\d+\.\d+(\.\d+)?", self.engine_version):
            raise ValueError(
                f"engine_version {self.engine_version!r} is invalid; expected e.g. '7.1' or '8.0'"
            )
        if self.region is not None:
            check_region("region", self.region)
        if not _NODE_TYPE_RE.match(self.node_type):
            raise ArgumentError(
                "node_type", self.node_type,
                "allowed: an ElastiCache node type such as cache.r7g.large (with the cache. prefix)",
            )  # fmt: skip
        check_node_type(self.node_type, region=self.region)
        check_cache_engine_version(self.engine, self.engine_version)
        if role is not GlobalDatastoreRole.NONE:
            check_global_datastore_node_type(self.node_type)
            major_minor = tuple(int(x) for x in self.engine_version.split(".")[:3])
            if self.engine == "redis" and major_minor < (5, 0, 6):
                raise ValueError(
                    f"engine_version {self.engine_version!r} is too old for Global Datastore; "
                    "allowed: Redis OSS 5.0.6 or later, or Valkey"
                )
        if not 2 <= self.num_cache_clusters <= 6:
            raise ValueError(
                f"num_cache_clusters {self.num_cache_clusters} is invalid; allowed: 2-6 "
                "(Multi-AZ automatic failover needs a primary and at least one replica)"
            )
        if not 1024 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is invalid; allowed: 1024-65535")
        if self.maxmemory_policy not in _MAXMEMORY_POLICIES:
            raise ValueError(
                f"maxmemory_policy {self.maxmemory_policy!r} is invalid; "
                f"allowed: {', '.join(_MAXMEMORY_POLICIES)}"
            )
        if not 0 <= self.snapshot_retention_limit <= 35:
            raise ValueError(
                f"snapshot_retention_limit {self.snapshot_retention_limit} is invalid; allowed: 0-35"
            )
        # ElastiCache: both windows at least 60 minutes, and they must not overlap.
        check_daily_window("snapshot_window", self.snapshot_window, min_minutes=60)
        check_weekly_window("maintenance_window", self.maintenance_window, min_minutes=60)
        if self.snapshot_retention_limit > 0 and windows_overlap(
            self.maintenance_window, self.snapshot_window
        ):
            raise ArgumentError(
                "snapshot_window", self.snapshot_window,
                f"overlaps maintenance_window {self.maintenance_window!r}; allowed: non-overlapping windows",
            )  # fmt: skip
        if not 16 <= self.auth_token_length <= 128:
            raise ValueError(f"auth_token_length {self.auth_token_length} is invalid; allowed: 16-128")
        if self.auth_token_update_strategy not in ("ROTATE", "SET", "DELETE"):
            raise ValueError(
                f"auth_token_update_strategy {self.auth_token_update_strategy!r} is invalid; "
                "allowed: ROTATE, SET, DELETE"
            )
        if self.secret_recovery_window_days != 0 and not 7 <= self.secret_recovery_window_days <= 30:
            raise ValueError(
                f"secret_recovery_window_days {self.secret_recovery_window_days} is invalid; "
                "allowed: 0 or 7-30"
            )
        check_log_retention("log_retention_days", self.log_retention_days)
        suffix = self.global_replication_group_id_suffix
        if suffix is not None and not re.fullmatch(r"[a-z][a-z0-9-]{0,39}", suffix):
            raise ValueError(
                f"global_replication_group_id_suffix {self.global_replication_group_id_suffix!r} is invalid; "
                "allowed: 1-40 lowercase letters, digits and hyphens, starting with a letter"
            )
        if self.final_snapshot_identifier is not None and not re.fullmatch(
            r"[a-zA-Z][a-zA-Z0-9-]{0,254}", self.final_snapshot_identifier
        ):
            raise ValueError(
                f"final_snapshot_identifier {self.final_snapshot_identifier!r} is invalid; allowed: "
                "1-255 letters, digits and hyphens, starting with a letter"
            )
        if role is GlobalDatastoreRole.SECONDARY:
            if self.final_snapshot_identifier is not None:
                raise ValueError(
                    "final_snapshot_identifier is set on a Global Datastore secondary; allowed only on "
                    "the primary or a stand-alone group (a secondary's data lives in the primary)"
                )
            if self.global_replication_group_id is None:
                raise ValueError(
                    "global_replication_group_id is None; a Global Datastore secondary needs the "
                    "primary's global replication group id"
                )
            if self.secret_replica_regions:
                raise ValueError(
                    "secret_replica_regions is set on a secondary; allowed only on the primary, "
                    "which owns the AUTH-token secret"
                )
        else:
            if self.kms_key_arn is None:
                raise ValueError(
                    f"kms_key_arn is None for global_datastore_role {role.value!r}; a CMK ARN is required "
                    "for at-rest encryption (only a secondary inherits it)"
                )
            if self.global_replication_group_id is not None:
                raise ValueError(
                    f"global_replication_group_id is set for global_datastore_role {role.value!r}; "
                    "allowed only for a secondary"
                )
            if self.auth_token_secret_arn is not None:
                raise ValueError(
                    f"auth_token_secret_arn is set for global_datastore_role {role.value!r}; allowed only "
                    "for a secondary (the others create their own secret)"
                )
        seen: set[str] = set()
        for label in self.allowed_security_groups:
            check_unique_label(label, seen, owner="allowed_security_groups")
        for pname, pvalue in self.extra_parameters.items():
            if not isinstance(pvalue, str) or pvalue == "":
                raise ValueError(
                    f"extra_parameters[{pname!r}] = {pvalue!r} is invalid; allowed: a non-empty string "
                    "(AWS returns an empty parameter without a value, so every `up` would show a diff; "
                    "leave the parameter out for ElastiCache's default)"
                )


class CacheLayer(pulumi.ComponentResource):
    """ElastiCache replication group with its network, parameters, AUTH token and Global Datastore role."""

    primary_endpoint: pulumi.Output[str]
    """Primary (writer) endpoint address."""
    reader_endpoint: pulumi.Output[str]
    """Reader endpoint address (load-balanced over replicas)."""
    port: pulumi.Output[int]
    """Port clients connect to (TLS required)."""
    auth_token_secret_arn: pulumi.Output[str | None]
    """ARN of the Secrets Manager secret holding the AUTH token (the passed-through ARN for a
    secondary, None if none was given)."""
    security_group_id: pulumi.Output[str]
    """Security group of the cache nodes."""
    replication_group_id: pulumi.Output[str]
    """Id of the replication group."""
    global_replication_group_id: pulumi.Output[str | None]
    """Id of the global group: created here for the primary, the given id for a secondary, None otherwise."""
    member_cluster_ids: list[pulumi.Output[str]]
    """Member cache cluster ids (``<group>-001`` ...), one per node, known-length for per-node alarms."""

    def __init__(self, name: str, args: CacheLayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args = coerce_args(args, CacheLayerArgs)
        super().__init__("commerce:db:CacheLayer", name, None, opts)
        self._name = name
        self._port = args.port
        self._rule_labels: set[str] = set()
        tags = {**args.tags, "component": "CacheLayer"}

        subnet_group_name = self._placement(name, args, tags)
        common = self._group_settings(args, subnet_group_name, self._log_delivery(name, args, tags), tags)
        self.global_replication_group_id: pulumi.Output[str | None]
        if args.global_datastore_role is GlobalDatastoreRole.SECONDARY:
            group = self._secondary_group(name, args, common)
        else:
            group = self._primary_group(name, args, common, tags)
        self.replication_group = group
        self.replication_group_id = group.id
        self.primary_endpoint = group.primary_endpoint_address
        self.reader_endpoint = group.reader_endpoint_address
        self.port = group.port.apply(lambda p: int(p) if p is not None else args.port)
        # ElastiCache names members <group>-001, -002 ...; a known-length list lets callers create
        # one alarm per node at plan time.
        self.member_cluster_ids = [
            group.id.apply(lambda gid, n=n: f"{gid}-{n:03d}") for n in range(1, args.num_cache_clusters + 1)
        ]
        for label, sg_id in args.allowed_security_groups.items():
            self.allow_from(label, sg_id)

        self.register_outputs(
            {
                "primary_endpoint": self.primary_endpoint,
                "reader_endpoint": self.reader_endpoint,
                "port": self.port,
                "auth_token_secret_arn": self.auth_token_secret_arn,
                "security_group_id": self.security_group_id,
                "replication_group_id": self.replication_group_id,
                "global_replication_group_id": self.global_replication_group_id,
                "member_cluster_ids": self.member_cluster_ids,
            }
        )

    # -- the steps of __init__, in order ------------------------------------------------------

    def _placement(self, name: str, args: CacheLayerArgs, tags: Mapping[str, str]) -> pulumi.Output[str]:
        """The given subnet group and security groups, or ``<name>-subnets`` and ``<name>-sg`` (no
        rules: ingress only through :meth:`allow_from`)."""
        child = pulumi.ResourceOptions(parent=self)
        if args.subnet_group_name is not None:
            subnet_group_name = pulumi.Output.from_input(args.subnet_group_name)
        else:
            subnet_group_name = aws.elasticache.SubnetGroup(
                f"{name}-subnets",
                description=f"{args.description} subnets",
                subnet_ids=args.subnet_ids,
                tags=tags,
                opts=child,
            ).name
        if args.security_group_ids:
            # The team's groups: the nodes use them all; allow_from adds rules to the first.
            self._groups: list[pulumi.Input[str]] = list(args.security_group_ids)
        else:
            # No inline rules: ingress comes only from allow_from() (named SGs, never CIDRs), and the
            # provider drops AWS's default allow-all egress, which cache nodes do not need.
            sg = security_group(
                f"{name}-sg",
                f"{args.description}: port {args.port} from allowed security groups only",
                args.vpc_id,
                tags,
                self,
            )
            self._groups = [sg.id]
        self.security_group_id = pulumi.Output.from_input(self._groups[0])
        return subnet_group_name

    def _log_delivery(
        self, name: str, args: CacheLayerArgs, tags: Mapping[str, str]
    ) -> list[aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs]:
        """``<name>-slow-log`` / ``<name>-engine-log`` groups (retention, CMK) and their delivery."""
        child = pulumi.ResourceOptions(parent=self)
        log_configs: list[aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs] = []
        if args.log_delivery:
            for log_type in ("slow-log", "engine-log"):
                group = aws.cloudwatch.LogGroup(
                    f"{name}-{log_type}",
                    # The stack in the name: two stacks of one program never share a log group.
                    name=f"/aws/elasticache/{pulumi.get_stack()}/{name}/{log_type}",
                    retention_in_days=args.log_retention_days,
                    kms_key_id=args.log_kms_key_arn or args.kms_key_arn,
                    tags=tags,
                    opts=child,
                )
                log_configs.append(
                    aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                        destination=group.name,
                        destination_type="cloudwatch-logs",
                        log_format="json",
                        log_type=log_type,
                    )
                )
        return log_configs

    def _group_settings(
        self,
        args: CacheLayerArgs,
        subnet_group_name: pulumi.Output[str],
        log_configs: list[aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs],
        tags: Mapping[str, str],
    ) -> dict[str, Any]:
        """Replication-group arguments every role sends."""
        return {
            "description": args.description,
            "subnet_group_name": subnet_group_name,
            "security_group_ids": self._groups,
            "num_cache_clusters": args.num_cache_clusters,
            # Secondaries inherit these from the global group, but need >= 2 nodes for them; setting
            # them explicitly keeps every member Multi-AZ with automatic failover.
            "multi_az_enabled": True,
            "automatic_failover_enabled": True,
            "snapshot_retention_limit": args.snapshot_retention_limit,
            "snapshot_window": args.snapshot_window,
            "maintenance_window": args.maintenance_window,
            "apply_immediately": args.apply_immediately,
            "log_delivery_configurations": log_configs or None,
            "notification_topic_arn": args.notification_topic_arn,
            "tags": tags,
        }

    def _secondary_group(
        self, name: str, args: CacheLayerArgs, common: Mapping[str, Any]
    ) -> aws.elasticache.ReplicationGroup:
        """A Global Datastore secondary joining the primary's global group."""
        # Engine, version, node type, parameter group, encryption and AUTH token all come from
        # the global group; AWS answers InvalidParameterCombination if any is sent. Engine
        # upgrades (and so auto minor upgrades) are driven through the global group too.
        group = aws.elasticache.ReplicationGroup(
            f"{name}-rg",
            global_replication_group_id=args.global_replication_group_id,
            # A secondary may name its own region's CMK; the primary in this region (after a
            # failover) names the same key, so the ForceNew kms_key_id never changes with the role.
            kms_key_id=args.kms_key_arn,
            **common,
            opts=stateful(
                self,
                args.protect,
                depends_on=list(args.depends_on),
                # The member's token is the Global Datastore's: a group that becomes a secondary (a
                # failover's old primary, kept) must not send its own token away (the provider would
                # send an empty AuthToken, which ElastiCache refuses).
                ignore_changes=["authToken", "authTokenUpdateStrategy"],
            ),
        )
        self.auth_token_secret_arn = pulumi.Output.from_input(args.auth_token_secret_arn)
        self.global_replication_group_id = pulumi.Output.from_input(args.global_replication_group_id)
        return group

    def _primary_group(
        self, name: str, args: CacheLayerArgs, common: Mapping[str, Any], tags: Mapping[str, str]
    ) -> aws.elasticache.ReplicationGroup:
        """A stand-alone or Global Datastore primary group: parameters, AUTH token and its secret,
        the group and (primary) the global group."""
        child = pulumi.ResourceOptions(parent=self)
        role = args.global_datastore_role
        params_name: pulumi.Input[str] = (
            args.parameter_group_name
            or aws.elasticache.ParameterGroup(
                f"{name}-params",
                family=parameter_group_family(args.engine, args.engine_version),
                description=f"{args.description} parameters",
                parameters=[
                    aws.elasticache.ParameterGroupParameterArgs(name=k, value=v)
                    for k, v in _parameters(args).items()
                ],
                tags=tags,
                # Auto-named, so a family change creates the new group before the old is deleted.
                opts=child,
            ).name
        )
        token = random.RandomPassword(
            f"{name}-auth-token",
            length=args.auth_token_length,
            special=args.auth_token_use_special,
            override_special=AUTH_TOKEN_SPECIALS,
            min_special=1 if args.auth_token_use_special else 0,
            opts=child,
        )
        group = aws.elasticache.ReplicationGroup(
            f"{name}-rg",
            engine=args.engine,
            engine_version=args.engine_version,
            node_type=args.node_type,
            port=args.port,
            parameter_group_name=params_name,
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            auto_minor_version_upgrade=args.auto_minor_version_upgrade,
            transit_encryption_enabled=True,
            # "required" rejects plaintext clients; the mode exists from Redis OSS 7 / Valkey.
            transit_encryption_mode="required" if _supports_transit_mode(args) else None,
            auth_token=token.result,
            # pulumi-aws v7 has no default; ROTATE keeps the old token valid during a change.
            auth_token_update_strategy=args.auth_token_update_strategy,
            final_snapshot_identifier=args.final_snapshot_identifier,
            **common,
            opts=stateful(
                self,
                args.protect,
                depends_on=list(args.depends_on),
                additional_secret_outputs=["authToken"],
                # In a Global Datastore the global group owns the engine version (upgrades go
                # through it) and AWS moves the member to a "global-datastore-..." parameter
                # group when it joins; AWS rejects changing either on a member, so the member
                # must not fight them with its own values.
                ignore_changes=(
                    ["engineVersion", "parameterGroupName"] if role is GlobalDatastoreRole.PRIMARY else None
                ),
            ),
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-auth-token",
            description=f"AUTH token of ElastiCache group {name} (JSON: auth_token, port, tls)",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=args.secret_recovery_window_days,
            replicas=[
                aws.secretsmanager.SecretReplicaArgs(region=region, kms_key_id=key)
                for region, key in sorted(args.secret_replica_regions.items())
            ]
            or None,
            tags=tags,
            opts=stateful(self, args.protect),
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-auth-token",
            secret_id=secret.id,
            # Secret as a whole (the token inside already is): never plain in state or previews.
            # No endpoints inside: the secret is replicated to the Global Datastore secondaries'
            # regions, where the primary's endpoints would be the wrong ones.
            secret_string=_secret_json(
                {
                    "auth_token": token.result,
                    "port": args.port,
                    "tls": True,
                }
            ),
            opts=child,
        )
        self.auth_token_secret_arn = secret.arn
        if role is GlobalDatastoreRole.PRIMARY and args.create_global_group:
            global_group = aws.elasticache.GlobalReplicationGroup(
                f"{name}-global",
                global_replication_group_id_suffix=args.global_replication_group_id_suffix
                or stack_scoped(name, alphabet="a-z0-9-", max_length=40, lower=True),
                global_replication_group_description=f"{args.description} (Global Datastore)",
                primary_replication_group_id=group.id,
                automatic_failover_enabled=True,
                # No parameter_group_name / engine_version here: the global group inherits
                # them from the primary, and setting them outside a major upgrade fails.
                opts=stateful(self, args.protect),
            )
            self.global_replication_group_id = global_group.global_replication_group_id
        else:
            self.global_replication_group_id = pulumi.Output.from_input(None)

        return group

    def allow_from(
        self, label: str, source_security_group_id: pulumi.Input[str]
    ) -> aws.vpc.SecurityGroupIngressRule:
        """Allow TCP on the cache port from security group ``source_security_group_id``.

        ``label`` (1-40 lowercase letters, digits, hyphens; unique per component) names the rule
        ``<name>-from-<label>``. Only security-group sources exist: there is no CIDR variant, so
        the cache is never opened to an address range (let alone 0.0.0.0/0).
        """
        check_unique_label(label, self._rule_labels, owner=self._name)
        return ingress_from(
            f"{self._name}-from-{label}",
            security_group_id=self._groups[0],
            source_security_group_id=source_security_group_id,
            port=self._port,
            description=f"cache port from {label}",
            parent=self,
        )


def _parameters(args: CacheLayerArgs) -> dict[str, str]:
    """Parameter-group settings: defaults first, then ``extra_parameters``."""
    # notify-keyspace-events is left at ElastiCache's default (off): AWS returns a parameter with
    # an empty value without one, so declaring "" would show a diff on every `up`.
    return {"maxmemory-policy": args.maxmemory_policy, **args.extra_parameters}


def _secret_json(value: dict[str, Any]) -> pulumi.Output[str]:
    """JSON text of ``value`` as a Pulumi secret."""
    text: Any = pulumi.Output.json_dumps(value)
    return pulumi.Output.secret(text)


def _supports_transit_mode(args: CacheLayerArgs) -> bool:
    return args.engine == "valkey" or int(args.engine_version.split(".", 1)[0]) >= 7
