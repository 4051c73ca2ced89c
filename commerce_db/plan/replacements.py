"""Inputs whose change replaces a stateful resource (delete + create: data gone unless restored).

pulumi-aws is bridged from the Terraform AWS provider and inherits its ``ForceNew`` attributes: a
changed ``ForceNew`` input makes ``pulumi up`` replace the resource. The table lists, per stateful
Terraform type, the ``ForceNew`` attributes of its schema, as read from the provider's source:

======================================  =================================================
Terraform type                          source file in hashicorp/terraform-provider-aws
======================================  =================================================
aws_db_instance                         internal/service/rds/instance.go (commit 00e4b23)
aws_rds_cluster                         internal/service/rds/cluster.go
aws_rds_cluster_instance                internal/service/rds/cluster_instance.go
aws_rds_global_cluster                  internal/service/rds/global_cluster.go
aws_elasticache_replication_group       internal/service/elasticache/replication_group.go
aws_elasticache_global_replication_group  internal/service/elasticache/global_replication_group.go
aws_kms_key                             internal/service/kms/key.go
aws_s3_bucket                           internal/service/s3/bucket.go
aws_backup_vault                        internal/service/backup/vault.go
aws_secretsmanager_secret               internal/service/secretsmanager/secret.go
======================================  =================================================

Only aws_db_instance was re-read line by line for this table (2026-12-06); the others are the
provider's documented ForceNew arguments ("Changing this forces a new resource") of the same
major version. Attributes that are ForceNew only inside a nested block (``s3_import.*``,
``restore_to_point_in_time.*``) are listed by their block. A changed Pulumi URN (logical name,
parent or type) also replaces, whatever the inputs: :mod:`commerce_db.plan.diff` reports that as
a delete plus a create.
"""

from __future__ import annotations

FORCE_NEW: dict[str, frozenset[str]] = {
    "aws_db_instance": frozenset(
        {
            "availability_zone",
            "character_set_name",
            "custom_iam_instance_profile",
            "db_name",
            "engine",
            "identifier",
            "identifier_prefix",
            "kms_key_id",
            "nchar_character_set_name",
            "restore_to_point_in_time",
            "s3_import",
            "snapshot_identifier",
            "storage_encrypted",
            "timezone",
            "username",
        }
    ),
    "aws_rds_cluster": frozenset(
        {
            "availability_zones",
            "cluster_identifier",
            "cluster_identifier_prefix",
            "database_name",
            "db_subnet_group_name",
            "engine",
            "engine_mode",
            "kms_key_id",
            "master_username",
            "restore_to_point_in_time",
            "s3_import",
            "snapshot_identifier",
            "source_region",
            "storage_encrypted",
        }
    ),
    "aws_rds_cluster_instance": frozenset(
        {"availability_zone", "cluster_identifier", "db_subnet_group_name", "engine", "identifier"}
    ),
    "aws_rds_global_cluster": frozenset(
        {
            "database_name",
            "engine",
            "global_cluster_identifier",
            "source_db_cluster_identifier",
            "storage_encrypted",
        }
    ),
    "aws_elasticache_replication_group": frozenset(
        {
            "at_rest_encryption_enabled",
            "data_tiering_enabled",
            "global_replication_group_id",
            "kms_key_id",
            "network_type",
            "port",
            "preferred_cache_cluster_azs",
            "replication_group_id",
            "snapshot_arns",
            "snapshot_name",
            "subnet_group_name",
        }
    ),
    "aws_elasticache_global_replication_group": frozenset(
        {"global_replication_group_id_suffix", "primary_replication_group_id"}
    ),
    "aws_kms_key": frozenset(
        {"custom_key_store_id", "customer_master_key_spec", "key_usage", "multi_region", "xks_key_id"}
    ),
    "aws_s3_bucket": frozenset({"bucket", "bucket_prefix", "object_lock_enabled"}),
    "aws_backup_vault": frozenset({"kms_key_arn", "name"}),
    "aws_secretsmanager_secret": frozenset({"name", "name_prefix"}),
}
"""Terraform type -> its ForceNew attributes (snake_case, top level)."""


def is_stateful(tf_type: str) -> bool:
    """Whether resources of ``tf_type`` hold data that a replacement or delete loses."""
    return tf_type in FORCE_NEW


def forces_replacement(tf_type: str, attribute: str) -> bool:
    """Whether changing ``attribute`` (snake_case) replaces a ``tf_type`` resource."""
    return attribute in FORCE_NEW.get(tf_type, frozenset())
