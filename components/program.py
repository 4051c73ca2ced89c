"""The Pulumi program: config once, one provider and one RegionStack per region, stack exports.

``run()`` is what ``__main__.py`` calls and what ``commerce-db plan`` runs under the mock engine.
Configuration problems surface synchronously as :class:`commerce_db_components.config.ConfigError` before any
resource is registered.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from .backup import BackupPlan, BackupPlanArgs
from .config import StackConfig, load_stack_config
from .keys import RegionKeys, RegionKeysArgs
from .postgres_cluster import DEFAULT_APP_USERS, secret_arn_by_name_prefix
from .region_stack import (
    RegionStack,
    RegionStackArgs,
    backup_vault_name,
    region_code,
    replicated_arn,
    stack_slug,
)
from .stack_shared import StackShared, StackSharedArgs
from .writer_dns import WriterDns, WriterDnsArgs

ARC_CONFIG_REGION = "us-west-2"
"""Route 53 ARC's configuration API (clusters, routing controls, safety rules) exists only here."""


def make_provider(cfg: StackConfig, region: str, name: str | None = None) -> aws.Provider:
    """Explicit provider for ``region``; every resource of that region goes through it.

    For a region in ``unreachableRegions`` the provider skips the STS calls it makes when it is
    configured (credential validation, account id): Pulumi configures every provider of the
    program even in a ``--target``ed update, and a dead region's STS would fail the whole update.
    Its resources are not touched while it is listed (the runbook's updates target other regions).
    """
    down = region in cfg.unreachable_regions
    return aws.Provider(
        name or f"aws-{region}",
        region=region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.base_tags()),
        skip_credentials_validation=True if down else None,
        skip_requesting_account_id=True if down else None,
    )


_SHARED: list[StackShared] = []
"""The last :func:`build`'s stack-wide component (``run`` exports from it)."""
_WRITER_DNS: list[WriterDns | None] = []
"""The last :func:`build`'s writer name (None without ``writerDns: arc``)."""
REDIS_AUTH = "redisAuth"
"""Key of the cache AUTH token's promoted copy in :func:`promoted_app_secret_arns`."""
_PROMOTED_APP_SECRETS: list[dict[str, pulumi.Output[str]]] = []
"""The last :func:`build`'s promoted copies of the application users' secrets (``promotedFrom``)."""


def promoted_app_secret_arns(
    cfg: StackConfig, provider: aws.Provider, *, region: str | None = None
) -> dict[str, pulumi.Output[str]]:
    """While ``promotedFrom`` is set: user -> ARN of the promoted copy (in ``primaryRegion``) of the
    old writer's application-user secret, the login the promoted region's proxy keeps; with a
    Global Datastore also :data:`REDIS_AUTH` -> the copy of the old primary's cache AUTH token
    secret, the token the promoted cache keeps.

    Those secrets are auto-named ``<old region code>-pg-<user>-<suffix>`` /
    ``<old region code>-cache-auth-token-<suffix>``: looked up by that prefix in the new writer
    region (a data-plane call there). Exactly one match is required."""
    source = region or cfg.promoted_from
    if not source:
        return {}
    code = region_code(source)
    prefixes = (
        {}
        if cfg.postgres.manage_master_user_password
        else {user: f"{code}-pg-{user}-".replace("_", "-") for user in sorted(DEFAULT_APP_USERS)}
    )
    if cfg.cache.enabled and cfg.cache.global_datastore and region is None:
        # The cache keeps the promoted AUTH token too (see RegionStack: _keep_cache_token).
        prefixes[REDIS_AUTH] = f"{code}-cache-auth-token-"
    return {
        user: secret_arn_by_name_prefix(
            prefix,
            pulumi.InvokeOutputOptions(provider=provider),
            where=f"in {cfg.primary_region} (the promoted copy of the old writer's)",
            context=f"{source}: ",
        )
        for user, prefix in prefixes.items()
    }


