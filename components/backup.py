"""BackupPlan: AWS Backup for the primary database, copied to a vault in the DR region.

A vault encrypted with the region's CMK, a plan with one daily rule (retention at most 35 days:
continuous backups allow no more) whose copy action sends every recovery point to a vault in the
DR region encrypted with **its own** CMK there, and a selection of the primary (RDS instance or
Aurora cluster ARN) with a service role carrying ``AWSBackupServiceRolePolicyForBackup``.

The DR vault and key are declared with pulumi-aws v7's per-resource ``region`` argument: they
belong to this plan's lifecycle, while the rest of the DR region (replicas, cache) belongs to that
region's stack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ._iam import service_assume_role_policy
from .keys import key_policy

BACKUP_SERVICE_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
RESTORE_SERVICE_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"


@dataclass(frozen=True, kw_only=True)
class BackupPlanArgs:
    """Inputs of :class:`BackupPlan`."""

    region: str
    """Region of the plan and the source vault. Required."""
    kms_key_arn: pulumi.Input[str]
    """CMK of the source vault (this region). Required."""
    resource_arns: Sequence[pulumi.Input[str]]
    """Resources to back up: the primary instance or Aurora cluster ARN. Required."""
    retention_days: int = 35
    """Days a recovery point (and its DR copy) is kept, 1-35. Default: 35."""
    schedule: str = "cron(0 5 ? * * *)"
    """Rule schedule (AWS cron, UTC). Default: daily 05:00."""
    start_window_minutes: int = 60
    """Start window. Default: 60."""
    completion_window_minutes: int = 360
    """Completion window. Default: 360."""
    continuous: bool = True
    """Continuous backup (point-in-time restore within retention). Default: True."""
    dr_region: str | None = None
    """Region of the copy vault; None copies nowhere. Default: None."""
    force_destroy: bool = False
    """Let ``pulumi destroy`` delete vaults holding recovery points (staging). Default: False."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        if not 1 <= self.retention_days <= 35:
            raise ValueError(
                f"retention_days {self.retention_days} is invalid; allowed: 1-35 "
                "(continuous backups keep at most 35 days)"
            )
        if self.dr_region == self.region:
            raise ValueError(f"dr_region {self.dr_region!r} equals region; the copy must leave the region")
        if not self.resource_arns:
            raise ValueError("resource_arns is empty; allowed: at least the primary's ARN")
        if not self.schedule.startswith("cron(") and not self.schedule.startswith("rate("):
            raise ValueError(f"schedule {self.schedule!r} is invalid; expected cron(...) or rate(...)")


class BackupPlan(pulumi.ComponentResource):
    """AWS Backup vault + daily plan + DR copy + selection of the primary."""

    vault_arn: pulumi.Output[str]
    """Source vault ARN."""
    dr_vault_arn: pulumi.Output[str | None]
    """DR vault ARN (None without a DR region)."""
    plan_id: pulumi.Output[str]
    """Backup plan ID."""
    role_arn: pulumi.Output[str]
    """Service role used by the selection."""

    def __init__(self, name: str, args: BackupPlanArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:BackupPlan", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "component": "BackupPlan"}

        vault = aws.backup.Vault(
            f"{name}-vault",
            kms_key_arn=args.kms_key_arn,
            force_destroy=args.force_destroy,
            tags=tags,
            opts=child,
        )
        self.vault_arn = vault.arn
        copy_actions: list[aws.backup.PlanRuleCopyActionArgs] = []
        self.dr_vault_arn = pulumi.Output.from_input(None)
        if args.dr_region:
            identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
            dr_key = aws.kms.Key(
                f"{name}-dr-cmk",
                region=args.dr_region,
                description=f"commerce-db DR backup copies ({args.dr_region})",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=identity.account_id.apply(lambda a: json.dumps(key_policy(a, str(args.dr_region)))),
                tags=tags,
                opts=child,
            )
            dr_vault = aws.backup.Vault(
                f"{name}-dr-vault",
                region=args.dr_region,
                kms_key_arn=dr_key.arn,
                force_destroy=args.force_destroy,
                tags=tags,
                opts=child,
            )
            self.dr_vault_arn = dr_vault.arn
            copy_actions.append(
                aws.backup.PlanRuleCopyActionArgs(
                    destination_vault_arn=dr_vault.arn,
                    lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=args.retention_days),
                )
            )

        plan = aws.backup.Plan(
            f"{name}-plan",
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name="daily",
                    target_vault_name=vault.name,
                    schedule=args.schedule,
                    start_window=args.start_window_minutes,
                    completion_window=args.completion_window_minutes,
                    enable_continuous_backup=args.continuous,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=args.retention_days),
                    copy_actions=copy_actions or None,
                    recovery_point_tags=dict(tags),
                )
            ],
            tags=tags,
            opts=child,
        )
        self.plan_id = plan.id
        role = aws.iam.Role(
            f"{name}-role",
            description="AWS Backup service role for the commerce-db plan",
            assume_role_policy=service_assume_role_policy("backup.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        for suffix, arn in (("backup", BACKUP_SERVICE_POLICY_ARN), ("restore", RESTORE_SERVICE_POLICY_ARN)):
            aws.iam.RolePolicyAttachment(f"{name}-role-{suffix}", role=role.name, policy_arn=arn, opts=child)
        self.role_arn = role.arn
        aws.backup.Selection(
            f"{name}-selection",
            name=f"{name}-primary",
            plan_id=plan.id,
            iam_role_arn=role.arn,
            resources=list(args.resource_arns),
            opts=child,
        )
        self.register_outputs(
            {"vault_arn": self.vault_arn, "dr_vault_arn": self.dr_vault_arn, "plan_id": self.plan_id}
        )
