"""Typed, frozen settings of the data-access layer, with documented defaults.

Build them directly, from the environment (:meth:`Settings.from_env`) or from a Secrets Manager
secret (:meth:`Settings.from_secret`). Every bad value raises :class:`SettingsError` naming the
field (or environment variable), the value (never for secrets) and what is allowed. ``repr`` masks
passwords inside DSNs and URLs.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, quote, urlsplit

# Imports run one way: settings -> credentials -> errors (credentials never imports settings).
from .credentials import CredentialProvider, SecretsManagerCredentials
from .errors import SettingsError

__all__ = [
    "ProxyMode",
    "Settings",
    "SettingsError",
    "SslMode",
    "StatementTimeoutVia",
    "endpoint",
    "mask_url",
]

ProxyMode = Literal["direct", "pgbouncer", "rds_proxy"]
SslMode = Literal["disable", "prefer", "require", "verify-ca", "verify-full"]
StatementTimeoutVia = Literal["startup", "role", "none"]

_PROXY_MODES = get_args(ProxyMode)
_SSL_MODES = get_args(SslMode)
_TIMEOUT_VIAS = get_args(StatementTimeoutVia)


def mask_url(url: str | None) -> str | None:
    """Return ``url`` with any password replaced by ``***`` (for repr/logs/errors).

    Works on the text, not on a parse: a password with an unencoded ``#``, ``?`` or ``/`` makes
    ``urlsplit`` see no password at all (``app:pa#ss@host`` parses as host ``app``, port ``pa``),
    and a libpq key=value string (``host=x password=y``) is no URL. Everything between the
    user's ``:`` and the last ``@`` is masked, and so is the value of any ``password``/``token``/
    ``secret`` parameter. Over-masking an odd string is the price of never showing a secret."""
    if not url:
        return url
    masked = _USERINFO.sub(_mask_userinfo, url, count=1)
    return _SECRET_PARAM.sub(r"\1***", masked)


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)@", re.S)
"""``scheme://userinfo@``, greedy up to the last ``@`` of the string (a password may hold any
character, ``@`` included when a client did not encode it)."""


def _mask_userinfo(m: re.Match[str]) -> str:
    user, colon, _password = m.group(2).partition(":")
    return f"{m.group(1)}{user}:***@" if colon else m.group(0)


_SECRET_PARAM = re.compile(
    r"(?i)((?:^|[&?\s])[^=&?\s]*(?:password|passwd|token|secret)[^=&\s]*\s*=\s*)('[^']*'|[^&\s]*)"
)
"""A parameter carrying a secret (libpq's ``password=``, in a query or a key=value string;
tokens): its value is masked."""


def endpoint(url: str | None, *, default_port: int = 5432) -> str:
    """Where ``url`` points, for errors and logs: ``host:port`` (comma-separated for a multi-host
    DSN; a ``host``/``port`` query parameter counts, as in libpq). Never the user or password.
    ``"?"`` when it cannot be told."""
    if not url:
        return "?"
    try:
        parts = urlsplit(url)
        userinfo = _USERINFO.match(url)
        if userinfo and ":" in userinfo.group(2) and parts.password is None:
            return "?"  # a password holding '#', '?' or '/' unencoded: the parse would show part of it
        query = parse_qs(parts.query)
        hosts = parts.netloc.rpartition("@")[2] or ",".join(query.get("host", []))
        qport = (query.get("port") or [str(default_port)])[0]
        out = []
        for hostport in hosts.split(","):
            if hostport.startswith("/"):  # a unix socket directory (libpq's host=/path)
                out.append(f"{hostport}:{qport}")
                continue
            sub = urlsplit(f"//{hostport}")
            host = sub.hostname or ""
            port = sub.port if sub.port is not None else qport
            out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return ",".join(out) if any(o != f":{qport}" for o in out) else "?"
    except ValueError:
        return "?"


def _check_hosts_and_ports(name: str, url: str) -> None:
    """Refuse a URL whose host or port cannot be used (``:notaport``, ``:99999``, ``[::1``),
    naming the field, instead of failing later inside the driver. Several ``host:port`` pairs
    separated by commas (libpq / asyncpg multi-host DSNs) are each checked."""
    valid = True
    try:
        hosts = urlsplit(url).netloc.rpartition("@")[2]
        for hostport in hosts.split(","):
            urlsplit(f"//{hostport}").port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        valid = False
    if not valid:  # raised outside the handler: the ValueError quotes the unparsable part, which
        # is the password when it holds '#', '?' or '/', and would ride along as __context__
        raise SettingsError(
            name,
            f"{mask_url(url)!r} has an invalid host or port (a port is 0-65535, an IPv6 host goes in "
            "brackets; percent-encode '#', '?', '/' and '@' in a password)",
        )


def _masked_repr(self: Settings) -> str:
    shown = []
    for f in dataclasses.fields(self):
        if not f.repr:
            continue
        value = getattr(self, f.name)
        if f.name in ("writer_dsn", "redis_url"):
            value = mask_url(value)
        elif f.name == "reader_dsns":
            value = tuple(mask_url(v) for v in value)
        shown.append(f"{f.name}={value!r}")
    return f"Settings({', '.join(shown)})"


@dataclass(frozen=True, kw_only=True, repr=False)
class Settings:
    """Connection, pool, cache and consistency settings. Only ``writer_dsn`` is required."""

    writer_dsn: str
    """``postgresql://user[:password]@host:port/db`` of the writer (RDS Proxy / PgBouncer / primary)."""
    reader_dsns: tuple[str, ...] = ()
    """Replica endpoints (connected directly: RDS Proxy cannot front RDS replicas). Default: none,
    reads go to the writer."""
    redis_url: str | None = None
    """``redis://`` or ``rediss://`` URL. Default: None (no cache, read-your-writes markers stay
    in-process)."""
    redis_auth_token: str | None = field(default=None, repr=False)
    """ElastiCache AUTH token (from the cache layer's auth-token secret); needs ``rediss://``
    except on loopback test servers. Never shown in repr. Default: None."""
    password: str | None = field(default=None, repr=False)
    """Database password overriding the DSN's. Never shown in repr. Default: None."""
    credentials: CredentialProvider | None = field(default=None, repr=False, compare=False)
    """Password provider (Secrets Manager / RDS IAM), called for every new connection and refreshed
    once on ``InvalidPasswordError``. Default: None (password from DSN / ``password``)."""
    reader_credentials: CredentialProvider | None = field(default=None, repr=False, compare=False)
    """Password provider for replica connections: the read-only user's secret, so replicas are
    read as a read-only role. Default: None (``credentials``, or the reader DSNs' passwords)."""
    ssl: SslMode | None = None
    """TLS mode for PostgreSQL; ``None`` keeps the DSN's ``sslmode``. IAM auth needs require or
    stronger. Default: None."""
    ssl_root_cert: str | None = None
    """CA bundle file for verify-ca / verify-full (e.g. the RDS global bundle). Default: None."""
    writer_tls_names: tuple[str, ...] = ()
    """Names the writer's certificate may carry besides ``writer_dsn``'s host (verify-full only;
    the chain is still verified against the CA). For a writer DSN naming a CNAME such as
    the ARC writer name ``writer.<stack>.db.internal``: RDS Proxy's wildcard certificate names
    its own endpoint, never the CNAME, so plain verify-full refuses it. List every region's
    proxy endpoint (``from_stack_outputs`` does, from ``writerTargetsByRegion``); a certificate
    naming neither the DSN's host nor one of them is refused. Comma-separated in the
    environment. Default: () (the certificate must name the DSN's host, as libpq's verify-full)."""
    allow_insecure_transport: bool = False
    """Let a non-loopback host be reached in plaintext or with unverified TLS (``sslmode``
    disable/allow/prefer/require, ``redis://``). Off: such settings are refused with an error
    naming this field — secure by default. Loopback hosts (local test servers) are exempt.
    Default: False."""
    proxy_mode: ProxyMode = "direct"
    """What ``writer_dsn`` points at: ``direct``, ``pgbouncer`` (transaction mode) or ``rds_proxy``.
    Drives the statement-cache and statement-timeout defaults. Default: "direct"."""
    statement_cache_size: int | None = None
    """asyncpg prepared-statement cache. ``None`` = auto: 0 behind PgBouncer (< 1.21 has no
    prepared-statement support in transaction mode), else 100. Default: None (auto)."""
    statement_timeout: float | None = 4.0
    """Server-side ``statement_timeout`` in seconds (None/0 = off). Default: 4.0."""
    statement_timeout_via: StatementTimeoutVia | None = None
    """How the statement timeout is applied: ``startup`` (``server_settings`` startup parameter),
    ``role`` (operator runs ``ALTER ROLE ... SET statement_timeout``, see
    ``DataAccess.apply_role_statement_timeout``) or ``none``. ``None`` = auto: ``startup`` when
    direct, ``role`` behind PgBouncer / RDS Proxy (PgBouncer rejects unknown startup parameters,
    RDS Proxy rejects ``options`` and pins on ``SET``). Default: None (auto)."""
    command_timeout: float = 5.0
    """Client-side per-statement timeout in seconds (asyncpg ``command_timeout``). Default: 5.0."""
    connect_timeout: float = 5.0
    """Seconds to establish one connection. Default: 5.0."""
    acquire_timeout: float = 10.0
    """Seconds to wait for a pooled connection (a busy pool is normal under bursts; acquire
    timeouts are retried too). Default: 10.0."""
    writer_pool_min: int = 1
    """Default: 1."""
    writer_pool_max: int = 10
    """Default: 10."""
    reader_pool_min: int = 1
    """Per replica. Default: 1."""
    reader_pool_max: int = 10
    """Per replica. Default: 10."""
    max_inactive_connection_lifetime: float = 300.0
    """Close idle pooled connections after this many seconds; keep it well below RDS Proxy's
    IdleClientTimeout (1800 s). Default: 300.0."""
    writer_max_connection_lifetime: float = 60.0
    """Seconds a pooled writer connection may live, counted from when it was opened (0 = no
    limit). A connection past it is closed instead of being handed out, or when it is returned
    idle; never while a caller holds it. Its replacement resolves ``writer_dsn``'s host name
    again: this bounds how long a process keeps writing to where the name pointed before, e.g.
    to the old region's proxy after an ARC failover moved ``writer.<stack>.db.internal`` (the
    fence of an outage, see docs/dataaccess.md "Writer connection lifetime"). Each connection's
    limit is drawn from [0.9, 1.0] x this value, so connections opened together are not all
    replaced at once. Default: 60.0."""
    application_name: str = "commerce-db"
    """Default: "commerce-db"."""
    retry_attempts: int = 6
    """Attempts (including the first) for retryable failures. Default: 6."""
    retry_base_delay: float = 0.05
    """First backoff step in seconds (exponential, full jitter). Default: 0.05."""
    retry_max_delay: float = 2.0
    """Cap of one backoff sleep. Default: 2.0."""
    too_many_connections_delay: float = 0.5
    """Base backoff for ``TooManyConnectionsError`` (connection storms). Default: 0.5."""
    user_cache_ttl: float = 300.0
    """Seconds a cached user lives (plus jitter). Default: 300."""
    product_cache_ttl: float = 60.0
    """Seconds a cached product lives (plus jitter). Default: 60."""
    search_cache_ttl: float = 5.0
    """Seconds a cached search result (ranked ids) lives. Default: 5."""
    cache_invalidation_grace: float = 0.0
    """Seconds after an invalidation during which CacheAside refuses fills. Not needed for
    replica lag here (read-your-writes markers route such loads to a fresh source), so off by
    default; raise it as defence in depth at the cost of more misses on hot keys. Default: 0.0."""
    near_cache_ttl: float = 0.0
    """Seconds an in-process copy of a hot cached product may be served (0 = no near cache).
    Coherent through Redis client tracking (see :mod:`dataaccess.near_cache`): never stale in
    the process that wrote; in other processes until the invalidation message is read, at most
    this long. Default: 0.0 (off)."""
    near_cache_max_entries: int = 10_000
    """Entries the near cache keeps (oldest dropped first). Default: 10000."""
    cache_namespace: str = "cdb"
    """Prefix of every Redis key. Default: "cdb"."""
    redis_socket_timeout: float = 0.5
    """Redis socket / connect timeout in seconds (fail fast, fail open). Default: 0.5."""
    redis_max_connections: int = 50
    """Size of the blocking Redis connection pool. Default: 50."""
    read_your_writes_ttl: float = 30.0
    """Seconds a "written at LSN X" marker lives; must exceed ``max_replica_lag`` +
    ``replica_check_interval``. Default: 30."""
    max_replica_lag: float = 10.0
    """Replicas lagging more than this many seconds get no reads. Default: 10."""
    replica_check_interval: float = 1.0
    """Seconds between replica health/LSN checks. Default: 1.0."""
    lsn_routing: bool = True
    """Use WAL positions for read-your-writes and replica freshness. Set False where replicas do not
    expose ``pg_last_wal_replay_lsn()`` (e.g. Aurora): replicas are then health-checked only, and
    entities written within ``read_your_writes_ttl`` are read from the writer. Default: True."""
    order_partitions_ahead: int = 3
    """Monthly ``orders`` partitions kept ahead of the current month. Default: 3."""
    max_order_lines: int = 100
    """Default: 100."""
    max_line_quantity: int = 10_000
    """Default: 10000."""
    inventory_redis_gate: bool = False
    """Gate reservations with a Redis Lua counter before the DB conditional UPDATE (DB stays the
    record). Default: False."""
    stock_gate_ttl: float = 5.0
    """Seconds a gate counter lives after it was seeded from the database's committed stock; then
    the next request goes to the database and re-seeds it. Bounds how long any drift (units lost
    to a crash or a cut connection, a give-back that never arrived) can refuse buyers while the
    database has stock. Default: 5.0."""
    iam_auth: bool = False
    """Authenticate with RDS IAM tokens (needs ``aws_region`` and TLS). Default: False."""
    aws_region: str | None = None
    """Region for IAM tokens / Secrets Manager. Default: None (boto3's default chain)."""

    __repr__ = _masked_repr

    def __post_init__(self) -> None:
        if isinstance(self.reader_dsns, str):
            object.__setattr__(self, "reader_dsns", tuple(s for s in self.reader_dsns.split(",") if s))
        else:
            object.__setattr__(self, "reader_dsns", tuple(self.reader_dsns))
        _check_dsn("writer_dsn", self.writer_dsn)
        self._check_writer_tls_names()
        for i, dsn in enumerate(self.reader_dsns):
            _check_dsn(f"reader_dsns[{i}]", dsn)
        if self.redis_url is not None and not re.match(r"^(redis|rediss|unix)://", self.redis_url):
            raise SettingsError(
                "redis_url", f"{mask_url(self.redis_url)!r} must start with redis://, rediss:// or unix://"
            )
        if self.redis_url is not None and not self.redis_url.startswith("unix://"):
            _check_hosts_and_ports("redis_url", self.redis_url)
        _one_of("proxy_mode", self.proxy_mode, _PROXY_MODES)
        if self.ssl is not None:
            _one_of("ssl", self.ssl, _SSL_MODES)
        if self.statement_timeout_via is not None:
            _one_of("statement_timeout_via", self.statement_timeout_via, _TIMEOUT_VIAS)
        for name in (
            "command_timeout",
            "connect_timeout",
            "acquire_timeout",
            "max_inactive_connection_lifetime",
            "retry_base_delay",
            "retry_max_delay",
            "too_many_connections_delay",
            "user_cache_ttl",
            "product_cache_ttl",
            "search_cache_ttl",
            "redis_socket_timeout",
            "read_your_writes_ttl",
            "max_replica_lag",
            "replica_check_interval",
            "stock_gate_ttl",
        ):
            _positive(name, getattr(self, name))
        if not isinstance(self.near_cache_ttl, int | float) or self.near_cache_ttl < 0:
            raise SettingsError("near_cache_ttl", f"{self.near_cache_ttl!r} must be >= 0 (0 = off)")
        lifetime = self.writer_max_connection_lifetime
        number = isinstance(lifetime, int | float) and not isinstance(lifetime, bool)
        if not number or not 0 <= lifetime < math.inf:
            raise SettingsError(
                "writer_max_connection_lifetime",
                f"{lifetime!r} must be a finite number of seconds >= 0 (0 = no limit)",
            )
        if not isinstance(self.cache_invalidation_grace, int | float) or self.cache_invalidation_grace < 0:
            raise SettingsError("cache_invalidation_grace", f"{self.cache_invalidation_grace!r} must be >= 0")
        if self.statement_timeout is not None and self.statement_timeout < 0:
            raise SettingsError("statement_timeout", f"{self.statement_timeout!r} must be >= 0 or None")
        for name in (
            "writer_pool_max",
            "reader_pool_max",
            "retry_attempts",
            "redis_max_connections",
            "max_order_lines",
            "max_line_quantity",
            "near_cache_max_entries",
        ):
            _positive_int(name, getattr(self, name))
        for name in ("writer_pool_min", "reader_pool_min", "order_partitions_ahead"):
            _non_negative_int(name, getattr(self, name))
        if self.statement_cache_size is not None:
            _non_negative_int("statement_cache_size", self.statement_cache_size)
        if self.writer_pool_min > self.writer_pool_max:
            raise SettingsError("writer_pool_min", "must be <= writer_pool_max")
        if self.reader_pool_min > self.reader_pool_max:
            raise SettingsError("reader_pool_min", "must be <= reader_pool_max")
        if self.max_inactive_connection_lifetime >= 1800:
            raise SettingsError(
                "max_inactive_connection_lifetime", "must stay below 1800 s (RDS Proxy IdleClientTimeout)"
            )
        if self.read_your_writes_ttl <= self.max_replica_lag + self.replica_check_interval:
            raise SettingsError(
                "read_your_writes_ttl",
                f"{self.read_your_writes_ttl!r} must exceed max_replica_lag + replica_check_interval "
                f"({self.max_replica_lag + self.replica_check_interval!r}), or a replica could serve a "
                "write older than its expired marker",
            )
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", self.cache_namespace):
            raise SettingsError(
                "cache_namespace", f"{self.cache_namespace!r} must be 1-32 chars [A-Za-z0-9_.-]"
            )
        if not self.allow_insecure_transport:
            self._check_transport()
        if self.iam_auth and self.ssl not in ("require", "verify-ca", "verify-full"):
            raise SettingsError(
                "ssl",
                "RDS IAM authentication requires TLS: set ssl to require, "
                f"verify-ca or verify-full (got {self.ssl!r})",
            )

    def _check_writer_tls_names(self) -> None:
        names = self.writer_tls_names
        if isinstance(names, str):
            names = tuple(n.strip() for n in names.split(",") if n.strip())
        elif not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise SettingsError("writer_tls_names", f"{names!r} must be a tuple of host names")
        object.__setattr__(self, "writer_tls_names", tuple(names))
        for name in names:
            if not _is_host_name_or_ip(name):
                raise SettingsError(
                    "writer_tls_names", f"{name!r} is not a host name (no wildcards, no ports)"
                )
        if names:
            modes = parse_qs(urlsplit(self.writer_dsn).query).get("sslmode") or []
            mode = self.ssl or (modes[-1] if modes else None)
            if mode != "verify-full":
                raise SettingsError(
                    "writer_tls_names",
                    f"replaces verify-full's host check, but the writer's sslmode is {mode!r}: "
                    "set ssl='verify-full' (or remove writer_tls_names)",
                )

    def _check_transport(self) -> None:
        """Secure by default: every non-loopback endpoint needs verified TLS."""
        dsns = [("writer_dsn", self.writer_dsn)] + [
            (f"reader_dsns[{i}]", d) for i, d in enumerate(self.reader_dsns)
        ]
        for name, dsn in dsns:
            parts = urlsplit(dsn)
            query = parse_qs(parts.query)
            for param in ("sslmode", "sslrootcert", "host"):
                if len(query.get(param, [])) > 1:
                    # libpq and asyncpg honour the last one; a check reading the first is fooled.
                    raise SettingsError(name, f"{mask_url(dsn)!r} gives {param} more than once; give it once")
            # The effective hosts: the URL's, or libpq's host= query parameter (which wins when set).
            hosts = [h for h in ",".join(query.get("host", [])).split(",") if h]
            if not hosts:
                hosts = [
                    urlsplit(f"//{hp}").hostname or "" for hp in parts.netloc.rpartition("@")[2].split(",")
                ]
            remote = [h for h in hosts if not _is_local_host(h)]
            if not remote:
                continue
            host = remote[0]
            modes = query.get("sslmode") or []
            mode = self.ssl or (modes[0] if modes else None)
            if mode not in ("verify-ca", "verify-full"):
                raise SettingsError(
                    "ssl",
                    f"{name} host {host!r} is not loopback and would get "
                    f"{'plaintext or unverified TLS' if mode else 'no verified TLS'} (sslmode={mode}): set "
                    "ssl='verify-full' with ssl_root_cert (for RDS the global CA bundle, see "
                    "docs/dataaccess.md), or allow_insecure_transport=True to accept the risk",
                )
            has_ca = self.ssl_root_cert or query.get("sslrootcert") or os.environ.get("PGSSLROOTCERT")
            if not has_ca:
                raise SettingsError(
                    "ssl_root_cert",
                    f"{name} host {host!r} uses {mode} but no CA bundle is given: set ssl_root_cert "
                    "(for RDS: the global bundle from AWS, see docs/dataaccess.md) or sslrootcert in the DSN",
                )
        if self.redis_url is not None:
            parts = urlsplit(self.redis_url)
            if parts.scheme == "redis" and not _is_local_host(parts.hostname or ""):
                raise SettingsError(
                    "redis_url",
                    f"{mask_url(self.redis_url)!r} is plaintext to a non-loopback host: use rediss:// "
                    "(ElastiCache in-transit encryption), or allow_insecure_transport=True",
                )
            options = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
            weakened = options.get("ssl_cert_reqs", "required") not in ("required", "cert_required") or (
                options.get("ssl_check_hostname", "true") in ("false", "0", "no", "off")
            )
            if parts.scheme == "rediss" and weakened and not _is_local_host(parts.hostname or ""):
                # redis-py lets these URL options override certificate checks: the AUTH token
                # would go to whoever answers.
                raise SettingsError(
                    "redis_url",
                    f"{mask_url(self.redis_url)!r} turns off certificate or hostname verification for a "
                    "non-loopback host: remove ssl_cert_reqs / ssl_check_hostname, or "
                    "allow_insecure_transport=True",
                )

    # -- derived values -------------------------------------------------------------------------
    @property
    def effective_statement_cache_size(self) -> int:
        """The asyncpg ``statement_cache_size`` actually used (see ``statement_cache_size``)."""
        if self.statement_cache_size is not None:
            return self.statement_cache_size
        return 0 if self.proxy_mode == "pgbouncer" else 100

    @property
    def effective_statement_timeout_via(self) -> StatementTimeoutVia:
        """How ``statement_timeout`` is applied (see ``statement_timeout_via``)."""
        if not self.statement_timeout:
            return "none"
        if self.statement_timeout_via is not None:
            return self.statement_timeout_via
        return "startup" if self.proxy_mode == "direct" else "role"

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_env(
        cls, prefix: str = "COMMERCE_DB_", environ: dict[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Build settings from ``{prefix}{FIELD}`` environment variables (e.g. ``COMMERCE_DB_WRITER_DSN``,
        ``COMMERCE_DB_READER_DSNS`` comma-separated, ``COMMERCE_DB_PRODUCT_CACHE_TTL=30``). Unset
        variables keep their defaults; ``overrides`` win. Errors name the variable."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in ("credentials", "reader_credentials"):
                continue
            var = f"{prefix}{f.name.upper()}"
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            kwargs[f.name] = _parse_env_value(var, f.name, raw)
        kwargs.update(overrides)
        if "writer_dsn" not in kwargs:
            raise SettingsError(f"{prefix}WRITER_DSN", "is required (postgresql://user@host:port/db)")
        try:
            return cls(**kwargs)
        except SettingsError as exc:
            if exc.field in kwargs and exc.field not in overrides:
                raise SettingsError(f"{prefix}{exc.field.upper()}", str(exc).split(": ", 1)[1]) from None
            raise

    @classmethod
    def from_secret(
        cls,
        secret_id: str,
        *,
        region: str | None = None,
        client: Any = None,
        refresh_interval: float = 3600.0,
        host: str | None = None,
        reader_hosts: list[str] | tuple[str, ...] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from a Secrets Manager JSON secret.

        ``host`` / ``reader_hosts`` replace the secret's endpoints: the RDS master secret names the
        instance, while applications should write through the proxy endpoint (the stack's
        ``writerEndpoint`` export) and read from ``readerEndpoints``. Other keyword arguments are
        :class:`Settings` fields (e.g. ``redis_url``, ``proxy_mode="rds_proxy"``).

        Keys: ``host``, ``port`` (default 5432), ``username``, ``password``, ``dbname`` (default
        ``postgres``); optional ``reader_hosts`` (list or comma string of ``host[:port]``),
        ``redis_url`` (or ``redis_host`` + ``redis_port``), ``proxy_mode``, ``ssl``. The password
        is not put into the DSN: it comes from a cached :class:`SecretsManagerCredentials`
        provider that is refreshed on ``InvalidPasswordError`` (rotation). ``client`` is an
        optional boto3 ``secretsmanager`` client (for tests / custom sessions).
        """
        provider = SecretsManagerCredentials(
            secret_id, region=region, client=client, refresh_interval=refresh_interval
        )
        data = dict(provider.fetch_sync())
        if host is not None:
            data["host"] = host
        if reader_hosts is not None:
            data["reader_hosts"] = list(reader_hosts)
        return cls.from_secret_payload(data, credentials=provider, aws_region=region, **overrides)

    @classmethod
    def from_stack_outputs(
        cls,
        outputs: Mapping[str, Any],
        *,
        region: str | None = None,
        client: Any = None,
        ssl_root_cert: str | None = None,
        redis_ca_certs: str | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings from the stack's exported outputs plus Secrets Manager: the one wiring from
        stack to service (the integration tests build theirs this way against the local tier).

        Reads ``writerEndpoint`` (``host`` or ``host:port``; the proxy) — or, when the stack
        exports ``writerName`` (``writerDns: arc``), that name as the writer's host, with
        ``writerEndpoint``'s port and ``writer_tls_names`` = every region's proxy endpoint from
        ``writerTargetsByRegion`` (standby proxies included; ``writerEndpointsByRegion`` when a
        stack exports no targets; a failover moves the name, see ``writer_tls_names``) —
        ``readerEndpoints`` (list),
        ``writerSecretArn`` (the service's writer user, e.g. app_writer: username, password,
        dbname, port; the password is never copied into the DSN — a refreshing provider serves it),
        else ``dbSecretArn`` (the master secret: a fallback for operators and migrations),
        optional ``readerSecretArn`` (the read-only user's secret: replicas are then read as that
        user, see ``reader_credentials``), ``redisPrimaryEndpoint`` and
        ``redisAuthSecretArn`` (``{"auth_token", "port", "tls"}``; optional: no Redis without
        the endpoint). Where the stack exports ``secretArnsByRegion``, ``region``'s own copies
        (``writer``, ``reader``, ``master``, ``redisAuth``) are read instead of the primary
        region's: they stay readable when the primary region is lost (pass this process's
        region and a ``client`` for it). TLS is verified: ``sslmode=verify-full`` unless the
        secret names another mode, with ``ssl_root_cert`` (the RDS CA bundle); Redis is
        ``rediss://`` when the auth secret says ``tls`` (default), with ``redis_ca_certs`` for a
        private CA (None: the system trust store, which covers ElastiCache). ``client``: a boto3
        ``secretsmanager`` client.
        Other keyword arguments are :class:`Settings` fields (e.g. ``proxy_mode="rds_proxy"``).

        :raises SettingsError: an output is missing or malformed (``field`` = ``outputs.<name>``).
        """

        def output(name: str) -> Any:
            value = outputs.get(name)
            if value in (None, "", []):
                raise SettingsError(f"outputs.{name}", "is required in the stack outputs")
            return value

        writer_host, _, writer_port = str(output("writerEndpoint")).rpartition(":")
        if not writer_host:  # no port given
            writer_host, writer_port = writer_port, ""
        tls_names: tuple[str, ...] = ()
        if outputs.get("writerName"):
            # writerDns: arc. The name Route 53 ARC moves to the new region in a failover: the
            # pools follow it (new connections resolve it, writer_max_connection_lifetime retires
            # old ones). The proxies' certificates name their own endpoints, never this name.
            # writerTargetsByRegion names every region's proxy, the standby ones included (the
            # program exports writerEndpointsByRegion with None for replica regions: those proxies
            # have no target until a failover, and would be missing from the names exactly when
            # the name moves to one of them).
            key = "writerTargetsByRegion" if "writerTargetsByRegion" in outputs else "writerEndpointsByRegion"
            by_region = outputs.get(key) or {}
            if not isinstance(by_region, Mapping):
                raise SettingsError(f"outputs.{key}", "must map region -> endpoint")
            endpoints = [writer_host] + [
                str(e).rpartition(":")[0] or str(e) for e in by_region.values() if isinstance(e, str) and e
            ]
            tls_names = tuple(dict.fromkeys(e for e in endpoints if e))
            writer_host = str(outputs["writerName"])
        readers = outputs.get("readerEndpoints") or []
        if isinstance(readers, str):
            readers = [r.strip() for r in readers.split(",") if r.strip()]
        # This region's copies of the secrets (secretArnsByRegion[region]) first: the primary
        # region's (writerSecretArn, ...) are unreadable when that region is lost.
        own = outputs.get("secretArnsByRegion") or {}
        if not isinstance(own, Mapping):
            raise SettingsError(
                "outputs.secretArnsByRegion", "must map region -> {writer, reader, master, redisAuth}"
            )
        own = (own.get(region) or {}) if region else {}
        if not isinstance(own, Mapping):
            raise SettingsError(
                "outputs.secretArnsByRegion", f"[{region!r}] must map writer/reader/master/redisAuth -> ARN"
            )
        # The service's own writer user (app_writer) when the stack exports it; the master secret
        # (dbSecretArn) is the fallback for operators and migrations.
        writer_arn = (
            own.get("writer") or outputs.get("writerSecretArn") or own.get("master") or output("dbSecretArn")
        )
        provider = SecretsManagerCredentials(str(writer_arn), region=region, client=client)
        data = dict(provider.fetch_sync())
        data["host"] = writer_host
        if writer_port:
            data["port"] = int(writer_port)
        data["reader_hosts"] = [str(r) for r in readers]
        kwargs: dict[str, Any] = {"ssl_root_cert": ssl_root_cert} if ssl_root_cert else {}
        if tls_names and (overrides.get("ssl") or data.get("ssl") or "verify-full") == "verify-full":
            kwargs["writer_tls_names"] = tls_names  # (verify-ca checks no name: nothing to add)
        reader_arn = own.get("reader") or outputs.get("readerSecretArn")
        if reader_arn:
            kwargs["reader_credentials"] = SecretsManagerCredentials(
                str(reader_arn), region=region, client=client
            )
        redis_host = outputs.get("redisPrimaryEndpoint")
        if redis_host:
            auth: dict[str, Any] = {}
            redis_arn = own.get("redisAuth") or outputs.get("redisAuthSecretArn")
            if redis_arn:
                auth = SecretsManagerCredentials(str(redis_arn), region=region, client=client).fetch_sync()
            host, _, port = str(redis_host).rpartition(":")
            if not host:
                host, port = port, ""
            scheme = "rediss" if auth.get("tls", True) else "redis"
            query = f"?ssl_ca_certs={quote(redis_ca_certs, safe='/')}" if redis_ca_certs else ""
            kwargs["redis_url"] = f"{scheme}://{host}:{port or auth.get('port') or 6379}/0{query}"
            if auth.get("auth_token"):
                kwargs["redis_auth_token"] = str(auth["auth_token"])
        kwargs.update(overrides)
        return cls.from_secret_payload(data, credentials=provider, aws_region=region, **kwargs)

    @classmethod
    def from_secret_payload(cls, data: dict[str, Any], **overrides: Any) -> Settings:
        """Build settings from an already decoded secret dict (see :meth:`from_secret`)."""

        def need(key: str) -> str:
            value = data.get(key)
            if value in (None, ""):
                raise SettingsError(f"secret.{key}", "is required in the database secret")
            return str(value)

        host, user = need("host"), need("username")
        port = int(data.get("port") or 5432)
        dbname = str(data.get("dbname") or "postgres")
        # Secure by default: verified TLS unless the secret says otherwise (pass ssl_root_cert).
        params = f"?sslmode={data.get('ssl') or 'verify-full'}"
        kwargs: dict[str, Any] = {
            "writer_dsn": f"postgresql://{quote(user, safe='')}@{host}:{port}/{dbname}{params}"
        }
        readers = data.get("reader_hosts") or data.get("readers") or []
        if isinstance(readers, str):
            readers = [r.strip() for r in readers.split(",") if r.strip()]
        reader_dsns = []
        for r in readers:
            rhost, _, rport = str(r).partition(":")
            reader_dsns.append(
                f"postgresql://{quote(user, safe='')}@{rhost}:{rport or port}/{dbname}{params}"
            )
        kwargs["reader_dsns"] = tuple(reader_dsns)
        if data.get("redis_url"):
            kwargs["redis_url"] = str(data["redis_url"])
        elif data.get("redis_host"):
            # ElastiCache with in-transit encryption (what CacheLayer provisions): TLS.
            kwargs["redis_url"] = f"rediss://{data['redis_host']}:{int(data.get('redis_port') or 6379)}/0"
        if data.get("proxy_mode"):
            kwargs["proxy_mode"] = data["proxy_mode"]
        if "credentials" not in overrides and data.get("password"):
            kwargs["password"] = str(data["password"])
        kwargs.update(overrides)
        return cls(**kwargs)


_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
"""A DNS host name (no wildcard, no port)."""


def _is_host_name_or_ip(value: str) -> bool:
    if _HOST_NAME.fullmatch(value):
        return True
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_local_host(host: str) -> bool:
    """Loopback (127.0.0.0/8, ::1, localhost) or a unix socket directory (empty / absolute path)."""
    if not host or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_dsn(name: str, dsn: object) -> None:
    if not isinstance(dsn, str) or not re.match(r"^postgres(ql)?://", dsn):
        shown = mask_url(dsn) if isinstance(dsn, str) else dsn
        raise SettingsError(name, f"{shown!r} must be a postgresql:// DSN")
    _check_hosts_and_ports(name, dsn)


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(name, f"{value!r} is not one of {', '.join(allowed)}")


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise SettingsError(name, f"{value!r} must be a number > 0")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(name, f"{value!r} must be an integer >= 1")


def _non_negative_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingsError(name, f"{value!r} must be an integer >= 0")


def _parse_env_value(var: str, name: str, raw: str) -> Any:
    default = next(f for f in dataclasses.fields(Settings) if f.name == name).default
    if name in ("reader_dsns", "writer_tls_names"):
        return tuple(s.strip() for s in raw.split(",") if s.strip())
    if name in ("statement_cache_size", "statement_timeout"):
        kind: type = int if name == "statement_cache_size" else float
    elif default is None or default is dataclasses.MISSING or isinstance(default, str):
        return raw
    else:
        kind = type(default)
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError
            return low in ("1", "true", "yes", "on")
        return kind(raw)
    except ValueError:
        shown = "***" if "password" in name else repr(raw)
        raise SettingsError(var, f"{shown} is not a valid {kind.__name__}") from None