def build(cfg: StackConfig) -> dict[str, RegionStack]:
    """Register every region's stack for ``cfg``; returns them by region, primary first.

    Names depend on the region, never on its role: a failover (another ``primaryRegion``) keeps
    every URN, so the next ``pulumi up`` adopts the promoted databases instead of replacing them.
    Stack-wide resources (:class:`StackShared`) sit under the home region's provider, which a
    failover does not change.
    """
    providers: dict[str, aws.Provider] = {}

    def provider(region: str) -> aws.Provider:
        if region not in providers:
            providers[region] = make_provider(cfg, region)
        return providers[region]

    pg = cfg.postgres
    aurora_global = pg.engine_mode == "aurora" and bool(cfg.replica_regions) and pg.cross_region_replicas > 0
    shared = StackShared(
        "shared",
        StackSharedArgs(
            stack_slug=stack_slug(cfg.stack),
            monitoring=pg.monitoring_interval_seconds > 0,
            aurora_global=aurora_global,
            engine_version=pg.engine_version,
            db_name=pg.db_name,
            deletion_protection=pg.deletion_protection,
            tags=cfg.base_tags(),
        ),
        opts=pulumi.ResourceOptions(provider=provider(cfg.home_region)),
    )
    _SHARED.append(shared)
    gds = cfg.cache.enabled and cfg.cache.global_datastore
    stacks: dict[str, RegionStack] = {}
    # The primary's secrets replicate into the replica regions encrypted with those regions' CMKs,
    # which are registered after the primary region: hand their ARNs over as deferred outputs.
    deferred: dict[str, tuple[pulumi.Output[str], Callable[[pulumi.Output[str]], None]]] = {
        region: pulumi.deferred_output() for region in cfg.replica_regions
    }
    # Completing a failover: the proxies accept the retiring promoted logins besides the new ones.
    retiring = (
        promoted_app_secret_arns(cfg, provider(cfg.primary_region), region=cfg.retiring_logins_from)
        if cfg.retiring_logins_from
        else {}
    )
    primary = RegionStack(
        region_code(cfg.primary_region),
        RegionStackArgs(
            retiring_logins=retiring,
            config=cfg,
            region=cfg.primary_region,
            monitoring_role_arn=shared.monitoring_role_arn if pg.monitoring_interval_seconds else None,  # type: ignore[arg-type]
            aurora_global_cluster_id=shared.aurora_global_cluster_id,
            cache_global_group_outside=gds,
            replica_key_arns={region: out for region, (out, _) in deferred.items()},
        ),
        opts=pulumi.ResourceOptions(providers={"aws": provider(cfg.primary_region)}),
    )
    stacks[cfg.primary_region] = primary
    handles = primary.handles()
    if gds and primary.cache is not None:
        handles = dataclasses.replace(
            handles, cache_global_group_id=shared.add_cache_global_group(primary.cache.replication_group_id)
        )
    # A Global Datastore accepts one secondary at a time (the group is "modifying" after each
    # add; terraform-provider-aws#20180): each replica region's cache waits for the previous one.
    cache_after: tuple[pulumi.Resource, ...] = ()
    for region in cfg.replica_regions:
        stack = RegionStack(
            region_code(region),
            RegionStackArgs(config=cfg, region=region, primary=handles, cache_after=cache_after),
            opts=pulumi.ResourceOptions(providers={"aws": provider(region)}),
        )
        stacks[region] = stack
        deferred[region][1](stack.kms_key_arn)
        if stack.cache is not None:
            cache_after = (stack.cache.replication_group,)
    _wire_backups(cfg, stacks, shared, provider)
    _WRITER_DNS.append(_writer_dns(cfg, stacks, provider))
    _PROMOTED_APP_SECRETS.append(promoted_app_secret_arns(cfg, provider(cfg.primary_region)))
    return stacks


def _writer_dns(
    cfg: StackConfig, stacks: dict[str, RegionStack], provider: Callable[[str], aws.Provider]
) -> WriterDns | None:
    """``writer-dns`` (``writerDns: arc``): the writer name that survives a failover, under the home
    region's provider (Route 53 is global; the home never moves) and ARC's us-west-2 provider."""
    if cfg.writer_dns != "arc":
        return None
    targets = {r: s.writer_target for r, s in stacks.items()}
    if len(targets) < 2:
        return None
    return WriterDns(
        "writer-dns",
        WriterDnsArgs(
            zone_name=f"{stack_slug(cfg.stack)}.db.internal",
            targets=targets,  # type: ignore[arg-type]
            vpcs={r: s.network.vpc_id for r, s in stacks.items()},
            home_region=cfg.home_region,
            # Its own provider: a failover's targeted update (surviving regions' providers with
            # --target-dependents) never reaches the routing controls or the safety rule.
            arc_provider=make_provider(cfg, ARC_CONFIG_REGION, "aws-arc"),
            tags=cfg.base_tags(),
        ),
        opts=pulumi.ResourceOptions(provider=provider(cfg.home_region)),
    )


def _wire_backups(
    cfg: StackConfig,
    stacks: dict[str, RegionStack],
    shared: StackShared,
    provider: Callable[[str], aws.Provider],
) -> None:
    """The writer's backup plan copies to the DR region's own vault (owned by that region, so a
    failover moving the plan never deletes a vault), and in RDS mode the DR region replicates the
    writer's automated backups (point-in-time restore there)."""
    primary = stacks[cfg.primary_region]
    dr = stacks.get(cfg.dr_region)
    dr_vault: BackupPlan | None = dr.backup if dr is not None else None
    if dr_vault is None and cfg.backup.copy_to_dr:
        # A DR region outside the stack's regions: a key and a vault of its own there.
        code = region_code(cfg.dr_region)
        opts = pulumi.ResourceOptions(provider=provider(cfg.dr_region))
        keys = RegionKeys(
            f"{code}-keys",
            RegionKeysArgs(
                region=cfg.dr_region,
                alias="commerce-db-" + re.sub(r"[^A-Za-z0-9/_-]", "-", cfg.stack),
                deletion_window_days=30 if cfg.is_prod else 7,
                tags=cfg.base_tags(),
            ),
            opts=opts,
        )
        dr_vault = BackupPlan(
            f"{code}-backup",
            BackupPlanArgs(
                region=cfg.dr_region,
                kms_key_arn=keys.key_arn,
                vault_name=backup_vault_name(cfg.stack, cfg.dr_region),
                retention_days=cfg.backup.retention_days,
                lock=cfg.backup.vault_lock,
                lock_changeable_for_days=cfg.backup.vault_lock_changeable_for_days,
                force_destroy=not cfg.is_prod and not cfg.backup.vault_lock,
                tags=cfg.base_tags(),
            ),
            opts=opts,
        )
    primary.add_backup_plan(
        role_arn=shared.backup_role_arn, dr_vault_arn=dr_vault.vault_arn if dr_vault is not None else None
    )
    if (
        dr is not None
        and cfg.postgres.engine_mode == "rds"
        and cfg.backup.automated_backups_replication
        and primary.pg is not None
    ):
        dr.add_backup_replication(primary.pg.primary_arn)


