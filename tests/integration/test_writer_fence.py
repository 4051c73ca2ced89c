"""The writer name moves (an ARC failover): pooled writer connections follow it within
``writer_max_connection_lifetime``, and none is closed under a caller.

Two real PostgreSQL servers play the two regions: a private tier's primary is the old region's
writer (still writable when its region comes back, as an RDS instance whose replica was promoted
elsewhere is; private, so a test may fence it read-only), the shared tier's primary the new
region's. Each is reached through its own
:class:`FaultProxy`, standing in for that region's RDS Proxy: same port, different loopback
address (127.0.0.2 / 127.0.0.3). The DSN names the host ``writer.fence.test``, which a hosts-style
resolver installed on the event loop maps to one address or the other; flipping it is the ARC
routing-control change. asyncpg resolves through the loop (``create_connection`` ->
``getaddrinfo``), so the resolver also counts how often the name is resolved. TLS is verified
against a bundle holding both tiers' CAs (as the RDS global bundle holds every region's); the
host name is not in the test certificates, hence ``verify-ca``.

Time is an injected clock: no test waits for a lifetime to pass.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from commerce_db.localtier import DatabaseDSNs, LocalTier
from commerce_db.localtier.faultproxy import FaultProxy
from dataaccess import DataAccess, Settings
from dataaccess.pools import Pools

pytestmark = pytest.mark.integration

NAME = "writer.fence.test"  # .test never resolves in public DNS: only our resolver answers
OLD_ADDR, NEW_ADDR = "127.0.0.2", "127.0.0.3"
DEADLINE = 30.0  # generous bound of condition polls (not a latency check)


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Regions:
    """The two regions' writer endpoints behind one name."""

    old: FaultProxy
    new: FaultProxy
    old_tier: LocalTier
    dsn: str
    """The application's writer DSN: host ``writer.fence.test``."""
    old_direct: str
    new_direct: str
    ports: dict[int, str]
    """Server port -> "old" / "new" (``current_setting('port')`` tells which server answered)."""
    ca_bundle: str
    """Both tiers' CAs (as the RDS bundle holds every region's)."""
    points_to: str = OLD_ADDR
    resolved: list[str] = field(default_factory=list)

    def flip(self) -> None:
        """The ARC routing-control change: the name now answers with the new region."""
        self.points_to = NEW_ADDR


async def _where(conn: Any, regions: Regions) -> str:
    return regions.ports[int(await conn.fetchval("SELECT current_setting('port')"))]


async def _wait_for(what: str, predicate: Any) -> None:
    async with asyncio.timeout(DEADLINE):
        while not predicate():
            await asyncio.sleep(0.02)
    assert predicate(), what


def _start_pair(
    old_upstream: int, new_upstream: int, old_tier: LocalTier, new_tier: LocalTier
) -> tuple[FaultProxy, FaultProxy]:
    """Two proxies on the same port, one per loopback address (retried if the port is taken)."""
    for _ in range(20):
        old = FaultProxy(
            "old-region", old_upstream, protocol="postgres", tls=old_tier.tls, listen_host=OLD_ADDR
        )
        old.start()
        new = FaultProxy(
            "new-region",
            new_upstream,
            protocol="postgres",
            tls=new_tier.tls,
            listen_host=NEW_ADDR,
            listen_port=old.port or 0,
        )
        try:
            new.start()
        except OSError:
            new.stop()
            old.stop()
            continue
        return old, new
    raise RuntimeError("no port free on both 127.0.0.2 and 127.0.0.3")


