"""Multi-language ``ObservabilityLayer``: alarm topic, alarms, events and dashboard for one region.

Python callers hand the layer label -> id maps of what to watch; other languages do the same with
the ids other components output (``instanceIdentifiers``, ``proxyName``, ``memberClusterIds``), or
use the composite ``Database`` component, which wires them itself.
"""

import dataclasses
from typing import Any, NotRequired, TypedDict

import pulumi

from ..observability_layer import AlarmSubscription as _AlarmSubscription
from ..observability_layer import AlarmThresholds as _AlarmThresholds
from ..observability_layer import ObservabilityLayer as _ObservabilityLayer
from ..observability_layer import ObservabilityLayerArgs as _ObservabilityLayerArgs
from ._convert import coerce_args
from ._outputs import outputs_of, publish
from .enums import SubscriptionProtocol


class AlarmSubscription(TypedDict):
    """One SNS subscription of the alarm topic."""

    protocol: SubscriptionProtocol
    """SNS protocol."""
    endpoint: pulumi.Input[str]
    """Address, URL or ARN matching the protocol."""


def _thresholds_type() -> type:
    """A TypedDict with one optional number per :class:`AlarmThresholds` field, kept in sync with it.

    Its module and name are the dataclass's, so the schema analyzer (which reads property
    descriptions from the class source) finds the dataclass's documented fields: one source of
    truth for 27 thresholds and their defaults.
    """
    fields = {
        f.name: NotRequired[int if f.type in ("int", int) else float]
        for f in dataclasses.fields(_AlarmThresholds)
    }
    typed = TypedDict("AlarmThresholds", fields)  # type: ignore[misc]
    typed.__module__ = _AlarmThresholds.__module__
    typed.__qualname__ = _AlarmThresholds.__qualname__
    typed.__doc__ = _AlarmThresholds.__doc__
    return typed


AlarmThresholds = _thresholds_type()


class ObservabilitySettings(TypedDict):
    """Alarm topic, alarms, dashboard and event settings (the Database component's observability)."""

    subscriptions: NotRequired[list[AlarmSubscription]]
    """Subscriptions of the alarm topic (e.g. a central ops queue or endpoint). Default: []."""
    thresholds: NotRequired[AlarmThresholds]  # type: ignore[valid-type]
    """Alarm thresholds; unset ones keep their documented defaults. Default: the defaults."""
    rds_event_categories: NotRequired[list[str]]
    """Categories of the db-instance event subscription. Default: availability, failover, failure,
    low storage, maintenance, notification, recovery, read replica."""
    cache_event_types: NotRequired[list[str]]
    """ElastiCache EventBridge detail-types routed to the topic. Default: the failure and limit events."""
    create_dashboard: NotRequired[bool]
    """Create the CloudWatch dashboard. Default: true."""
    tags: NotRequired[dict[str, str]]
    """Tags on every taggable child. Default: {}."""


