"""``writer_tls_names``: certificate name matching, the setting, and the writer-name wiring of
``Settings.from_stack_outputs`` (no server needed; TLS against real servers is in
tests/integration/test_writer_fence.py)."""

from __future__ import annotations

import json
import ssl

import pytest

from dataaccess import Settings, SettingsError
from dataaccess._tls_names import PeerNamesContext, certificate_names_match, peer_names_context
from dataaccess.pools import pool_kwargs

PROXY_USE1 = "cdb-prod-use1.proxy-abc123.us-east-1.rds.amazonaws.com"
PROXY_USW2 = "cdb-prod-usw2.proxy-def456.us-west-2.rds.amazonaws.com"
NAME_DSN = "postgresql://app@writer.prod.db.internal:5432/app?sslmode=verify-full&sslrootcert=system"


def _cert(*dns: str, ips: tuple[str, ...] = ()) -> dict[str, object]:
    return {"subjectAltName": tuple(("DNS", d) for d in dns) + tuple(("IP Address", i) for i in ips)}


@pytest.mark.parametrize(
    ("san", "name", "ok"),
    [
        ("*.proxy-abc123.us-east-1.rds.amazonaws.com", PROXY_USE1, True),  # RDS Proxy's wildcard
        ("*.proxy-abc123.us-east-1.rds.amazonaws.com", PROXY_USW2, False),  # another proxy's cert
        ("*.proxy-abc123.us-east-1.rds.amazonaws.com", "writer.prod.db.internal", False),  # the CNAME
        ("*.proxy-abc123.us-east-1.rds.amazonaws.com", "a.b.proxy-abc123.us-east-1.rds.amazonaws.com", False),
        ("*.proxy-abc123.us-east-1.rds.amazonaws.com", "proxy-abc123.us-east-1.rds.amazonaws.com", False),
        ("localhost", "LOCALHOST.", True),
        ("*.com", "example.com", False),  # a wildcard needs two more labels
        ("f*.example.com", "foo.example.com", False),  # partial wildcards are not wildcards
        ("db.example.com", "db.example.com", True),
    ],
)
def test_dns_names_match_like_rfc_6125(san: str, name: str, ok: bool) -> None:
    assert certificate_names_match(_cert(san), [name]) is ok


def test_any_accepted_name_will_do_and_ips_match_ip_entries() -> None:
    cert = _cert("*.proxy-def456.us-west-2.rds.amazonaws.com", ips=("127.0.0.1",))
    assert certificate_names_match(cert, [PROXY_USE1, PROXY_USW2])
    assert certificate_names_match(cert, ["127.0.0.1"]) and not certificate_names_match(cert, ["127.0.0.2"])
    assert not certificate_names_match(cert, [])
    assert not certificate_names_match({}, [PROXY_USW2])  # no subjectAltName: nothing matches


def test_the_context_verifies_the_chain_and_leaves_names_to_the_handshake() -> None:
    ctx = peer_names_context(None, [PROXY_USE1])
    assert isinstance(ctx, PeerNamesContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is False and ctx.accepted_names == (PROXY_USE1,)
    with pytest.raises(ValueError, match="at least one"):
        peer_names_context(None, [])


def test_setting_needs_verify_full_and_host_names() -> None:
    s = Settings(writer_dsn=NAME_DSN, writer_tls_names=(PROXY_USE1, PROXY_USW2))
    assert s.writer_tls_names == (PROXY_USE1, PROXY_USW2)
    for bad in (("*.rds.amazonaws.com",), (f"{PROXY_USE1}:5432",), ("",), "x y"):
        with pytest.raises(SettingsError) as info:
            Settings(writer_dsn=NAME_DSN, writer_tls_names=bad)  # type: ignore[arg-type]
        assert info.value.field == "writer_tls_names"
    with pytest.raises(SettingsError, match="verify-full") as info:
        Settings(writer_dsn=NAME_DSN.replace("verify-full", "verify-ca"), writer_tls_names=(PROXY_USE1,))
    assert info.value.field == "writer_tls_names"
    env = {"COMMERCE_DB_WRITER_DSN": NAME_DSN, "COMMERCE_DB_WRITER_TLS_NAMES": f"{PROXY_USE1}, {PROXY_USW2}"}
    assert Settings.from_env(environ=env).writer_tls_names == (PROXY_USE1, PROXY_USW2)


def test_only_the_writer_pool_gets_the_names_context() -> None:
    s = Settings(writer_dsn=NAME_DSN, writer_tls_names=(PROXY_USE1,))
    writer = pool_kwargs(s, NAME_DSN, role="writer", credentials=None)["ssl"]
    assert isinstance(writer, PeerNamesContext) and writer.accepted_names == (PROXY_USE1,)
    reader = pool_kwargs(s, NAME_DSN, role="reader", credentials=None).get("ssl")
    assert not isinstance(reader, PeerNamesContext)


def test_from_stack_outputs_uses_the_writer_name_when_the_stack_exports_one() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        arn = sm.create_secret(
            Name="app-writer",
            SecretString=json.dumps(
                {"username": "app_writer", "password": "pw", "port": 5432, "dbname": "app"}
            ),
        )["ARN"]
        outputs = {
            "writerEndpoint": f"{PROXY_USE1}:5432",
            "writerEndpointsByRegion": {"us-east-1": PROXY_USE1, "us-west-2": PROXY_USW2},
            "writerName": "writer.prod.db.internal",
            "writerSecretArn": arn,
        }
        s = Settings.from_stack_outputs(
            outputs, region="us-east-1", client=sm, ssl_root_cert="/etc/ssl/ca.pem"
        )
        assert s.writer_dsn.startswith(
            "postgresql://app_writer@writer.prod.db.internal:5432/app?sslmode=verify-full"
        )
        assert s.writer_tls_names == (PROXY_USE1, PROXY_USW2)
        # Without writerName (writerDns: none): the primary's proxy endpoint, plain verify-full.
        plain = Settings.from_stack_outputs(
            {k: v for k, v in outputs.items() if k != "writerName"}, region="us-east-1", client=sm,
            ssl_root_cert="/etc/ssl/ca.pem",
        )  # fmt: skip
        assert f"@{PROXY_USE1}:5432/" in plain.writer_dsn and plain.writer_tls_names == ()
        with pytest.raises(SettingsError) as info:
            Settings.from_stack_outputs(
                {**outputs, "writerEndpointsByRegion": ["x"]}, region="us-east-1", client=sm,
                ssl_root_cert="/etc/ssl/ca.pem",
            )  # fmt: skip
        assert info.value.field == "outputs.writerEndpointsByRegion"
