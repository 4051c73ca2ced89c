"""RegionKeys: the customer-managed KMS key of one region.

One CMK per region encrypts everything the tier stores there: RDS storage and Performance
Insights, the Secrets Manager secrets, AWS Backup vaults, the SNS alarm topic, ElastiCache at
rest, CloudWatch log groups and the audit bucket / CloudTrail. Automatic yearly rotation is on.

The key policy keeps IAM in charge for the account (``arn:aws:iam::ACCOUNT:root``), which is how
RDS, Secrets Manager, Backup, ElastiCache and Firehose use it (through the caller's IAM rights and
``kms:ViaService``). Services that act as themselves need explicit statements: CloudWatch Logs
(scoped by the log-group encryption context), CloudWatch alarms / RDS events / EventBridge / AWS Backup
publishing to the encrypted SNS topic, and CloudTrail writing log files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True, kw_only=True)
class RegionKeysArgs:
    """Inputs of :class:`RegionKeys`."""

    region: str
    """Region of the key (service principals in the policy name it). Required."""
    alias: str
    """Alias without the ``alias/`` prefix, unique per account and region. Required."""
    deletion_window_days: int = 30
    """Waiting period before a scheduled deletion (7-30). Default: 30."""
    protect: bool = True
    """Pulumi ``protect`` and ``retain_on_delete`` on the key: everything of the region is
    encrypted with it. Default: True."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the key. Default: {}."""

    def __post_init__(self) -> None:
        if not 7 <= self.deletion_window_days <= 30:
            raise ValueError(f"deletion_window_days {self.deletion_window_days} is invalid; allowed: 7-30")
        if self.alias.startswith("alias/aws") or not self.alias:
            raise ValueError(f"alias {self.alias!r} is invalid; allowed: a name not starting with 'aws'")


SNS_PUBLISHERS: tuple[str, ...] = (
    "cloudwatch.amazonaws.com",
    "events.rds.amazonaws.com",
    "events.amazonaws.com",
    "backup.amazonaws.com",
    "elasticache.amazonaws.com",
)
"""Services publishing to the KMS-encrypted alarm topic (alarms, RDS events, EventBridge, Backup,
ElastiCache event notifications)."""


def key_policy(account_id: str, region: str) -> dict[str, Any]:
    """The CMK's key policy document for ``account_id`` in ``region`` (pure, unit-tested)."""
    root = f"arn:aws:iam::{account_id}:root"
    trails = f"arn:aws:cloudtrail:*:{account_id}:trail/*"
    # The actions whose requests carry the log group's encryption context (the condition below);
    # Describe* carries none, so a grant of it under that condition could never apply.
    use = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsEncryptsOwnLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": use,
                "Resource": "*",
                "Condition": {
                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account_id}:*"}
                },
            },
            {
                "Sid": "PublishersToEncryptedSnsTopic",
                "Effect": "Allow",
                # As in AWS's SNS-SSE examples: these services call KMS through SNS for our topic;
                # no aws:SourceAccount condition, which KMS requests made via SNS need not carry.
                "Principal": {"Service": list(SNS_PUBLISHERS)},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
            {
                "Sid": "CloudTrailWritesLogFiles",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": trails,
                        "aws:SourceArn": trails,
                    }
                },
            },
            {
                # Its own statement, as in AWS's CloudTrail key-policy guide: DescribeKey requests
                # carry no encryption context, so a condition on it would never match and
                # CreateTrail would fail with InsufficientEncryptionPolicyException.
                "Sid": "CloudTrailDescribesKey",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:SourceArn": trails}},
            },
        ],
    }


class RegionKeys(pulumi.ComponentResource):
    """The region's CMK (rotation on) and its alias."""

    key_arn: pulumi.Output[str]
    """ARN of the CMK."""
    key_id: pulumi.Output[str]
    """Key ID of the CMK."""
    alias_name: pulumi.Output[str]
    """``alias/<alias>``."""

    def __init__(self, name: str, args: RegionKeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:RegionKeys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        key = aws.kms.Key(
            f"{name}-cmk",
            description=f"commerce-db data key ({args.region})",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=identity.account_id.apply(lambda account: json.dumps(key_policy(account, args.region))),
            tags={**args.tags, "component": "RegionKeys"},
            # Deleting the key would make every snapshot, recovery point and final snapshot it
            # encrypts unreadable: a region leaving the stack keeps its key (retained in AWS).
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True),
        )
        alias = aws.kms.Alias(
            f"{name}-alias", name=f"alias/{args.alias}", target_key_id=key.key_id, opts=child
        )
        self.key = key
        self.key_arn = key.arn
        self.key_id = key.key_id
        self.alias_name = alias.name
        self.register_outputs({"key_arn": self.key_arn, "key_id": self.key_id, "alias_name": self.alias_name})
