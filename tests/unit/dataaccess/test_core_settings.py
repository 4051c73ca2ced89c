"""Settings: defaults, validation naming the field, env / secret constructors, masked repr."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dataaccess import InvalidInput, SecretsManagerCredentials, Settings, SettingsError
from dataaccess.settings import endpoint, mask_url

DSN = "postgresql://app:s3cret-pw@127.0.0.1:5432/shop"
RDS_CA = "/etc/ssl/certs/rds-global-bundle.pem"


def test_defaults_are_proxy_safe() -> None:
    s = Settings(writer_dsn=DSN)
    assert s.max_inactive_connection_lifetime < 1800
    assert s.effective_statement_cache_size == 100
    assert s.effective_statement_timeout_via == "startup"
    pgb = Settings(writer_dsn=DSN, proxy_mode="pgbouncer")
    assert pgb.effective_statement_cache_size == 0  # PgBouncer < 1.21: no prepared statements
    assert pgb.effective_statement_timeout_via == "role"  # PgBouncer rejects unknown startup params
    assert Settings(writer_dsn=DSN, proxy_mode="rds_proxy").effective_statement_timeout_via == "role"
    assert Settings(writer_dsn=DSN, statement_timeout=None).effective_statement_timeout_via == "none"
    assert (
        Settings(
            writer_dsn=DSN, proxy_mode="pgbouncer", statement_cache_size=50
        ).effective_statement_cache_size
        == 50
    )


def test_repr_masks_passwords() -> None:
    remote = "postgresql://app:s3cret-pw@db.internal:5432/shop?sslmode=verify-full"
    s = Settings(
        writer_dsn=remote,
        reader_dsns=(remote.replace("db.", "r1."),),
        redis_url="rediss://:tok3n@cache:6379/0",
        password="other-secret",
        redis_auth_token="auth-tok-xyz",
        ssl_root_cert=RDS_CA,
    )
    text = repr(s)
    assert "s3cret-pw" not in text and "tok3n" not in text and "other-secret" not in text
    assert "auth-tok-xyz" not in text
    assert "app:***@db.internal:5432" in text and "r1.internal" in text
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"writer_dsn": "mysql://x"}, "writer_dsn"),
        ({"reader_dsns": ("http://x",)}, "reader_dsns[0]"),
        ({"redis_url": "http://cache"}, "redis_url"),
        ({"proxy_mode": "haproxy"}, "proxy_mode"),
        ({"ssl": "maybe"}, "ssl"),
        ({"statement_timeout_via": "options"}, "statement_timeout_via"),
        ({"command_timeout": 0}, "command_timeout"),
        ({"writer_pool_max": 0}, "writer_pool_max"),
        ({"writer_pool_min": 5, "writer_pool_max": 2}, "writer_pool_min"),
        ({"max_inactive_connection_lifetime": 1800}, "max_inactive_connection_lifetime"),
        ({"read_your_writes_ttl": 5.0}, "read_your_writes_ttl"),
        ({"statement_cache_size": -1}, "statement_cache_size"),
        ({"retry_attempts": True}, "retry_attempts"),
        ({"cache_namespace": "a:b"}, "cache_namespace"),
        ({"iam_auth": True}, "ssl"),
        ({"iam_auth": True, "ssl": "prefer"}, "ssl"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict, field: str) -> None:
    kwargs = {"writer_dsn": DSN, **kwargs}
    with pytest.raises(SettingsError) as info:
        Settings(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(field)
    assert "s3cret-pw" not in str(info.value)
    assert isinstance(info.value, InvalidInput) and isinstance(info.value, ValueError)


def test_iam_requires_tls_and_accepts_require() -> None:
    assert Settings(writer_dsn=DSN, iam_auth=True, ssl="verify-full").iam_auth


def test_from_env_parses_types_and_names_the_variable() -> None:
    env = {
        "APP_WRITER_DSN": DSN,
        "APP_READER_DSNS": "postgresql://a@r1/db, postgresql://a@r2/db",
        "APP_REDIS_URL": "redis://cache:6379/0",
        "APP_ALLOW_INSECURE_TRANSPORT": "true",
        "APP_PRODUCT_CACHE_TTL": "30",
        "APP_WRITER_POOL_MAX": "25",
        "APP_INVENTORY_REDIS_GATE": "true",
        "APP_PROXY_MODE": "pgbouncer",
        "APP_STATEMENT_TIMEOUT": "2.5",
    }
    s = Settings.from_env("APP_", environ=env)
    assert s.reader_dsns == ("postgresql://a@r1/db", "postgresql://a@r2/db")
    assert (s.product_cache_ttl, s.writer_pool_max, s.inventory_redis_gate) == (30.0, 25, True)
    assert s.proxy_mode == "pgbouncer" and s.statement_timeout == 2.5
    with pytest.raises(SettingsError, match="APP_WRITER_POOL_MAX"):
        Settings.from_env("APP_", environ={**env, "APP_WRITER_POOL_MAX": "lots"})
    with pytest.raises(SettingsError) as info:
        Settings.from_env("APP_", environ={**env, "APP_WRITER_POOL_MAX": "0"})
    assert info.value.field == "APP_WRITER_POOL_MAX"
    with pytest.raises(SettingsError, match="APP_WRITER_DSN"):
        Settings.from_env("APP_", environ={})
    with pytest.raises(SettingsError, match="APP_INVENTORY_REDIS_GATE"):
        Settings.from_env("APP_", environ={**env, "APP_INVENTORY_REDIS_GATE": "perhaps"})


def test_from_secret_uses_a_refreshing_provider_and_hides_the_password() -> None:
    payload = {
        "host": "proxy.example",
        "port": 5432,
        "username": "app",
        "password": "pw-from-sm",
        "dbname": "shop",
        "reader_hosts": ["r1.example", "r2.example:5433"],
        "redis_host": "cache.example",
    }
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        client.create_secret(Name="db", SecretString=json.dumps(payload))
        s = Settings.from_secret(
            "db", region="eu-west-1", client=client, proxy_mode="rds_proxy", ssl_root_cert=RDS_CA
        )
    assert s.writer_dsn == "postgresql://app@proxy.example:5432/shop?sslmode=verify-full"
    assert s.reader_dsns == (
        "postgresql://app@r1.example:5432/shop?sslmode=verify-full",
        "postgresql://app@r2.example:5433/shop?sslmode=verify-full",
    )
    assert s.redis_url == "rediss://cache.example:6379/0" and s.proxy_mode == "rds_proxy"
    assert isinstance(s.credentials, SecretsManagerCredentials) and s.password is None
    assert "pw-from-sm" not in repr(s)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        client.create_secret(Name="db", SecretString=json.dumps(payload))
        s = Settings.from_secret(
            "db",
            region="eu-west-1",
            client=client,
            host="proxy-rw.example",
            reader_hosts=["replica-a.example"],
            redis_url="rediss://cache:6379/0",
            ssl_root_cert=RDS_CA,
        )
    assert s.writer_dsn == "postgresql://app@proxy-rw.example:5432/shop?sslmode=verify-full"
    assert s.reader_dsns == ("postgresql://app@replica-a.example:5432/shop?sslmode=verify-full",)
    assert s.redis_url == "rediss://cache:6379/0"


def test_from_secret_payload_errors_name_the_key() -> None:
    with pytest.raises(SettingsError, match=r"secret\.host"):
        Settings.from_secret_payload({"username": "u", "password": "p"})
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        client.create_secret(Name="bad", SecretString="{not json: hunter2")
        with pytest.raises(SettingsError) as info:
            Settings.from_secret("bad", region="eu-west-1", client=client)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"writer_dsn": "postgresql://app@db.example.com/shop"}, "ssl"),
        ({"writer_dsn": "postgresql://app@db.example.com/shop?sslmode=require"}, "ssl"),
        ({"writer_dsn": "postgresql://app@db.example.com/shop", "ssl": "prefer"}, "ssl"),
        ({"writer_dsn": "postgresql://app@db.example.com/shop", "ssl": "verify-full"}, "ssl_root_cert"),
        ({"writer_dsn": DSN, "reader_dsns": ("postgresql://app@10.0.0.7/shop",)}, "ssl"),
        ({"writer_dsn": DSN, "redis_url": "redis://cache.example:6379/0"}, "redis_url"),
    ],
)
def test_non_loopback_hosts_need_verified_tls_unless_allowed_explicitly(kwargs: dict, field: str) -> None:
    """Issue 17: secure by default — a non-loopback host never gets plaintext or unverified TLS
    unless the caller says so; the error names the setting to change."""
    with pytest.raises(SettingsError) as info:
        Settings(**kwargs)
    assert (
        info.value.field == field and "allow_insecure_transport" in str(info.value)
    ) or field == "ssl_root_cert"
    assert Settings(**kwargs, allow_insecure_transport=True)


def test_verified_tls_to_remote_hosts_and_loopback_servers_are_accepted() -> None:
    remote = "postgresql://app@db.example.com/shop"
    assert Settings(
        writer_dsn=remote, ssl="verify-full", ssl_root_cert=RDS_CA, redis_url="rediss://c.example/0"
    )
    assert Settings(writer_dsn=remote + f"?sslmode=verify-ca&sslrootcert={RDS_CA}")
    assert Settings(writer_dsn="postgresql://app@localhost/shop", redis_url="redis://127.0.0.1:6379/0")
    assert Settings(writer_dsn="postgresql://app@[::1]:5432/shop")
    assert Settings(writer_dsn="postgresql:///shop?host=/var/run/postgresql")


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("writer_dsn", {"writer_dsn": "postgresql://app:s3cret@127.0.0.1:notaport/shop"}),
        ("writer_dsn", {"writer_dsn": "postgresql://app:s3cret@127.0.0.1:99999/shop"}),
        ("writer_dsn", {"writer_dsn": "postgresql://app:s3cret@[::1/shop"}),
        ("reader_dsns[1]", {"reader_dsns": ("postgresql://a@h1:5432/db", "postgresql://a:s3cret@h2:x/db")}),
        ("redis_url", {"redis_url": "redis://:s3cret@127.0.0.1:notaport/0"}),
    ],
)
def test_bad_host_or_port_is_a_settings_error_naming_the_field(field: str, kwargs: dict) -> None:
    """Found by the adversarial review of issue 10: these were accepted, then repr() raised and
    connect() failed with a raw ValueError/OverflowError."""
    settings = {"writer_dsn": "postgresql://app@127.0.0.1:5432/shop", **kwargs}
    with pytest.raises(SettingsError) as info:
        Settings(**settings)
    assert info.value.field == field
    assert "s3cret" not in str(info.value) and "s3cret" not in repr(info.value)


def test_multi_host_dsns_stay_valid() -> None:
    s = Settings(writer_dsn="postgresql://app:pw@h1:5432,h2:5433/shop", allow_insecure_transport=True)
    assert "pw" not in repr(s)


# Found by the independent TLS-parity attacker: ways around "secure by default" and secrets in repr.
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        # libpq/asyncpg honour the LAST sslmode; a check reading the first was fooled.
        (
            {
                "writer_dsn": "postgresql://u@db.example.com/app?sslmode=verify-full&sslrootcert=/ca&sslmode=disable"
            },
            "writer_dsn",
        ),
        # An empty URL host with libpq's host= query parameter is a remote host, not a unix socket.
        ({"writer_dsn": "postgresql://u@/app?host=192.0.2.2&sslmode=disable"}, "ssl"),
        # redis-py lets URL options switch off certificate and hostname checks.
        (
            {
                "writer_dsn": "postgresql://u@localhost/app",
                "redis_url": "rediss://192.0.2.2/0?ssl_cert_reqs=none",
            },
            "redis_url",
        ),
        (
            {
                "writer_dsn": "postgresql://u@localhost/app",
                "redis_url": "rediss://192.0.2.2/0?ssl_check_hostname=false",
            },
            "redis_url",
        ),
    ],
)
def test_insecure_transport_cannot_hide_in_query_parameters(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings(**kwargs)
    assert info.value.field == field


def test_passwords_in_query_parameters_are_masked() -> None:
    s = Settings(
        writer_dsn="postgresql://u@localhost/app?password=hunter2-pg",
        reader_dsns=("postgresql://u@localhost/app?sslmode=disable&PASSWORD=hunter2-rd",),
        redis_url="redis://localhost:6379/0?password=hunter2-rs",
    )
    assert "hunter2" not in repr(s)
    with pytest.raises(SettingsError) as info:
        Settings(writer_dsn="postgresql://u@localhost:notaport/app?password=hunter2-pg")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:Sekr1t#Tail9@db.internal:5432/shop",  # '#': urlsplit sees a fragment
        "postgresql://app:Sek?r1tTail9@db.internal:5432/shop",  # '?': a query
        "postgresql://app:Sek/r1tTail9@db.internal:5432/shop",  # '/': a path
        "postgresql://app:9999#Sekr1tTail9@db.internal/shop",  # digits first: parsed as a port
        "postgresql://app:Sek@r1tTail9@db.internal/shop",  # an unencoded '@'
        "host=db.internal password=Sekr1tTail9 dbname=shop",  # libpq key=value, not a URL
        "host=db.internal password='Sekr1t Tail9' dbname=shop",
    ],
)
def test_a_password_the_url_parser_misreads_never_shows(dsn: str) -> None:
    """Found by the independent reconcile attacker: the error for such a DSN quoted it whole."""
    for field in ("writer_dsn", "reader_dsns"):
        kwargs: dict[str, Any] = {field: dsn if field == "writer_dsn" else (dsn,)}
        if field == "reader_dsns":
            kwargs["writer_dsn"] = "postgresql://u@localhost/app"
        try:
            shown = repr(Settings(**kwargs))
        except SettingsError as exc:
            shown = f"{exc} {exc.args!r} {exc.__context__!r} {exc.__cause__!r}"
        assert "r1t" not in shown and "Tail9" not in shown and "9999" not in shown, shown
    for text in (mask_url(dsn) or "", endpoint(dsn)):
        assert "r1t" not in text and "Tail9" not in text and "9999" not in text, text
