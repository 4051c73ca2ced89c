"""``Settings.from_stack_outputs`` on the outputs the real program exports (the mocked prod plan),
not on a hand-written dict: the independent second DR game day found that the hand-written
outputs of the tests had every region's proxy filled in, while the program exports
``writerEndpointsByRegion`` with None for the replica regions, so the TLS names missed exactly the
proxy the writer name moves to in a failover."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dataaccess import Settings

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def prod_outputs() -> dict[str, Any]:
    from commerce_db.plan import plan_stack

    return dict(plan_stack("prod", project_dir=REPO).run.outputs)


def test_a_service_in_any_region_accepts_every_regions_proxy_behind_the_writer_name(
    prod_outputs: dict[str, Any],
) -> None:
    import boto3
    from moto import mock_aws

    proxies = {r: e for r, e in prod_outputs["writerTargetsByRegion"].items()}
    assert len(proxies) == 3 and all(proxies.values())  # the program exports a proxy per region
    with mock_aws():
        for region in proxies:
            sm = boto3.client("secretsmanager", region_name=region)
            payload = {"username": "app_writer", "password": "pw", "port": 5432, "dbname": "commerce"}
            arn = sm.create_secret(Name="app-writer", SecretString=json.dumps(payload))["ARN"]
            # The real outputs; only the secret ARNs point at moto's copies.
            outputs = {
                **prod_outputs,
                "writerSecretArn": arn,
                "readerSecretArn": None,
                "redisAuthSecretArn": None,
                "redisPrimaryEndpoint": None,
                "secretArnsByRegion": {region: {"writer": arn}},
            }
            s = Settings.from_stack_outputs(outputs, region=region, client=sm, ssl_root_cert="/ca.pem")
            assert f"@{prod_outputs['writerName']}:" in s.writer_dsn
            # After a failover the name resolves to another region's proxy: each one must verify.
            assert set(proxies.values()) <= set(s.writer_tls_names), (region, s.writer_tls_names)
            assert all(name and name != "None" for name in s.writer_tls_names)
