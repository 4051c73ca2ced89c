"""``Settings.from_stack_outputs`` reads the secrets of the process's own region
(``secretArnsByRegion``): the primary region's copies are unreadable when that region is lost."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataaccess import Settings, SettingsError


def _secret(sm: Any, name: str, payload: dict[str, Any]) -> str:
    return str(sm.create_secret(Name=name, SecretString=json.dumps(payload))["ARN"])


def test_a_replica_region_reads_its_own_copies_of_the_secrets() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        use1 = boto3.client("secretsmanager", region_name="us-east-1")
        usw2 = boto3.client("secretsmanager", region_name="us-west-2")
        user = {"port": 5432, "dbname": "app", "password": "pw"}
        primary = {
            "writerSecretArn": _secret(use1, "w", {**user, "username": "writer_use1"}),
            "readerSecretArn": _secret(use1, "r", {**user, "username": "reader_use1"}),
            "dbSecretArn": _secret(use1, "m", {**user, "username": "master_use1"}),
            "redisAuthSecretArn": _secret(use1, "a", {"auth_token": "token-use1"}),
        }
        own = {
            "writer": _secret(usw2, "w", {**user, "username": "writer_usw2"}),
            "reader": _secret(usw2, "r", {**user, "username": "reader_usw2"}),
            "master": _secret(usw2, "m", {**user, "username": "master_usw2"}),
            "redisAuth": _secret(usw2, "a", {"auth_token": "token-usw2"}),
        }
        outputs = {
            "writerEndpoint": "cdb-prod-use1.proxy-abc.us-east-1.rds.amazonaws.com:5432",
            "redisPrimaryEndpoint": "master.cdb.usw2.cache.amazonaws.com:6379",
            "secretArnsByRegion": {"us-west-2": own, "us-east-1": {}},
            **primary,
        }
        s = Settings.from_stack_outputs(outputs, region="us-west-2", client=usw2, ssl_root_cert="/ca.pem")
        assert "//writer_usw2@" in s.writer_dsn and s.redis_auth_token == "token-usw2"
        assert s.credentials is not None and s.credentials.secret_id == own["writer"]  # type: ignore[attr-defined]
        assert s.reader_credentials is not None and s.reader_credentials.secret_id == own["reader"]  # type: ignore[attr-defined]
        # A region without copies (or no region given) falls back to the primary's secrets.
        for region in ("us-east-1", None):
            s = Settings.from_stack_outputs(outputs, region=region, client=use1, ssl_root_cert="/ca.pem")
            assert "//writer_use1@" in s.writer_dsn and s.redis_auth_token == "token-use1"
        with pytest.raises(SettingsError) as info:
            Settings.from_stack_outputs(
                {**outputs, "secretArnsByRegion": {"us-west-2": ["arn"]}}, region="us-west-2", client=usw2
            )
        assert info.value.field == "outputs.secretArnsByRegion"
