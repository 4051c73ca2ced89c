"""checkout-history: another team's Pulumi program reusing the commerce-db components.

The checkout team runs its own order-history database in its own VPC, with the same
hardened building blocks the commerce platform uses: a KMS key, a PostgreSQL primary with
a read replica, an RDS Proxy in front of it, a Redis cache, alarms on all three (to the team's
own ops topic), and access granted to the
team's application security group and IAM role through the components' capability methods
(no hand-written security-group rules or IAM policies).
"""

from __future__ import annotations

import pulumi
from commerce_db_components import (
    CacheLayer,
    CacheLayerArgs,
    ObservabilityLayer,
    ObservabilityLayerArgs,
    PostgresCluster,
    PostgresClusterArgs,
    ProxyLayer,
    ProxyLayerArgs,
    RegionKeys,
    RegionKeysArgs,
)


def main() -> None:
    """The whole program; config is read from this project's own namespace (``checkout-history``)."""
    cfg = pulumi.Config()
    region = pulumi.Config("aws").require("region")
    vpc_id = cfg.require("vpcId")
    subnet_ids: list[str] = cfg.require_object("privateSubnetIds")
    app_sg = cfg.require("appSecurityGroupId")
    app_role = cfg.require("appRoleName")
    tags = {"team": "checkout", "app": "order-history", "stack": pulumi.get_stack()}

    keys = RegionKeys("history-keys", RegionKeysArgs(region=region, alias="checkout-history", tags=tags))
    db = PostgresCluster(
        "history-db",
        PostgresClusterArgs(
            region=region,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            kms_key_arn=keys.key_arn,
            instance_class=cfg.get("instanceClass") or "db.r7g.large",
            in_region_replicas=1,
            multi_az=True,
            backup_retention_days=14,
            deletion_protection=cfg.get_bool("deletionProtection") is not False,
            final_snapshot_identifier=f"checkout-history-{pulumi.get_stack()}-final",
            # Log groups for the exported PostgreSQL logs, created first, encrypted, kept 90 days.
            cloudwatch_logs_retention_days=90,
            db_name="orders",
            tags=tags,
        ),
    )
    proxy = ProxyLayer(
        "history-proxy",
        ProxyLayerArgs(region=region, target=db, vpc_id=vpc_id, subnet_ids=subnet_ids, tags=tags),
    )
    cache = CacheLayer(
        "history-cache",
        CacheLayerArgs(
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            kms_key_arn=keys.key_arn,
            node_type="cache.r7g.large",
            tags=tags,
        ),
    )

    # Alarms, events and a dashboard for what was built, sent to the team's central ops topic.
    ObservabilityLayer(
        "history-obs",
        ObservabilityLayerArgs(
            kms_key_arn=keys.key_arn,
            alarm_topic_arn=cfg.require("opsTopicArn"),
            watch=[db, proxy, cache],
            tags=tags,
        ),
    )

    # Capability methods instead of raw rules: SG references only, least-privilege IAM.
    proxy.allow_from("checkout-app", app_sg)  # writes go through the proxy
    db.allow_readers_from("checkout-app", app_sg)  # reads go to the replica endpoints directly
    cache.allow_from("checkout-app", app_sg)
    db.grant_connect(app_role, "app_user")  # rds-db:connect for IAM auth tokens

    pulumi.export("writerEndpoint", proxy.writer_endpoint)
    pulumi.export("readerEndpoints", db.reader_endpoints)
    pulumi.export("redisPrimaryEndpoint", cache.primary_endpoint)
    pulumi.export("dbSecretArn", db.secret_arn)


if __name__ == "__main__":
    main()
