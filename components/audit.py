"""AuditTrail: the audit S3 bucket and the account's CloudTrail trail.

The bucket is KMS-encrypted with the region's CMK, versioned, blocks all public access, refuses
non-TLS requests and moves objects to Glacier then expires them per :class:`AuditTrailArgs`.
CloudTrail may write to it only for this trail (``aws:SourceArn``) and this account. Other
writers (the Firehose stream of :class:`commerce_db_components.observability_layer.ObservabilityLayer`) get
access through their own IAM role policy, which is enough inside one account.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from ._protection import stateful
from .validation import stack_scoped


@dataclass(frozen=True, kw_only=True)
class AuditTrailArgs:
    """Inputs of :class:`AuditTrail`."""

    region: str
    """Region of the bucket and trail home region (used in the trail ARN condition). Required."""
    kms_key_arn: pulumi.Input[str]
    """CMK in ``region`` for bucket default encryption and CloudTrail log files. Its key policy
    must allow ``cloudtrail.amazonaws.com`` to ``kms:GenerateDataKey*`` (with the
    ``kms:EncryptionContext:aws:cloudtrail:arn`` condition) and ``kms:DescribeKey``. Required."""
    create_trail: bool = True
    """Create the CloudTrail trail. Set False for a bucket-only region (e.g. a second audit
    bucket); an account needs one multi-region trail only. Default: True."""
    trail_name: str | None = None
    """Trail name; known up front because the bucket policy's ``aws:SourceArn`` names it.
    Default: None (``<name>-<stack>``, unique per stack)."""
    trail_copy: Literal["first", "additional"] = "additional"
    """Whether this trail is the account's first copy of management events (free) or an
    additional, paid one ($2.00 per 100,000 events) next to an organisation trail; tagged on the
    trail and priced by the plan. Default: "additional"."""
    multi_region_trail: bool = True
    """Record events of every region in this one trail. Default: True."""
    include_global_service_events: bool = True
    """Record IAM/STS and other global-service events. Default: True."""
    log_file_validation: bool = True
    """Write CloudTrail digest files so tampering is detectable. Default: True."""
    transition_to_glacier_days: int = 90
    """Days after creation when objects move to ``glacier_storage_class`` (the first 90 days stay
    immediately readable, as PCI DSS asks). Default: 90."""
    glacier_storage_class: Literal["GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"] = "GLACIER"
    """Archive storage class. Default: "GLACIER"."""
    expiration_days: int | None = 400
    """Days after creation when objects expire (>= 365 keeps a year of audit history); None keeps
    them forever. Default: 400."""
    noncurrent_version_expiration_days: int = 90
    """Days after which overwritten/deleted object versions are removed. Default: 90."""
    force_destroy: bool = False
    """Let ``pulumi destroy`` delete a non-empty bucket (staging only). Default: False."""
    protect: bool = True
    """Pulumi ``protect`` and ``retain_on_delete`` on the audit bucket. Default: True."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            raise ValueError(f"region {self.region!r} is invalid; expected an AWS region such as 'us-east-1'")
        if self.trail_name is not None and not re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9._-]{2,127}", self.trail_name
        ):
            raise ValueError(
                f"trail_name {self.trail_name!r} is invalid; allowed: 3-128 letters, digits, '.', '_', '-', "
                "starting with a letter or digit"
            )
        if self.transition_to_glacier_days < 1:
            raise ValueError(
                f"transition_to_glacier_days {self.transition_to_glacier_days} is invalid; allowed: >= 1"
            )
        if self.glacier_storage_class not in ("GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"):
            raise ValueError(
                f"glacier_storage_class {self.glacier_storage_class!r} is invalid; "
                "allowed: GLACIER, DEEP_ARCHIVE, GLACIER_IR"
            )
        if self.expiration_days is not None and self.expiration_days <= self.transition_to_glacier_days:
            raise ValueError(
                f"expiration_days {self.expiration_days} is invalid; allowed: None or more than "
                f"transition_to_glacier_days ({self.transition_to_glacier_days})"
            )
        if self.noncurrent_version_expiration_days < 1:
            raise ValueError(
                f"noncurrent_version_expiration_days {self.noncurrent_version_expiration_days} is invalid; "
                "allowed: >= 1"
            )


