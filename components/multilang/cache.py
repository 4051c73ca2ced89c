"""Multi-language ``CacheLayer``: TypedDict inputs in front of the frozen CacheLayerArgs.

Global Datastore roles and secret replication stay Python-only for now (they wire regions
together through explicit providers, which a single multi-language component cannot express).
"""

from typing import Any, NotRequired, TypedDict

import pulumi

from ..cache_layer import CacheLayer as _CacheLayer
from ..cache_layer import CacheLayerArgs as _CacheLayerArgs
from ._convert import coerce_args
from ._outputs import outputs_of, publish
from .enums import AuthTokenUpdateStrategy, CacheEngine


class CacheSettings(TypedDict):
    """ElastiCache settings (the Database component's cache; placement and key come from postgres)."""

    engine: NotRequired[CacheEngine]
    """Cache engine. Default: redis."""
    engine_version: NotRequired[str]
    """Engine version; picks the parameter group family. Default: 7.1."""
    node_type: NotRequired[str]
    """Node type. Default: cache.r7g.large."""
    num_cache_clusters: NotRequired[int]
    """Nodes in the single-shard group (primary plus replicas, 2-6 for Multi-AZ failover). Default: 2."""
    port: NotRequired[int]
    """Port for clients and the security-group rule. Default: 6379."""
    maxmemory_policy: NotRequired[str]
    """Eviction policy; volatile-lru never evicts keys without a TTL. Default: volatile-lru."""
    extra_parameters: NotRequired[dict[str, str]]
    """Further parameter-group settings (name -> value). Default: {}."""
    snapshot_retention_limit: NotRequired[int]
    """Days of automatic snapshots kept (0 disables, max 35). Default: 7."""
    snapshot_window: NotRequired[str]
    """Daily UTC snapshot window hh:mm-hh:mm. Default: 03:00-04:00."""
    maintenance_window: NotRequired[str]
    """Weekly UTC maintenance window ddd:hh:mm-ddd:hh:mm. Default: sun:05:00-sun:06:00."""
    apply_immediately: NotRequired[bool]
    """Apply modifications now instead of in the maintenance window. Default: false."""
    auto_minor_version_upgrade: NotRequired[bool]
    """Minor engine upgrades in the maintenance window. Default: true."""
    auth_token_length: NotRequired[int]
    """Length of the generated AUTH token (16-128). Default: 64."""
    auth_token_use_special: NotRequired[bool]
    """Special characters (ElastiCache's allowed set) in the token. Default: false."""
    auth_token_update_strategy: NotRequired[AuthTokenUpdateStrategy]
    """How a changed token is applied. Default: ROTATE."""
    secret_recovery_window_days: NotRequired[int]
    """Recovery window of the AUTH-token secret (0, or 7-30 days). Default: 7."""
    log_delivery: NotRequired[bool]
    """Deliver slow-log and engine-log to CloudWatch Logs. Default: true."""
    log_retention_days: NotRequired[int]
    """Retention of those log groups (a CloudWatch Logs allowed value). Default: 30."""
    allowed_security_groups: NotRequired[dict[str, pulumi.Input[str]]]
    """Label -> security group admitted to the cache port (the allow_from capability). Default: {}."""
    description: NotRequired[str]
    """Replication group description. Default: the component's default."""
    tags: NotRequired[dict[str, str]]
    """Tags on every taggable child. Default: {}."""


