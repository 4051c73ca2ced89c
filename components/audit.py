"""AuditTrail: the audit S3 bucket and the account's CloudTrail trail.

The bucket is KMS-encrypted with the region's CMK, versioned, blocks all public access, refuses
non-TLS requests and moves objects to Glacier then expires them per :class:`AuditTrailArgs`.
CloudTrail may write to it only for this trail (``aws:SourceArn``) and this account. Other
writers (the Firehose stream of :class:`components.observability_layer.ObservabilityLayer`) get
access through their own IAM role policy, which is enough inside one account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pulumi


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
    Default: None (the component name)."""
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
        raise NotImplementedError("AuditTrail body lands in the next commit")