@pytest.fixture
async def regions(
    tier: Any,
    fresh_db: DatabaseDSNs,
    fault_tier: LocalTier,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Regions]:
    if not isinstance(tier, LocalTier) or tier.tls is None or fault_tier.tls is None:
        pytest.skip("needs the local tier (TLS, a second PostgreSQL server)")
    old_db = await asyncio.to_thread(fault_tier.create_database, fresh_db.name)
    old_dsn, new_dsn = old_db.primary, fresh_db.primary
    for dsn in (old_dsn, new_dsn):  # the new region's writer is a promoted replica: same schema
        async with DataAccess.connect(Settings(writer_dsn=dsn)) as da:
            await da.migrate()
    old_port, new_port = urlsplit(old_dsn).port, urlsplit(new_dsn).port
    assert old_port and new_port and old_port != new_port
    old, new = _start_pair(old_port, new_port, fault_tier, tier)
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_bytes(Path(tier.tls.ca_cert).read_bytes() + Path(fault_tier.tls.ca_cert).read_bytes())
    parts = urlsplit(new_dsn)  # same user, password and database name on both servers
    assert (parts.username, parts.password) == (urlsplit(old_dsn).username, urlsplit(old_dsn).password)
    userinfo = parts.netloc.rpartition("@")[0]
    query = urlencode({"sslmode": "verify-ca", "sslrootcert": str(bundle)})
    dsn = urlunsplit((parts.scheme, f"{userinfo}@{NAME}:{old.port}", parts.path, query, ""))
    regions = Regions(
        old, new, fault_tier, dsn, old_dsn, new_dsn, {old_port: "old", new_port: "new"}, str(bundle)
    )

    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return await real_getaddrinfo(host, port, *args, **kwargs)
        regions.resolved.append(regions.points_to)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (regions.points_to, int(port)))]

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    try:
        yield regions
    finally:
        old.stop()
        new.stop()


async def test_a_writer_connection_past_its_lifetime_is_replaced_where_the_name_points(
    regions: Regions,
) -> None:
    clock = Clock()
    settings = Settings(
        writer_dsn=regions.dsn, writer_pool_min=1, writer_pool_max=2, writer_max_connection_lifetime=60
    )
    pools = await Pools.create(settings, clock=clock)
    try:
        async with pools.writer() as conn:
            assert await _where(conn, regions) == "old"
        assert regions.resolved == [OLD_ADDR]  # one connection, one resolution
        regions.flip()
        clock.advance(30)  # within its lifetime, the pooled connection is still used: the hazard
        async with pools.writer() as conn:
            assert await _where(conn, regions) == "old"
        assert pools.retired == 0 and regions.resolved == [OLD_ADDR]
        clock.advance(31)  # 61 s: past the lifetime (at most 60 s, drawn from [54, 60])
        async with pools.writer() as conn:
            assert await _where(conn, regions) == "new"
        assert pools.retired == 1
        # The name was resolved again for the new connection (and for any the pool opened to keep
        # writer_pool_min): nothing kept the old address.
        assert regions.resolved[0] == OLD_ADDR and set(regions.resolved[1:]) == {NEW_ADDR}
        await _wait_for("the old region's connection closed", lambda: regions.old.open_connections == 0)
        assert pools.stats()["writer_retired"] == 1
    finally:
        await pools.close()


async def test_a_connection_in_use_is_never_closed_under_its_caller(regions: Regions) -> None:
    clock = Clock()
    settings = Settings(
        writer_dsn=regions.dsn, writer_pool_min=1, writer_pool_max=2, writer_max_connection_lifetime=60
    )
    pools = await Pools.create(settings, clock=clock)
    try:
        async with pools.writer() as conn:
            pid = conn.get_server_pid()
            async with conn.transaction():
                await conn.execute("CREATE TEMP TABLE held (x int) ON COMMIT DROP")
                await conn.execute("INSERT INTO held VALUES (1)")
                regions.flip()
                clock.advance(3_600)  # long past its lifetime while the caller holds it
                async with pools.writer() as other:  # others get a new one, where the name points
                    assert await _where(other, regions) == "new"
                assert await conn.fetchval("SELECT count(*) FROM held") == 1
                assert conn.get_server_pid() == pid and await _where(conn, regions) == "old"
            assert pools.retired == 0  # nothing closed while held
        # Given back idle and outlived: closed, not pooled.
        assert pools.retired == 1
        await _wait_for("the old region's connection closed", lambda: regions.old.open_connections == 0)
        async with pools.writer() as conn:
            assert await _where(conn, regions) == "new"
    finally:
        await pools.close()


