"""Multi-language ``Database``: PostgresCluster, optional ProxyLayer, CacheLayer and
ObservabilityLayer wired together as one component.

Across languages a component cannot take another component as an input, so the wiring Python
programs do by passing components (``ProxyLayerArgs(target=db)``, the alarm maps of what to
watch) happens here: the proxy targets the cluster, the cache shares its VPC, subnets and CMK,
the observability layer watches every instance, the proxy and every cache node, and
``app_security_groups`` are admitted where apps connect (proxy or writer, replicas, cache).
"""

from typing import Any, NotRequired, TypedDict

import pulumi

from ._convert import coerce_args
from ._outputs import publish
from .cache import CacheSettings, build_cache
from .observability import ObservabilitySettings, build_observability, observability_fields
from .postgres import PostgresClusterInputs, build_postgres
from .proxy import ProxySettings, build_proxy


class DatabaseInputs(TypedDict):
    """Inputs of the Database component: the PostgreSQL cluster and the optional layers around it."""

    postgres: PostgresClusterInputs
    """The PostgreSQL cluster (region, VPC, subnets, CMK and settings). Required."""
    proxy: NotRequired[ProxySettings]
    """An RDS Proxy in front of the writer; absent: apps connect to the writer directly. Default: none."""
    cache: NotRequired[CacheSettings]
    """An ElastiCache group in the cluster's VPC, subnets and CMK. Default: none."""
    observability: NotRequired[ObservabilitySettings]
    """Alarms, events and dashboard watching everything above. Default: none."""
    app_security_groups: NotRequired[dict[str, pulumi.Input[str]]]
    """Label -> application security group admitted to the proxy (or the writer without a proxy),
    the read replicas and the cache. Default: {}."""


DATABASE_OUTPUTS = (
    "writer_endpoint",
    "reader_endpoints",
    "port",
    "secret_arn",
    "db_security_group_id",
    "resource_ids",
    "instance_identifiers",
    "proxy_name",
    "redis_primary_endpoint",
    "redis_reader_endpoint",
    "redis_port",
    "redis_auth_secret_arn",
    "alarm_topic_arn",
)


class Database(pulumi.ComponentResource):
    """The database tier of one region as one component: PostgreSQL (RDS or Aurora) with an optional
    RDS Proxy, ElastiCache cache and CloudWatch alarms, wired to each other and to your apps."""

    writer_endpoint: pulumi.Output[str]
    """Where apps write: the proxy endpoint, or the writer address without a proxy."""
    reader_endpoints: pulumi.Output[list[str]]
    """Where apps read: replica addresses (RDS), the reader endpoint (Aurora)."""
    port: pulumi.Output[int]
    """Port of writerEndpoint."""
    secret_arn: pulumi.Output[str]
    """Secrets Manager secret with the master credentials."""
    db_security_group_id: pulumi.Output[str]
    """Security group of the writer."""
    resource_ids: pulumi.Output[list[str]]
    """rds-db:connect resource ids of the cluster."""
    instance_identifiers: pulumi.Output[list[str]]
    """DB instance identifiers, writer first."""
    proxy_name: pulumi.Output[str] | None
    """RDS Proxy name (absent without a proxy)."""
    redis_primary_endpoint: pulumi.Output[str] | None
    """Cache primary endpoint (absent without a cache)."""
    redis_reader_endpoint: pulumi.Output[str] | None
    """Cache reader endpoint (absent without a cache)."""
    redis_port: pulumi.Output[int] | None
    """Cache port, TLS required (absent without a cache)."""
    redis_auth_secret_arn: pulumi.Output[str] | None
    """Secret holding the cache AUTH token (absent without a cache)."""
    alarm_topic_arn: pulumi.Output[str] | None
    """SNS alarm topic (absent without observability)."""

    def __init__(self, name: str, args: DatabaseInputs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:index:Database", name, {}, opts)
        inputs = coerce_args(DatabaseInputs, args)
        apps: dict[str, Any] = inputs.get("app_security_groups") or {}
        pg_inputs: dict[str, Any] = inputs["postgres"]
        pg, pg_args = build_postgres(name, pg_inputs, self)
        values: dict[str, Any] = {
            "writer_endpoint": pg.writer_endpoint,
            "reader_endpoints": pg.reader_endpoints,
            "port": pg.port,
            "secret_arn": pg.secret_arn,
            "db_security_group_id": pg.security_group_id,
            "resource_ids": pg.resource_ids,
            "instance_identifiers": pg.instance_identifiers,
        }
        placement = {"vpc_id": pg_inputs["vpc_id"], "subnet_ids": pg_inputs["subnet_ids"]}
        tags = pg_inputs.get("tags") or {}

        proxy = None
        if "proxy" in inputs:
            settings = {"tags": tags, **inputs["proxy"]}
            settings["allowed_security_groups"] = {**apps, **settings.get("allowed_security_groups", {})}
            proxy = build_proxy(
                f"{name}-proxy", pg, {"region": pg_args.region, **placement, **settings}, self
            )
            values.update(
                writer_endpoint=proxy.writer_endpoint,
                reader_endpoints=proxy.reader_endpoints,
                port=getattr(proxy, "port", None) or pulumi.Output.from_input(5432),
                proxy_name=proxy.proxy_name,
            )
        else:
            for label, sg in apps.items():
                pg.allow_from(label, sg)
        for label, sg in apps.items():
            pg.allow_readers_from(label, sg)

        cache = None
        if "cache" in inputs:
            settings = {"tags": tags, **inputs["cache"]}
            settings["allowed_security_groups"] = {**apps, **settings.get("allowed_security_groups", {})}
            fields = {**placement, "kms_key_arn": pg_inputs["kms_key_arn"], **settings}
            cache = build_cache(f"{name}-cache", fields, self)
            values.update(
                redis_primary_endpoint=cache.primary_endpoint,
                redis_reader_endpoint=cache.reader_endpoint,
                redis_port=cache.port,
                redis_auth_secret_arn=cache.auth_token_secret_arn,
            )

        if "observability" in inputs:
            fields = observability_fields({"tags": tags, **inputs["observability"]})
            # The components as they are (ObservabilityLayerArgs.watch labels them as the stacks do).
            fields.update(
                region=pg_args.region,
                kms_key_arn=pg_inputs["kms_key_arn"],
                watch=[c for c in (pg, proxy, cache) if c is not None],
            )
            layer = build_observability(f"{name}-obs", fields, self)
            values["alarm_topic_arn"] = layer.topic_arn

        publish(self, values, DATABASE_OUTPUTS)
