"""StackShared: the stack's resources that belong to no single region.

A failover changes which region is primary. Whatever the primary region's component owned would
then move to another component, provider and URN, which Pulumi plans as a delete plus a create:
for a Global Database or Global Datastore that is the loss of the replication topology, for an
IAM role a control-plane call (IAM's control plane lives in us-east-1) in the middle of a regional
recovery. So these live here, under the provider of the stack's *home* region
(``commerce-db:homeRegion``, which ``commerce-db failover promote`` pins), and never move:

- the RDS enhanced-monitoring role (IAM is global; every region's databases use it);
- the Aurora Global Database (Aurora variant with replica regions);
- the ElastiCache Global Datastore (its ``primary_replication_group_id`` is only read at creation:
  after a failover AWS reports another member as primary, so that argument is ignored later).

No API call goes to the home region unless one of these resources itself changes, so a stack
whose home region is down still applies (these resources stay as they are).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ._iam import service_role
from .backup import BACKUP_SERVICE_POLICY_ARN, RESTORE_SERVICE_POLICY_ARN

ENHANCED_MONITORING_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass(frozen=True, kw_only=True)
class StackSharedArgs:
    """Inputs of :class:`StackShared`."""

    stack_slug: str
    """Lower-case stack name used in physical names (``cdb-<slug>-...``). Required."""
    monitoring: bool = True
    """Create the enhanced-monitoring role (an interval > 0 is configured). Default: True."""
    aurora_global: bool = False
    """Create the Aurora Global Database. Default: False."""
    engine_version: str = "16.6"
    """Aurora engine version of the global cluster. Default: "16.6"."""
    db_name: str = "commerce"
    """Database name of the global cluster. Default: "commerce"."""
    deletion_protection: bool = True
    """Deletion protection of the global cluster. Default: True."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""


class StackShared(pulumi.ComponentResource):
    """Stack-wide resources that a failover must never move (see the module docstring)."""

    monitoring_role_arn: pulumi.Output[str | None]
    """Enhanced-monitoring role ARN (None without monitoring)."""
    aurora_global_cluster_id: pulumi.Output[str] | None
    """Aurora Global Database id (None unless ``aurora_global``)."""
    aurora_global_writer_endpoint: pulumi.Output[str] | None
    """The Global Database's writer endpoint: AWS points it at the current primary cluster after a
    switchover or failover, so applications keep one name (None unless ``aurora_global``)."""
    cache_global_group_id: pulumi.Output[str] | None
    """Global Datastore id, once :meth:`add_cache_global_group` ran (else None)."""
    backup_role_arn: pulumi.Output[str]
    """AWS Backup service role (backups and restore tests in whichever region is primary)."""

    def __init__(self, name: str, args: StackSharedArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:StackShared", name, None, opts)
        self._name = name
        self._args = args
        tags = {**args.tags, "component": "StackShared"}
        self.monitoring_role_arn = pulumi.Output.from_input(None)
        if args.monitoring:
            # RDS checks the role's permissions when an instance is created with it: the ARN
            # resolves only after the policy attachment exists.
            self.monitoring_role_arn = service_role(
                f"{name}-rds-monitoring",
                service="monitoring.rds.amazonaws.com",
                description="RDS enhanced monitoring publishes OS metrics to CloudWatch Logs (all regions)",
                attachments={f"{name}-rds-monitoring": ENHANCED_MONITORING_POLICY_ARN},
                tags=tags,
                parent=self,
            ).arn
        # AWS Backup, too, checks the role when a job starts: the ARN waits for both attachments.
        self.backup_role_arn = service_role(
            f"{name}-backup",
            service="backup.amazonaws.com",
            description="AWS Backup service role for the commerce-db plan and restore tests (all regions)",
            attachments={
                f"{name}-backup-backup": BACKUP_SERVICE_POLICY_ARN,
                f"{name}-backup-restore": RESTORE_SERVICE_POLICY_ARN,
            },
            tags=tags,
            parent=self,
        ).arn
        self.aurora_global_cluster_id = None
        self.aurora_global_writer_endpoint = None
        if args.aurora_global:
            global_cluster = aws.rds.GlobalCluster(
                f"{name}-aurora-global",
                global_cluster_identifier=f"cdb-{args.stack_slug}-global",
                engine="aurora-postgresql",
                engine_version=args.engine_version,
                database_name=args.db_name,
                storage_encrypted=True,
                deletion_protection=args.deletion_protection,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # Minor upgrades with auto_minor_version_upgrade show up as drift; majors are
                    # a deliberate change of engineVersion (which the global cluster drives).
                    ignore_changes=["engineVersion"],
                ),
            )
            self.aurora_global_cluster_id = global_cluster.id
            self.aurora_global_writer_endpoint = global_cluster.endpoint
        self.cache_global_group_id = None
        self.register_outputs({"monitoring_role_arn": self.monitoring_role_arn})

    def add_cache_global_group(
        self, primary_replication_group_id: pulumi.Input[str], *, description: str = "commerce-db cache"
    ) -> pulumi.Output[str]:
        """Create the Global Datastore from the primary region's replication group; returns its id.

        ``primary_replication_group_id`` is only used at creation: a failover makes another member
        the primary (``failover-global-replication-group``), and the provider would otherwise
        replace the global group to "fix" it.
        """
        group = aws.elasticache.GlobalReplicationGroup(
            f"{self._name}-cache-global",
            global_replication_group_id_suffix=f"cdb-{self._args.stack_slug}"[:40],
            global_replication_group_description=f"{description} (Global Datastore)",
            primary_replication_group_id=primary_replication_group_id,
            automatic_failover_enabled=True,
            # Protected like the replication groups it spans (issue 9, finding 9), where the stack
            # protects its databases (deletion protection on).
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=["primaryReplicationGroupId"],
                protect=self._args.deletion_protection,
                retain_on_delete=self._args.deletion_protection,
            ),
        )
        self.cache_global_group_id = group.global_replication_group_id
        return group.global_replication_group_id
