"""The Pulumi program: config once, one provider and one RegionStack per region, stack exports.

``run()`` is what ``__main__.py`` calls and what ``commerce-db plan`` runs under the mock engine.
Configuration problems surface synchronously as :class:`commerce_db_components.config.ConfigError` before any
resource is registered.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .config import StackConfig, load_stack_config
from .region_stack import RegionStack, RegionStackArgs, region_code


def make_provider(cfg: StackConfig, region: str) -> aws.Provider:
    """Explicit provider for ``region``; every resource of that region goes through it."""
    return aws.Provider(
        f"aws-{region}",
        region=region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.base_tags()),
    )


def build(cfg: StackConfig) -> dict[str, RegionStack]:
    """Register every region's stack for ``cfg``; returns them by region, primary first."""
    stacks: dict[str, RegionStack] = {}
    primary = RegionStack(
        region_code(cfg.primary_region),
        RegionStackArgs(config=cfg, region=cfg.primary_region),
        opts=pulumi.ResourceOptions(providers={"aws": make_provider(cfg, cfg.primary_region)}),
    )
    stacks[cfg.primary_region] = primary
    for region in cfg.replica_regions:
        stacks[region] = RegionStack(
            region_code(region),
            RegionStackArgs(config=cfg, region=region, primary=primary.handles()),
            opts=pulumi.ResourceOptions(providers={"aws": make_provider(cfg, region)}),
        )
    return stacks


def run() -> None:
    """The whole program: parse config, build all regions, export the endpoints apps need."""
    cfg = load_stack_config()
    stacks = build(cfg)
    primary = stacks[cfg.primary_region]
    replicas = [stacks[r] for r in cfg.replica_regions]
    pulumi.export("primaryRegion", cfg.primary_region)
    pulumi.export("replicaRegions", list(cfg.replica_regions))
    pulumi.export("drRegion", cfg.dr_region)
    pulumi.export("environment", cfg.environment)
    pulumi.export("writerEndpoint", primary.writer_endpoint)
    reader_lists = [primary.reader_endpoints, *(s.reader_endpoints for s in replicas)]
    pulumi.export(
        "readerEndpoints",
        pulumi.Output.all(*reader_lists).apply(lambda ls: [e for group in ls for e in group]),
    )
    pulumi.export("readerEndpointsByRegion", {s.region: s.reader_endpoints for s in stacks.values()})
    pulumi.export("dbSecretArn", primary.db_secret_arn)
    pulumi.export("redisPrimaryEndpoint", primary.redis_primary_endpoint)
    pulumi.export("redisReaderEndpoint", primary.redis_reader_endpoint)
    pulumi.export("redisAuthSecretArn", primary.redis_auth_secret_arn)
    pulumi.export("alarmTopicArn", primary.alarm_topic_arn)
    pulumi.export("alarmTopicArnsByRegion", {s.region: s.alarm_topic_arn for s in stacks.values()})
    pulumi.export("kmsKeyArnsByRegion", {s.region: s.kms_key_arn for s in stacks.values()})