class ObservabilityLayerInputs(TypedDict):
    """Inputs of the ObservabilityLayer component: what to watch (label -> id) and how."""

    region: NotRequired[str]
    """Region of this layer (dashboard widgets). Default: the provider's."""
    alarm_topic_arn: NotRequired[pulumi.Input[str]]
    """Existing ticket topic (a central ops topic) instead of creating one. Default: unset."""
    page_topic_arn: NotRequired[pulumi.Input[str]]
    """Existing page topic instead of creating one. Default: unset."""
    kms_key_arn: pulumi.Input[str]
    """This region's CMK for the SNS topic and log groups; its key policy must let CloudWatch and
    RDS events use it. Required."""
    subscriptions: NotRequired[list[AlarmSubscription]]
    """Subscriptions of the alarm topic. Default: []."""
    thresholds: NotRequired[AlarmThresholds]  # type: ignore[valid-type]
    """Alarm thresholds; unset ones keep their documented defaults. Default: the defaults."""
    db_instances: NotRequired[dict[str, pulumi.Input[str]]]
    """Writable RDS instances (label -> DB instance identifier). Default: {}."""
    db_replicas: NotRequired[dict[str, pulumi.Input[str]]]
    """RDS read replicas in this region (label -> identifier), with a ReplicaLag alarm. Default: {}."""
    db_clusters: NotRequired[dict[str, pulumi.Input[str]]]
    """Aurora clusters (label -> cluster identifier) for a db-cluster event subscription. Default: {}."""
    proxies: NotRequired[dict[str, pulumi.Input[str]]]
    """RDS Proxies (label -> proxy name). Default: {}."""
    proxy_target_group: NotRequired[str]
    """Target group name in the proxy AvailabilityPercentage dimension. Default: default."""
    cache_clusters: NotRequired[dict[str, pulumi.Input[str]]]
    """ElastiCache member clusters (label -> CacheClusterId, e.g. <group>-001). Default: {}."""
    rds_event_categories: NotRequired[list[str]]
    """Categories of the db-instance event subscription. Default: availability, failover, failure,
    low storage, maintenance, notification, recovery, read replica."""
    rds_cluster_event_categories: NotRequired[list[str]]
    """Categories of the db-cluster event subscription. Default: failover, failure, maintenance,
    notification, global-failover."""
    cache_event_types: NotRequired[list[str]]
    """ElastiCache EventBridge detail-types routed to the topic. Default: the failure and limit events."""
    postgres_log_groups: NotRequired[dict[str, pulumi.Input[str]]]
    """Label -> RDS postgresql log group shipped to the audit bucket. Default: {}."""
    audit_bucket_arn: NotRequired[pulumi.Input[str]]
    """Audit bucket receiving the postgresql logs via Firehose. Default: unset (no delivery)."""
    audit_bucket_kms_key_arn: NotRequired[pulumi.Input[str]]
    """CMK of the audit bucket (required with auditBucketArn). Default: unset."""
    audit_log_prefix: NotRequired[str]
    """Object prefix of the delivered logs. Default: rds-logs/."""
    create_dashboard: NotRequired[bool]
    """Create the CloudWatch dashboard. Default: true."""
    tags: NotRequired[dict[str, str]]
    """Tags on every taggable child. Default: {}."""


OBSERVABILITY_OUTPUTS = ("topic_arn", "alarm_names", "dashboard_name", "firehose_stream_arn")


def observability_fields(inputs: dict[str, Any]) -> dict[str, Any]:
    """ObservabilityLayerArgs fields from coerced wrapper inputs (nested dataclasses built)."""
    fields = dict(inputs)
    if "subscriptions" in fields:
        fields["subscriptions"] = [_AlarmSubscription(**s) for s in fields["subscriptions"]]
    if "thresholds" in fields:
        fields["thresholds"] = _AlarmThresholds(**fields["thresholds"])
    return fields


def build_observability(name: str, fields: dict[str, Any], parent: pulumi.Resource) -> _ObservabilityLayer:
    """The real :class:`ObservabilityLayer` (child of ``parent``) from Args fields by name."""
    args = _ObservabilityLayerArgs(**fields)
    return _ObservabilityLayer(name, args, opts=pulumi.ResourceOptions(parent=parent))


class ObservabilityLayer(pulumi.ComponentResource):
    """One region's observability for the database tier: an encrypted SNS alarm topic, M-of-N
    CloudWatch alarms for RDS, RDS Proxy and ElastiCache, RDS and ElastiCache event routing, a
    dashboard and optional PostgreSQL log delivery to an audit bucket."""

    topic_arn: pulumi.Output[str]
    """ARN of the alarm SNS topic."""
    alarm_names: pulumi.Output[list[str]]
    """Names of every CloudWatch alarm created."""
    dashboard_name: pulumi.Output[str] | None
    """Name of the CloudWatch dashboard (absent when disabled)."""
    firehose_stream_arn: pulumi.Output[str] | None
    """Firehose stream delivering logs to the audit bucket (absent without one)."""

    def __init__(
        self, name: str, args: ObservabilityLayerInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("commerce:index:ObservabilityLayer", name, {}, opts)
        fields = observability_fields(coerce_args(ObservabilityLayerInputs, args))
        layer = build_observability(name, fields, self)
        publish(self, outputs_of(layer, OBSERVABILITY_OUTPUTS), OBSERVABILITY_OUTPUTS)