def _copy_in(arn: pulumi.Output[str], source_region: str, region: str) -> pulumi.Output[str]:
    """The ARN of a secret's copy in ``region`` (replicas keep the name and suffix)."""
    return arn.apply(lambda a: replicated_arn(a, source_region, region) or "")


def run() -> None:
    """The whole program: parse config, build all regions, export the endpoints apps need."""
    cfg = load_stack_config()
    stacks = build(cfg)
    shared = _SHARED[-1]
    if shared.aurora_global_writer_endpoint is not None:
        # One writer name across failovers (Aurora moves it); the RDS variant exports per-region names.
        pulumi.export("globalWriterEndpoint", shared.aurora_global_writer_endpoint)
    pulumi.export("writerEndpointsByRegion", {s.region: s.writer_endpoint for s in stacks.values()})
    writer_dns = _WRITER_DNS[-1]
    if writer_dns is not None:
        # The name apps use for writes: the same before and after a failover (ARC switches it).
        pulumi.export("writerName", writer_dns.name)
        pulumi.export("writerRoutingControlArns", writer_dns.routing_control_arns)
        pulumi.export("arcClusterArn", writer_dns.cluster_arn)
        pulumi.export("arcClusterEndpoints", writer_dns.cluster_endpoints)
    pulumi.export("writerTargetsByRegion", {s.region: s.writer_target for s in stacks.values()})
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
    # During a failover (promotedFrom) the proxies keep the promoted copies of the old writer's
    # application secrets: those are what apps must use until the failover is complete.
    promoted = _PROMOTED_APP_SECRETS[-1]
    app_secrets = {u: promoted.get(u, arn) for u, arn in primary.app_secret_arns.items()}
    redis_auth = promoted.get(REDIS_AUTH)
    # Services connect as the per-application users, never as the master (dbSecretArn is for
    # operators and migrations): one secret per role, as Settings.from_stack_outputs reads them.
    for role, output in (("writer", "writerSecretArn"), ("reader", "readerSecretArn")):
        user = next((u for u, r in DEFAULT_APP_USERS.items() if r == role and u in app_secrets), None)
        if user is not None:
            pulumi.export(output, app_secrets[user])
    # Every region's own copy of the secrets (the primary's, replicated there): apps read the copy
    # in their region, which keeps working when the primary region is lost (issue 15).
    by_region: dict[str, dict[str, Any]] = {}
    for s in stacks.values():
        arns = {
            u: _copy_in(promoted[u], cfg.primary_region, s.region) if u in promoted else arn
            for u, arn in s.app_secret_arns.items()
        }
        users: dict[str, Any] = {role: arns[u] for u, role in DEFAULT_APP_USERS.items() if u in arns}
        by_region[s.region] = {
            "master": s.db_secret_arn,
            **users,
            "redisAuth": _copy_in(redis_auth, cfg.primary_region, s.region)
            if redis_auth is not None
            else s.redis_auth_secret_arn,
        }
    pulumi.export("secretArnsByRegion", by_region)
    # Every region's own cache (Global Datastore member): services use their region's. After a
    # failover the new primary region's member is the writable one; the names do not change.
    pulumi.export(
        "redisEndpointsByRegion",
        {
            s.region: {"primary": s.redis_primary_endpoint, "reader": s.redis_reader_endpoint}
            for s in stacks.values()
            if s.cache is not None
        },
    )
    pulumi.export("redisPrimaryEndpoint", primary.redis_primary_endpoint)
    pulumi.export("redisReaderEndpoint", primary.redis_reader_endpoint)
    pulumi.export(
        "redisAuthSecretArn", redis_auth if redis_auth is not None else primary.redis_auth_secret_arn
    )
    pulumi.export("alarmTopicArn", primary.alarm_topic_arn)
    pulumi.export("alarmTopicArnsByRegion", {s.region: s.alarm_topic_arn for s in stacks.values()})
    pulumi.export("kmsKeyArnsByRegion", {s.region: s.kms_key_arn for s in stacks.values()})
