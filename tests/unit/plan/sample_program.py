"""A small, representative stand-in for ``commerce_db_components.program.run`` used by the plan tests.

Two regions (primary + one replica region), each a ``commerce:db:RegionStack`` holding a
PostgresCluster (KMS key, parameter group, SG, primary or cross-region replica), a ProxyLayer,
a CacheLayer (Global Datastore primary/secondary), an ObservabilityLayer (SNS + alarms) and a
BackupPlan that copies to the replica region's vault. A few ``commerce-db:*`` config keys
let tests break rules (``publiclyAccessible``, ``backupRetention``, ``deletionProtection``).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random


class SampleConfigError(ValueError):
    """Mimics ``commerce_db_components.config.ConfigError``: names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _component(kind: str, name: str, parent: pulumi.Resource | None = None) -> pulumi.ComponentResource:
    comp = pulumi.ComponentResource(f"commerce:db:{kind}", name, None, pulumi.ResourceOptions(parent=parent))
    return comp


def run() -> None:
    cfg = pulumi.Config("commerce-db")
    primary_region = cfg.get("primaryRegion") or "us-east-1"
    replica_region = cfg.get("replicaRegion") or "eu-west-1"
    retention = cfg.get_int("backupRetention")
    retention = 14 if retention is None else retention
    if retention > 35:
        raise SampleConfigError(
            "commerce-db:backupRetention", f"commerce-db:backupRetention={retention}: max 35"
        )
    public = cfg.get_bool("publiclyAccessible") or False
    deletion_protection = cfg.get_bool("deletionProtection")
    deletion_protection = True if deletion_protection is None else deletion_protection
    instance_class = cfg.get("instanceClass") or "db.r7g.large"
    if not instance_class.startswith("db."):
        raise SampleConfigError(
            "instanceClass", f"commerce-db:instanceClass={instance_class!r}: must start with db."
        )
    pg = cfg.get_object("postgres") or {}
    storage = float(pg.get("allocatedStorage", 100))

    password = random.RandomPassword("master-password", length=24, special=False)
    token = random.RandomPassword("redis-token", length=32, special=False)

    regions = [(primary_region, "use1", True), (replica_region, "euw1", False)]
    primary_db: aws.rds.Instance | None = None
    primary_vault: aws.backup.Vault | None = None
    global_group: aws.elasticache.GlobalReplicationGroup | None = None
    vaults: dict[str, aws.backup.Vault] = {}
    for region, short, is_primary in regions:
        prov = aws.Provider(f"aws-{short}", region=region)
        stack = _component("RegionStack", short)
        pgc = _component("PostgresCluster", f"{short}-db", stack)
        popts = pulumi.ResourceOptions(parent=pgc, provider=prov, protect=True)  # prod-protected-data
        key = aws.kms.Key(f"{short}-db-key", enable_key_rotation=True, opts=popts)
        params = aws.rds.ParameterGroup(
            f"{short}-pg17",
            family="postgres17",
            parameters=[
                {"name": "rds.force_ssl", "value": "1"},
                {"name": "max_connections", "value": "2000"},
            ],
            opts=popts,
        )
        app_sg = aws.ec2.SecurityGroup(f"{short}-app-sg", description="app", opts=popts)
        db_sg = aws.ec2.SecurityGroup(
            f"{short}-db-sg",
            description="db",
            ingress=[{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "security_groups": [app_sg.id]}],
            opts=popts,
        )
        if is_primary:
            db = aws.rds.Instance(
                f"{short}-primary",
                engine="postgres",
                engine_version="17.4",
                instance_class=instance_class,
                multi_az=True,
                allocated_storage=storage,
                storage_type="io2",
                iops=12000,
                storage_encrypted=True,
                kms_key_id=key.arn,
                backup_retention_period=retention,
                deletion_protection=deletion_protection,
                skip_final_snapshot=False,
                final_snapshot_identifier=f"{short}-primary-final",
                publicly_accessible=public,
                performance_insights_enabled=True,
                parameter_group_name=params.name,
                vpc_security_group_ids=[db_sg.id],
                username="commerce",
                password=password.result,
                opts=popts,
            )
            primary_db = db
            replica = aws.rds.Instance(
                f"{short}-replica-1",
                instance_class=instance_class,
                replicate_source_db=db.identifier,
                storage_encrypted=True,
                performance_insights_enabled=True,
                opts=popts,
            )
            dbs = [db, replica]
        else:
            assert primary_db is not None
            replica = aws.rds.Instance(
                f"{short}-xr-replica",
                instance_class=instance_class,
                replicate_source_db=primary_db.arn,
                kms_key_id=key.arn,
                storage_encrypted=True,
                performance_insights_enabled=True,
                parameter_group_name=params.name,
                opts=popts,
            )
            dbs = [replica]

        proxy_layer = _component("ProxyLayer", f"{short}-proxy", stack)
        if is_primary:
            assert primary_db is not None
            pxo = pulumi.ResourceOptions(parent=proxy_layer, provider=prov)
            proxy = aws.rds.Proxy(
                f"{short}-proxy",
                engine_family="POSTGRESQL",
                require_tls=True,
                role_arn="arn:aws:iam::123456789012:role/proxy",
                vpc_subnet_ids=["subnet-a", "subnet-b"],
                auths=[{"auth_scheme": "SECRETS", "secret_arn": "arn:secret", "iam_auth": "DISABLED"}],
                opts=pxo,
            )
            tg = aws.rds.ProxyDefaultTargetGroup(
                f"{short}-proxy-tg",
                db_proxy_name=proxy.name,
                connection_pool_config={"max_connections_percent": 90},
                opts=pxo,
            )
            aws.rds.ProxyTarget(
                f"{short}-proxy-target",
                db_proxy_name=proxy.name,
                target_group_name=tg.name,
                db_instance_identifier=primary_db.identifier,
                opts=pxo,
            )
            pulumi.export("writerEndpoint", proxy.endpoint)
            pulumi.export("readerEndpoints", pulumi.Output.all(replica.address))

        cache = _component("CacheLayer", f"{short}-cache", stack)
        copts = pulumi.ResourceOptions(parent=cache, provider=prov, protect=True)
        if is_primary:
            rg = aws.elasticache.ReplicationGroup(
                f"{short}-redis",
                description="cache",
                engine="redis",
                engine_version="7.1",
                node_type="cache.r7g.large",
                num_cache_clusters=2,
                multi_az_enabled=True,
                automatic_failover_enabled=True,
                at_rest_encryption_enabled=True,
                transit_encryption_enabled=True,
                kms_key_id=key.arn,
                auth_token=token.result,
                auth_token_update_strategy="ROTATE",
                opts=copts,
            )
            global_group = aws.elasticache.GlobalReplicationGroup(
                f"{short}-redis-global",
                global_replication_group_id_suffix="commerce",
                primary_replication_group_id=rg.id,
                opts=copts,
            )
            pulumi.export("redisPrimaryEndpoint", rg.primary_endpoint_address)
            pulumi.export("redisAuthToken", token.result)
        else:
            assert global_group is not None
            aws.elasticache.ReplicationGroup(
                f"{short}-redis",
                description="cache secondary",
                global_replication_group_id=global_group.global_replication_group_id,
                num_cache_clusters=2,
                opts=copts,
            )

        obs = _component("ObservabilityLayer", f"{short}-obs", stack)
        oopts = pulumi.ResourceOptions(parent=obs, provider=prov)
        topic = aws.sns.Topic(f"{short}-alarms", kms_master_key_id=key.id, opts=oopts)
        for db in dbs:
            for metric, threshold in (("CPUUtilization", 80), ("FreeStorageSpace", 10e9)):
                aws.cloudwatch.MetricAlarm(
                    f"{db._name}-{metric.lower()}",
                    namespace="AWS/RDS",
                    metric_name=metric,
                    dimensions={"DBInstanceIdentifier": db.identifier},
                    comparison_operator="GreaterThanThreshold"
                    if metric == "CPUUtilization"
                    else "LessThanThreshold",
                    threshold=threshold,
                    evaluation_periods=3,
                    period=60,
                    statistic="Average",
                    alarm_actions=[topic.arn],
                    opts=oopts,
                )

        backup = _component("BackupPlan", f"{short}-backup", stack)
        bopts = pulumi.ResourceOptions(parent=backup, provider=prov, protect=True)
        vault = aws.backup.Vault(f"{short}-vault", kms_key_arn=key.arn, opts=bopts)
        vaults[short] = vault
        if is_primary:
            primary_vault = vault
    # The copy rule points at the replica region's vault (the DR vault).
    assert primary_vault is not None and primary_db is not None
    prov = aws.Provider("aws-backup-plan", region=primary_region)
    plan = aws.backup.Plan(
        "use1-backup-plan",
        rules=[
            {
                "rule_name": "daily",
                "target_vault_name": primary_vault.name,
                "schedule": "cron(0 5 * * ? *)",
                "lifecycle": {"delete_after": 35},
                "copy_actions": [
                    {"destination_vault_arn": vaults["euw1"].arn, "lifecycle": {"delete_after": 35}}
                ],
            }
        ],
        opts=pulumi.ResourceOptions(provider=prov),
    )
    aws.backup.Selection(
        "use1-backup-selection",
        plan_id=plan.id,
        iam_role_arn="arn:aws:iam::123456789012:role/backup",
        resources=[primary_db.arn],
        opts=pulumi.ResourceOptions(provider=prov),
    )
    pulumi.export("primaryRegion", primary_region)
