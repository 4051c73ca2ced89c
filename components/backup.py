"""BackupPlan: one region's AWS Backup vault, and the backup plan where the writer is.

Every region of a stack has one ``BackupPlan`` component holding that region's vault (encrypted
with the region's CMK, optionally locked). The same component in every region, whatever the
region's role: a failover changes which region backs up and which receives copies, never which
vault belongs to which region, so no vault (or its recovery points) is ever deleted by one.

- :meth:`BackupPlan.add_plan` (writer's region): a daily rule (continuous backup = point-in-time
  restore for up to 35 days) whose copy action sends every recovery point to the DR region's
  vault, and a selection of the writer (RDS instance or Aurora cluster ARN).
- :meth:`BackupPlan.add_restore_testing` (writer's region): an AWS Backup restore-testing plan that
  restores the latest recovery point every week and deletes the restored copy after validation,
  so a restore is proven regularly, not assumed.
- :meth:`BackupPlan.add_automated_backups_replication` (DR region, RDS mode): RDS cross-region
  automated-backup replication of the writer, which keeps *point-in-time* restore in the DR region
  (AWS Backup's cross-region copies are snapshots: restore to the copy's time only).

The IAM service role is passed in (a stack-wide role: a failover must not need IAM's control plane).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from .validation import stack_scoped

BACKUP_SERVICE_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
RESTORE_SERVICE_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"


@dataclass(frozen=True, kw_only=True)
class BackupPlanArgs:
    """Inputs of :class:`BackupPlan` (the vault; the plan comes with :meth:`BackupPlan.add_plan`)."""

    region: str
    """Region of the vault. Required."""
    kms_key_arn: pulumi.Input[str]
    """CMK of the vault (this region's). Required."""
    vault_name: str | None = None
    """Fixed vault name (unique per account and region); None auto-names. Default: None."""
    retention_days: int = 35
    """Days a recovery point is kept, 1-35 (continuous backups keep at most 35); also the vault
    lock's minimum retention. Default: 35."""
    lock: bool = False
    """Lock the vault: no recovery point can be deleted before ``retention_days``. Default: False."""
    lock_changeable_for_days: int = 0
    """Days the lock can still be removed before it turns into compliance mode (then nobody,
    root included, can shorten retention or delete the lock); 0 keeps governance mode (removable
    with ``backup:DeleteBackupVaultLockConfiguration``). Compliance mode needs >= 3. Default: 0."""
    force_destroy: bool = False
    """Let ``pulumi destroy`` delete a vault holding recovery points (staging). Default: False."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        if not 1 <= self.retention_days <= 35:
            raise ValueError(
                f"retention_days {self.retention_days} is invalid; allowed: 1-35 "
                "(continuous backups keep at most 35 days)"
            )
        if self.lock_changeable_for_days and self.lock_changeable_for_days < 3:
            raise ValueError(
                f"lock_changeable_for_days {self.lock_changeable_for_days} is invalid; allowed: 0 "
                "(governance mode) or >= 3 (compliance mode after that many days)"
            )
        if self.lock and self.force_destroy:
            raise ValueError("lock and force_destroy are both set; a locked vault cannot be force-destroyed")


def _check_schedule(schedule: str) -> None:
    if not schedule.startswith("cron(") and not schedule.startswith("rate("):
        raise ValueError(f"schedule {schedule!r} is invalid; expected cron(...) or rate(...)")


class BackupPlan(pulumi.ComponentResource):
    """A region's backup vault; plus the plan / restore testing / backup replication by role."""

    vault_arn: pulumi.Output[str]
    """This region's vault ARN."""
    vault_name: pulumi.Output[str]
    """This region's vault name."""
    plan_id: pulumi.Output[str | None]
    """Backup plan ID (None until :meth:`add_plan`)."""

    def __init__(self, name: str, args: BackupPlanArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:BackupPlan", name, None, opts)
        self._name = name
        self._args = args
        self._tags = {**args.tags, "component": "BackupPlan"}
        child = pulumi.ResourceOptions(parent=self)
        vault = aws.backup.Vault(
            f"{name}-vault",
            name=args.vault_name,
            kms_key_arn=args.kms_key_arn,
            force_destroy=args.force_destroy,
            tags=self._tags,
            # Leaving the stack (a region dropped after a failover) must not delete recovery points:
            # the vault stays in AWS until its (locked) retention lets them expire.
            opts=pulumi.ResourceOptions(
                parent=self, protect=not args.force_destroy, retain_on_delete=not args.force_destroy
            ),
        )
        self.vault = vault
        self.vault_arn = vault.arn
        self.vault_name = vault.name
        if args.lock:
            aws.backup.VaultLockConfiguration(
                f"{name}-lock",
                backup_vault_name=vault.name,
                min_retention_days=args.retention_days,
                changeable_for_days=args.lock_changeable_for_days or None,
                opts=child,
            )
        self.plan_id = pulumi.Output.from_input(None)
        self.register_outputs({"vault_arn": self.vault_arn})

    def add_plan(
        self,
        *,
        resource_arns: Sequence[pulumi.Input[str]],
        role_arn: pulumi.Input[str],
        schedule: str = "cron(0 5 ? * * *)",
        start_window_minutes: int = 60,
        completion_window_minutes: int = 360,
        continuous: bool = True,
        dr_vault_arn: pulumi.Input[str] | None = None,
    ) -> aws.backup.Plan:
        """The daily plan (into this vault, copied to ``dr_vault_arn``) and a selection of ``resource_arns``.

        ``continuous`` (default True) keeps point-in-time restore within the retention in this
        region; the DR copy is a snapshot. ``role_arn`` needs AWS's backup and restore policies.
        """
        _check_schedule(schedule)
        if not resource_arns:
            raise ValueError("resource_arns is empty; allowed: at least the writer's ARN")
        child = pulumi.ResourceOptions(parent=self)
        retention = self._args.retention_days
        copy = (
            [
                aws.backup.PlanRuleCopyActionArgs(
                    destination_vault_arn=dr_vault_arn,
                    lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=retention),
                )
            ]
            if dr_vault_arn is not None
            else None
        )
        plan = aws.backup.Plan(
            f"{self._name}-plan",
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name="daily",
                    target_vault_name=self.vault.name,
                    schedule=schedule,
                    start_window=start_window_minutes,
                    completion_window=completion_window_minutes,
                    enable_continuous_backup=continuous,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=retention),
                    copy_actions=copy,
                    recovery_point_tags=dict(self._tags),
                )
            ],
            tags=self._tags,
            opts=child,
        )
        self.plan_id = plan.id
        aws.backup.Selection(
            f"{self._name}-selection",
            name=f"{self._name}-writer",
            plan_id=plan.id,
            iam_role_arn=role_arn,
            resources=list(resource_arns),
            opts=child,
        )
        return plan

    def add_restore_testing(
        self,
        *,
        resource_arns: Sequence[pulumi.Input[str]],
        role_arn: pulumi.Input[str],
        resource_type: str = "RDS",
        schedule: str = "cron(0 6 ? * SUN *)",
        validation_window_hours: int = 24,
        restore_metadata_overrides: Mapping[str, pulumi.Input[str]] | None = None,
    ) -> aws.backup.RestoreTestingPlan:
        """Weekly restore test of the latest recovery point of ``resource_arns`` from this vault.

        ``resource_type`` is AWS Backup's protected resource type (``RDS`` for an instance,
        ``Aurora`` for a cluster). The restored copy is deleted after ``validation_window_hours``
        (default 24); ``restore_metadata_overrides`` (e.g. ``dbSubnetGroupName``,
        ``vpcSecurityGroupIds``) keeps it in the private subnets.
        """
        _check_schedule(schedule)
        child = pulumi.ResourceOptions(parent=self)
        # Restore-testing names allow letters, digits and underscores only.
        # The stack in the name: restore-testing plan names are unique per account and region.
        plan_name = stack_scoped(self._name, alphabet="A-Za-z0-9_", sep="_", max_length=37) + "_restore_test"
        plan = aws.backup.RestoreTestingPlan(
            f"{self._name}-restore-test",
            name=plan_name,
            schedule_expression=schedule,
            start_window_hours=24,
            recovery_point_selection=aws.backup.RestoreTestingPlanRecoveryPointSelectionArgs(
                algorithm="LATEST_WITHIN_WINDOW",
                include_vaults=[self.vault.arn],
                recovery_point_types=["SNAPSHOT", "CONTINUOUS"],
                selection_window_days=7,
            ),
            tags=self._tags,
            opts=child,
        )
        aws.backup.RestoreTestingSelection(
            f"{self._name}-restore-test",
            name=plan_name + "_db",
            restore_testing_plan_name=plan.name,
            protected_resource_type=resource_type,
            protected_resource_arns=list(resource_arns),
            iam_role_arn=role_arn,
            validation_window_hours=validation_window_hours,
            restore_metadata_overrides=dict(restore_metadata_overrides or {}) or None,
            opts=child,
        )
        return plan

    def add_automated_backups_replication(
        self,
        *,
        source_instance_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        retention_days: int,
        retain_on_delete: bool = True,
    ) -> aws.rds.InstanceAutomatedBackupsReplication:
        """Replicate the RDS writer's automated backups into this (DR) region, encrypted with ``kms_key_arn``.

        Keeps point-in-time restore in this region (``restore-db-instance-to-point-in-time
        --source-db-instance-automated-backups-arn``). ``retention_days`` 1-35. RDS instances only
        (not Aurora / Multi-AZ DB clusters). ``retain_on_delete`` (default True): see below; False
        for a disposable stack (its delete then stops the replication, which needs the source region).
        """
        if not 1 <= retention_days <= 35:
            raise ValueError(f"retention_days {retention_days} is invalid; allowed: 1-35")
        return aws.rds.InstanceAutomatedBackupsReplication(
            f"{self._name}-pitr-replication",
            source_db_instance_arn=source_instance_arn,
            kms_key_id=kms_key_arn,
            retention_period=retention_days,
            # Retained on delete: when the writer moves (a failover), Pulumi forgets this resource
            # instead of stopping the replication; the provider's delete waits on the *source*
            # region's API (terraform-provider-aws, instance_automated_backups_replication.go),
            # which is the region that failed, and the backups already replicated here stay
            # restorable until their retention ends (the point-in-time fallback).
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=retain_on_delete),
        )
