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

from dataclasses import dataclass

import pulumi

from components.config import StackConfig
from components.keys import RegionKeys, RegionKeysArgs
from components.network import Network, NetworkArgs

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
    db_secret_arn: pulumi.Output[str] | None
    cache_global_group_id: pulumi.Output[str | None] | None
    cache_auth_secret_arn: pulumi.Output[str | None] | None


@dataclass(frozen=True, kw_only=True)
class RegionStackArgs:
    """Inputs of :class:`RegionStack`."""

    config: StackConfig
    """The parsed stack configuration. Required."""
    region: str
    """This region. Required."""
    primary: PrimaryHandles | None = None
    """Handles of the primary region's stack; None makes this the primary region. Default: None."""

    def __post_init__(self) -> None:
        is_primary = self.region == self.config.primary_region
        if is_primary != (self.primary is None):
            raise ValueError(
                f"region {self.region!r}: primary handles must be given exactly for replica regions "
                f"(primary region is {self.config.primary_region!r})"
            )
        if not is_primary and self.region not in self.config.replica_regions:
            raise ValueError(f"region {self.region!r} is neither the primary nor a replica region")


class RegionStack(pulumi.ComponentResource):
    """All layers of one region."""

    region: str
    writer_endpoint: pulumi.Output[str | None]
    """RDS Proxy endpoint (primary region; the writer address without a proxy; None elsewhere)."""
    reader_endpoints: pulumi.Output[list[str]]
    """Read endpoints in this region (replica addresses, or the Aurora proxy read-only endpoint)."""
    db_secret_arn: pulumi.Output[str | None]
    redis_primary_endpoint: pulumi.Output[str | None]
    redis_reader_endpoint: pulumi.Output[str | None]
    redis_auth_secret_arn: pulumi.Output[str | None]
    alarm_topic_arn: pulumi.Output[str | None]
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RegionStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:RegionStack", name, None, opts)
        cfg = args.config
        region = args.region
        self.region = region
        self.is_primary = args.primary is None
        child = pulumi.ResourceOptions(parent=self)
        tags = {**cfg.base_tags(), "region-role": "primary" if self.is_primary else "replica"}

        existing = cfg.network.existing_vpcs.get(region)
        endpoints = cfg.network.interface_endpoints
        if endpoints is None:
            endpoints = existing is None
        self.network = Network(
            f"{name}-net",
            NetworkArgs(
                region=region,
                existing_vpc_id=existing.vpc_id if existing else None,
                existing_subnet_ids=existing.private_subnet_ids if existing else (),
                cidr_block=cfg.vpc_cidr(region),
                az_count=cfg.network.az_count,
                interface_endpoints=endpoints,
                tags=tags,
            ),
            opts=child,
        )
        self.keys = RegionKeys(
            f"{name}-keys",
            RegionKeysArgs(
                region=region,
                alias=f"commerce-db-{cfg.stack}",
                deletion_window_days=30 if cfg.is_prod else 7,
                tags=tags,
            ),
            opts=child,
        )
        self.kms_key_arn = self.keys.key_arn

        none: pulumi.Output[None] = pulumi.Output.from_input(None)
        self.writer_endpoint = none
        self.reader_endpoints = pulumi.Output.from_input([])
        self.db_secret_arn = none
        self.redis_primary_endpoint = none
        self.redis_reader_endpoint = none
        self.redis_auth_secret_arn = none
        self.alarm_topic_arn = none
        self._db_source_arn: pulumi.Output[str] | None = None
        self._cache_global_group_id: pulumi.Output[str | None] | None = None

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

    def handles(self) -> PrimaryHandles:
        """Handles replica regions need (only meaningful on the primary region's stack)."""
        return PrimaryHandles(
            region=self.region,
            db_source_arn=self._db_source_arn,
            db_secret_arn=self.db_secret_arn,
            cache_global_group_id=self._cache_global_group_id,
            cache_auth_secret_arn=self.redis_auth_secret_arn,
        )