async def test_a_connection_given_back_inside_a_transaction_is_rolled_back_then_retired(
    regions: Regions,
) -> None:
    clock = Clock()
    settings = Settings(
        writer_dsn=regions.dsn, writer_pool_min=1, writer_pool_max=1, writer_max_connection_lifetime=60
    )
    pools = await Pools.create(settings, clock=clock)
    try:
        async with pools.writer() as conn:
            await conn.execute("BEGIN")  # an unmanaged transaction left open by its caller
            await conn.execute("CREATE TEMP TABLE left_open (x int)")
            clock.advance(120)
        assert pools.retired == 0  # asyncpg's release rolls it back; retiring waits for the next acquire
        regions.flip()
        async with pools.writer() as conn:
            assert await _where(conn, regions) == "new"
        assert pools.retired == 1
    finally:
        await pools.close()


async def _emails(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["email"] for r in await conn.fetch("SELECT email FROM users ORDER BY email")]
    finally:
        await conn.close()


@pytest.mark.parametrize("lifetime", [60.0, 0.0], ids=["fenced", "unbounded"])
async def test_after_the_old_region_returns_writes_go_to_the_new_one_without_errors(
    regions: Regions, lifetime: float
) -> None:
    """The outage path: the old region goes dark with this process's pooled connection open, ARC
    moves the name, the outage outlasts the lifetime, the old region comes back. The next write
    lands in the new region and the caller sees no error. ``unbounded`` (the setting off, i.e. the
    old behaviour) shows the hazard: the write lands in the old region, to be lost."""
    clock = Clock()
    settings = Settings(
        writer_dsn=regions.dsn, writer_pool_min=1, writer_pool_max=1, writer_max_connection_lifetime=lifetime
    )
    async with DataAccess.connect(settings, clock=clock) as da:
        await da.users.create(email="before@example.com", name="Before")
        regions.old.hang()  # the old region goes dark; the pooled connection stays open
        regions.flip()
        clock.advance(600)
        regions.old.heal()  # ... and comes back
        await da.users.create(email="after@example.com", name="After")
        retries = da.stats()["retries"]
    old_rows, new_rows = await _emails(regions.old_direct), await _emails(regions.new_direct)
    assert retries == {}  # no error, not even a retried one
    if lifetime:
        assert (old_rows, new_rows) == (["before@example.com"], ["after@example.com"])
    else:
        assert (old_rows, new_rows) == (["after@example.com", "before@example.com"], [])


async def test_an_old_writer_fenced_read_only_refuses_the_write_and_the_retry_follows_the_name(
    regions: Regions,
) -> None:
    """The other fence the runbook may use: the old writer made read-only (``ALTER SYSTEM SET
    default_transaction_read_only``, a dynamic parameter, applies to open sessions too). With the
    lifetime off, so this is the data layer's read-only handling alone: the old server refuses the
    write (25006, nothing written), the writer pool is expired, and the retry resolves the name
    and writes to the new region; the caller sees no error."""
    settings = Settings(
        writer_dsn=regions.dsn, writer_pool_min=1, writer_pool_max=1, writer_max_connection_lifetime=0
    )
    async with DataAccess.connect(settings) as da:
        await da.users.create(email="before@example.com", name="Before")
        old = regions.old_tier.primary
        await asyncio.to_thread(old.psql, "ALTER SYSTEM SET default_transaction_read_only = on")
        await asyncio.to_thread(old.psql, "SELECT pg_reload_conf()")
        # Once a new session starts read-only, the postmaster has reloaded and signalled every
        # backend (signals are asynchronous): one statement through the pooled connection makes
        # sure its backend has handled the signal before the write, whenever it handles it.
        async with asyncio.timeout(DEADLINE):
            while await asyncio.to_thread(old.psql, "SHOW default_transaction_read_only") != "on":
                await asyncio.sleep(0.05)
        async with da.pools.writer() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        regions.flip()
        await da.users.create(email="after@example.com", name="After")
        retries = da.stats()["retries"]
    assert retries == {"read_only": 1}
    assert await _emails(regions.old_direct) == ["before@example.com"]
    assert await _emails(regions.new_direct) == ["after@example.com"]


