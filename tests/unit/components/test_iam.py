"""commerce_db_components._iam: the service trust policy."""

from __future__ import annotations

import json

from commerce_db_components._iam import service_assume_role_policy


def test_service_trust_policy_allows_only_that_service_to_assume_the_role() -> None:
    doc = json.loads(service_assume_role_policy("backup.amazonaws.com"))
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
