"""AuditTrail under the mock engine: bucket hardening, lifecycle, CloudTrail, and Firehose wiring."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from _mockrun import run, single
from commerce_db_components.audit import AuditTrail, AuditTrailArgs, bucket_policy
from commerce_db_components.observability_layer import ObservabilityLayer, ObservabilityLayerArgs

from commerce_db.mock_engine import ProgramRun

CMK = "arn:aws:kms:us-east-1:123456789012:key/audit"
TRAIL = "aws:cloudtrail/trail:Trail"


def build(**overrides: Any) -> ProgramRun:
    def program() -> None:
        audit = AuditTrail(
            "audit", AuditTrailArgs(**{"region": "us-east-1", "kms_key_arn": CMK, **overrides})
        )
        pulumi.export("bucketArn", audit.bucket_arn)
        pulumi.export("bucketName", audit.bucket_name)
        pulumi.export("trailArn", audit.trail_arn)
        pulumi.export("key", audit.kms_key_arn)

    return run(program)


def test_bucket_is_encrypted_versioned_private_and_owner_enforced() -> None:
    r = build()
    bucket = single(r, "aws:s3/bucket:Bucket")
    bid = bucket.state["id"]
    assert bucket.inputs["forceDestroy"] is False
    sse = single(r, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["bucket"] == bid
    rule = sse.inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": CMK}
    assert rule["bucketKeyEnabled"] is True
    versioning = single(r, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["bucket"] == bid
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    block = single(r, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert block["bucket"] == bid
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block[flag] is True, flag
    ownership = single(r, "aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    assert r.outputs["bucketArn"] == bucket.state["arn"]
    assert r.outputs["key"] == CMK


def test_lifecycle_transitions_to_glacier_and_expires() -> None:
    r = build(transition_to_glacier_days=30, expiration_days=2557, glacier_storage_class="DEEP_ARCHIVE")
    rules = single(r, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["status"] == "Enabled"
    assert rule["transitions"] == [{"days": 30, "storageClass": "DEEP_ARCHIVE"}]
    assert rule["expiration"] == {"days": 2557}
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}

    keep = single(
        build(expiration_days=None), "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    assert "expiration" not in keep.inputs["rules"][0]


def test_trail_writes_to_bucket_multi_region_with_validation_and_kms() -> None:
    r = build(trail_name="commerce-audit")
    trail = single(r, TRAIL).inputs
    bucket = single(r, "aws:s3/bucket:Bucket")
    assert trail["s3BucketName"] == bucket.state["bucket"]
    assert trail["name"] == "commerce-audit"
    assert trail["kmsKeyId"] == CMK
    assert trail["isMultiRegionTrail"] is True
    assert trail["enableLogFileValidation"] is True
    assert trail["includeGlobalServiceEvents"] is True
    assert trail["enableLogging"] is True
    assert trail["eventSelectors"] == [{"readWriteType": "All", "includeManagementEvents": True}]
    assert r.outputs["trailArn"] == single(r, TRAIL).state["arn"]


def test_bucket_policy_enforces_tls_and_scopes_cloudtrail_by_source_arn() -> None:
    r = build(trail_name="commerce-audit")
    bucket = single(r, "aws:s3/bucket:Bucket")
    arn = bucket.state["arn"]
    policy = json.loads(single(r, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    by_sid = {st["Sid"]: st for st in policy["Statement"]}
    deny = by_sid["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny["Resource"]) == {arn, f"{arn}/*"}
    trail_arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/commerce-audit"
    acl, write = by_sid["CloudTrailAclCheck"], by_sid["CloudTrailWrite"]
    assert acl["Principal"] == write["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert (
        acl["Action"] == "s3:GetBucketAcl" and acl["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn
    )
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == f"{arn}/AWSLogs/123456789012/*"
    assert write["Condition"]["StringEquals"] == {
        "aws:SourceArn": trail_arn,
        "s3:x-amz-acl": "bucket-owner-full-control",
    }
    assert all(st["Effect"] == "Deny" or "Condition" in st for st in policy["Statement"])


def test_bucket_only_mode_has_no_trail_and_no_cloudtrail_grant() -> None:
    r = build(create_trail=False)
    assert r.of_type(TRAIL) == []
    policy = json.loads(single(r, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    assert [st["Sid"] for st in policy["Statement"]] == ["DenyInsecureTransport"]
    assert r.outputs["trailArn"] is None
    assert single(r, "aws:s3/bucketVersioning:BucketVersioning")  # still hardened


def test_firehose_delivers_to_the_audit_bucket() -> None:
    def program() -> None:
        audit = AuditTrail("audit", AuditTrailArgs(region="us-east-1", kms_key_arn=CMK))
        ObservabilityLayer(
            "obs",
            ObservabilityLayerArgs(
                region="us-east-1",
                kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/obs",
                db_instances={"primary": "prod-db"},
                postgres_log_groups={"primary": "/aws/rds/instance/prod-db/postgresql"},
                audit_bucket_arn=audit.bucket_arn,
                audit_bucket_kms_key_arn=audit.kms_key_arn,
            ),
        )

    r = run(program)
    bucket = single(r, "aws:s3/bucket:Bucket")
    stream = single(r, "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
    assert stream.inputs["extendedS3Configuration"]["bucketArn"] == bucket.state["arn"]
    assert stream.inputs["extendedS3Configuration"]["kmsKeyArn"] == CMK
    filt = single(r, "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter")
    assert filt.inputs["destinationArn"] == stream.state["arn"]


def test_children_parented_to_component() -> None:
    r = build()
    comp = single(r, "commerce:db:AuditTrail")
    for res in r.resources:
        if res is not comp:
            assert res.parent_type == "commerce:db:AuditTrail" and res.name.startswith("audit-"), res.name


def test_bucket_policy_function_without_trail() -> None:
    doc = json.loads(bucket_policy("arn:aws:s3:::b", "111122223333", None))
    assert len(doc["Statement"]) == 1 and doc["Statement"][0]["Effect"] == "Deny"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"region": "nowhere"}, "region"),
        ({"trail_name": "a b"}, "trail_name"),
        ({"transition_to_glacier_days": 0}, "transition_to_glacier_days"),
        ({"expiration_days": 60}, "expiration_days"),
        ({"glacier_storage_class": "STANDARD"}, "glacier_storage_class"),
        ({"noncurrent_version_expiration_days": 0}, "noncurrent_version_expiration_days"),
    ],
)
def test_invalid_args(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AuditTrailArgs(**{"region": "us-east-1", "kms_key_arn": CMK, **overrides})