async def test_verify_full_through_the_writer_name_accepts_only_the_listed_certificate_names(
    regions: Regions,
) -> None:
    """The proxies' certificates (here the tiers' server certificates: localhost, 127.0.0.1) never
    name the writer's CNAME, so libpq-style verify-full refuses the name; ``writer_tls_names``
    accepts a certificate naming a listed endpoint (chain still verified), and nothing else."""
    dsn = regions.dsn.replace("sslmode=verify-ca", "sslmode=verify-full")
    with pytest.raises(ssl.SSLCertVerificationError, match=re.escape(NAME)):
        await Pools.create(Settings(writer_dsn=dsn, writer_max_connection_lifetime=60))
    with pytest.raises(ssl.SSLCertVerificationError, match="writer_tls_names"):
        await Pools.create(Settings(writer_dsn=dsn, writer_tls_names=("db.example.com",)))
    pools = await Pools.create(Settings(writer_dsn=dsn, writer_tls_names=("db.example.com", "localhost")))
    try:
        async with pools.writer() as conn:
            assert await _where(conn, regions) == "old"
    finally:
        await pools.close()
    # The DSN's own host still counts, as in plain verify-full (e.g. set_writer_dsn to an
    # endpoint the list does not name).
    assert "@127.0.0.1:" in regions.new_direct
    local = regions.new_direct.replace("@127.0.0.1:", "@localhost:")
    pools = await Pools.create(Settings(writer_dsn=local, writer_tls_names=("db.example.com",)))
    try:
        async with pools.writer() as conn:
            assert await _where(conn, regions) == "new"
    finally:
        await pools.close()


async def test_services_wired_from_the_stack_outputs_follow_the_writer_name(regions: Regions) -> None:
    """``Settings.from_stack_outputs`` with ``writerName`` exported (``writerDns: arc``): the writer
    DSN names it, TLS is verify-full against every region's proxy endpoint, and after the ARC
    flip and one lifetime the service writes to the new region (passwords from the secret)."""
    import json

    import boto3
    from moto import mock_aws

    parts = urlsplit(regions.old_direct)
    clock = Clock()
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        secret = {"username": parts.username, "password": parts.password, "dbname": parts.path.lstrip("/")}
        arn = sm.create_secret(Name="app-writer", SecretString=json.dumps(secret))["ARN"]
        outputs = {
            "writerEndpoint": f"localhost:{regions.old.port}",  # the primary region's proxy
            "writerEndpointsByRegion": {"us-east-1": "localhost", "us-west-2": "127.0.0.1"},
            "writerName": NAME,
            "writerSecretArn": arn,
        }
        settings = Settings.from_stack_outputs(
            outputs, region="us-east-1", client=sm, ssl_root_cert=regions.ca_bundle, writer_pool_max=1
        )
        assert urlsplit(settings.writer_dsn).hostname == NAME
        assert settings.writer_tls_names == ("localhost", "127.0.0.1")
        async with DataAccess.connect(settings, clock=clock) as da:
            await da.users.create(email="before@example.com", name="Before")
            regions.flip()
            clock.advance(61)
            await da.users.create(email="after@example.com", name="After")
    assert await _emails(regions.old_direct) == ["before@example.com"]
    assert await _emails(regions.new_direct) == ["after@example.com"]