class AuditTrail(pulumi.ComponentResource):
    """Encrypted, versioned, private audit bucket plus the CloudTrail trail writing to it."""

    bucket_name: pulumi.Output[str]
    """Name of the audit bucket."""
    bucket_arn: pulumi.Output[str]
    """ARN of the audit bucket (Firehose destination)."""
    kms_key_arn: pulumi.Output[str]
    """CMK encrypting the bucket (pass to Firehose as ``audit_bucket_kms_key_arn``)."""
    trail_arn: pulumi.Output[str | None]
    """ARN of the CloudTrail trail (None when ``create_trail`` is False)."""

    def __init__(self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:AuditTrail", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "component": "AuditTrail"}
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        trail_name = args.trail_name or stack_scoped(name, alphabet=r"A-Za-z0-9._-", max_length=128)

        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            force_destroy=args.force_destroy,
            tags=tags,
            opts=stateful(self, args.protect),
        )
        # Objects belong to the bucket owner and ACLs are off: CloudTrail and Firehose writes need
        # no ACL dance, and nobody can grant access through an object ACL.
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn
                    ),
                    # S3 Bucket Keys cut KMS requests (and cost) by ~99% for log-style writes.
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="audit-retention",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=args.transition_to_glacier_days, storage_class=args.glacier_storage_class
                        )
                    ],
                    expiration=(
                        aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.expiration_days)
                        if args.expiration_days is not None
                        else None
                    ),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.noncurrent_version_expiration_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ],
            # Lifecycle rules on a bucket whose versioning is still changing are rejected.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        trail_arn = pulumi.Output.concat(
            "arn:", partition, ":cloudtrail:", args.region, ":", account_id, ":trail/", trail_name
        )
        policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, account_id, trail_arn).apply(
                lambda a: bucket_policy(a[0], a[1], a[2] if args.create_trail else None)
            ),
            # A policy that denies public access is fine; PutBucketPolicy still races the block.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block, ownership]),
        )

        self.trail_arn = pulumi.Output.from_input(None)
        if args.create_trail:
            trail = aws.cloudtrail.Trail(
                f"{name}-trail",
                name=trail_name,
                s3_bucket_name=bucket.bucket,
                kms_key_id=args.kms_key_arn,
                is_multi_region_trail=args.multi_region_trail,
                include_global_service_events=args.include_global_service_events,
                enable_log_file_validation=args.log_file_validation,
                enable_logging=True,
                event_selectors=[
                    aws.cloudtrail.TrailEventSelectorArgs(
                        read_write_type="All", include_management_events=True
                    )
                ],
                tags={**tags, "trail-copy": args.trail_copy},
                # CloudTrail checks the bucket policy and encryption when the trail is created.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, encryption]),
            )
            self.trail_arn = trail.arn

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = pulumi.Output.from_input(args.kms_key_arn)
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "kms_key_arn": self.kms_key_arn,
                "trail_arn": self.trail_arn,
            }
        )


def bucket_policy(bucket_arn: str, account_id: str, trail_arn: str | None) -> str:
    """Audit bucket policy: TLS only; CloudTrail may check the ACL and write, for ``trail_arn`` only.

    Without ``trail_arn`` (bucket-only region) only the TLS rule remains; same-account writers
    such as the Firehose role are authorised by their IAM policy.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    if trail_arn is not None:
        statements += [
            {
                "Sid": "CloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
            },
            {
                "Sid": "CloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
                "Condition": {
                    "StringEquals": {
                        "aws:SourceArn": trail_arn,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    }
                },
            },
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})