class CacheLayerInputs(TypedDict):
    """Inputs of the CacheLayer component: placement, key and cache settings."""

    vpc_id: pulumi.Input[str]
    """VPC of the cache nodes. Required."""
    subnet_ids: pulumi.Input[list[pulumi.Input[str]]]
    """Private subnets (at least 2 AZs for Multi-AZ). Required."""
    kms_key_arn: pulumi.Input[str]
    """CMK for at-rest encryption, the AUTH-token secret and the log groups. Required."""
    engine: NotRequired[CacheEngine]
    """Cache engine. Default: redis."""
    engine_version: NotRequired[str]
    """Engine version; picks the parameter group family. Default: 7.1."""
    node_type: NotRequired[str]
    """Node type. Default: cache.r7g.large."""
    num_cache_clusters: NotRequired[int]
    """Nodes in the single-shard group (primary plus replicas, 2-6 for Multi-AZ failover). Default: 2."""
    port: NotRequired[int]
    """Port for clients and the security-group rule. Default: 6379."""
    maxmemory_policy: NotRequired[str]
    """Eviction policy; volatile-lru never evicts keys without a TTL. Default: volatile-lru."""
    extra_parameters: NotRequired[dict[str, str]]
    """Further parameter-group settings (name -> value). Default: {}."""
    snapshot_retention_limit: NotRequired[int]
    """Days of automatic snapshots kept (0 disables, max 35). Default: 7."""
    snapshot_window: NotRequired[str]
    """Daily UTC snapshot window hh:mm-hh:mm. Default: 03:00-04:00."""
    maintenance_window: NotRequired[str]
    """Weekly UTC maintenance window ddd:hh:mm-ddd:hh:mm. Default: sun:05:00-sun:06:00."""
    apply_immediately: NotRequired[bool]
    """Apply modifications now instead of in the maintenance window. Default: false."""
    auto_minor_version_upgrade: NotRequired[bool]
    """Minor engine upgrades in the maintenance window. Default: true."""
    auth_token_length: NotRequired[int]
    """Length of the generated AUTH token (16-128). Default: 64."""
    auth_token_use_special: NotRequired[bool]
    """Special characters (ElastiCache's allowed set) in the token. Default: false."""
    auth_token_update_strategy: NotRequired[AuthTokenUpdateStrategy]
    """How a changed token is applied. Default: ROTATE."""
    secret_recovery_window_days: NotRequired[int]
    """Recovery window of the AUTH-token secret (0, or 7-30 days). Default: 7."""
    log_delivery: NotRequired[bool]
    """Deliver slow-log and engine-log to CloudWatch Logs. Default: true."""
    log_retention_days: NotRequired[int]
    """Retention of those log groups (a CloudWatch Logs allowed value). Default: 30."""
    allowed_security_groups: NotRequired[dict[str, pulumi.Input[str]]]
    """Label -> security group admitted to the cache port (the allow_from capability). Default: {}."""
    description: NotRequired[str]
    """Replication group description. Default: the component's default."""
    tags: NotRequired[dict[str, str]]
    """Tags on every taggable child. Default: {}."""


CACHE_OUTPUTS = (
    "primary_endpoint",
    "reader_endpoint",
    "port",
    "auth_token_secret_arn",
    "security_group_id",
    "replication_group_id",
    "member_cluster_ids",
)


def build_cache(name: str, fields: dict[str, Any], parent: pulumi.Resource) -> _CacheLayer:
    """The real :class:`CacheLayer` (child of ``parent``) from CacheLayerArgs fields by name."""
    args = _CacheLayerArgs(**fields)
    return _CacheLayer(name, args, opts=pulumi.ResourceOptions(parent=parent))


class CacheLayer(pulumi.ComponentResource):
    """ElastiCache Redis/Valkey replication group: Multi-AZ, encryption at rest (your CMK) and in
    transit, a generated AUTH token kept in Secrets Manager, tuned parameters, log delivery and a
    security group that admits only the groups you name."""

    primary_endpoint: pulumi.Output[str]
    """Primary (writer) endpoint address."""
    reader_endpoint: pulumi.Output[str]
    """Reader endpoint address (load-balanced over replicas)."""
    port: pulumi.Output[int]
    """Port clients connect to (TLS required)."""
    auth_token_secret_arn: pulumi.Output[str] | None
    """Secrets Manager secret holding the AUTH token."""
    security_group_id: pulumi.Output[str]
    """Security group of the cache nodes."""
    replication_group_id: pulumi.Output[str]
    """Id of the replication group."""
    member_cluster_ids: pulumi.Output[list[str]]
    """Member cache cluster ids (<group>-001 ...), one per node."""

    def __init__(self, name: str, args: CacheLayerInputs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:index:CacheLayer", name, {}, opts)
        cache = build_cache(name, coerce_args(CacheLayerInputs, args), self)
        publish(self, outputs_of(cache, CACHE_OUTPUTS), CACHE_OUTPUTS)
