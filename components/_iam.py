"""IAM documents the components share."""

from __future__ import annotations

import json


def service_assume_role_policy(service: str) -> str:
    """Trust policy (JSON) letting the AWS ``service`` principal (``rds.amazonaws.com``...) assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )
