"""``commerce-db local up|status|down``: a local PostgreSQL (primary + streaming standby), PgBouncer and
Redis (+ replica) to keep while you try the data layer, over :class:`commerce_db.localtier.LocalTier`.

``up`` starts the tier in the foreground (the servers belong to that process: the local tier reaps
servers whose owner is gone), prints the DSNs and ``COMMERCE_DB_*`` exports, writes them to a state
file, and keeps running until Ctrl-C or ``local down`` (from another shell). ``status`` reads the
state file and checks the owner is alive; ``down`` asks the owner to stop every server.
Exit codes: 0 ok, 1 the tier failed to start or is not running (``status``), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

DEFAULT_STATE = Path("out") / "local-tier.json"


def register(subparsers: Any) -> None:
    """Add the ``local`` command and its ``up``/``status``/``down`` sub-commands."""
    p = subparsers.add_parser(
        "local",
        help="a local PostgreSQL + standby, PgBouncer and Redis to keep: up | status | down",
        description=(
            "Start (up), inspect (status) or stop (down) a local tier: PostgreSQL primary with a streaming "
            "hot standby, PgBouncer in transaction mode in front of it (as RDS Proxy), Redis primary + "
            "replica, on free loopback ports. 'up' stays in the foreground and prints the DSNs and "
            "COMMERCE_DB_* exports."
        ),
    )
    ops = p.add_subparsers(dest="local_op", metavar="OPERATION", required=True)
    for name, text in (
        ("up", "start the tier and keep it running until Ctrl-C or 'local down'"),
        ("status", "show the running tier's endpoints (exit 1 if none)"),
        ("down", "stop the running tier"),
    ):
        sub = ops.add_parser(name, help=text)
        sub.add_argument(
            "--state",
            type=Path,
            default=DEFAULT_STATE,
            help=f"state file with the owner pid and endpoints (default: {DEFAULT_STATE})",
        )
        if name == "up":
            sub.add_argument("--no-standby", action="store_true", help="no streaming standby")
            sub.add_argument(
                "--plaintext",
                action="store_true",
                help="no TLS and no Redis password (default: TLS everywhere with a throwaway CA, "
                "verify-full DSNs and a rediss:// URL, as in production); only for a client that "
                "cannot speak TLS",
            )
            sub.add_argument("--json", action="store_true", help="print the endpoints as JSON")
        sub.set_defaults(func=_RUNNERS[name])


def exports(dsns: Any, redis_url: str | None) -> dict[str, str]:
    """The ``COMMERCE_DB_*`` environment the data layer reads (``Settings.from_env``)."""
    env = {
        "COMMERCE_DB_WRITER_DSN": dsns.pgbouncer or dsns.primary,
        "COMMERCE_DB_PROXY_MODE": "pgbouncer" if dsns.pgbouncer else "direct",
    }
    if dsns.standby:
        env["COMMERCE_DB_READER_DSNS"] = dsns.standby
    if redis_url:
        env["COMMERCE_DB_REDIS_URL"] = redis_url
    return env


def _postgres_version(tier: Any) -> str:
    """``PostgreSQL 15.18`` from the tier's ``postgres --version`` ("PostgreSQL" if unknown)."""
    import subprocess

    bindir = getattr(getattr(tier, "bins", None), "pg_bindir", None)
    if bindir is None:
        return "PostgreSQL"
    try:
        out = subprocess.run(
            [str(Path(bindir) / "postgres"), "--version"], capture_output=True, text=True, timeout=10
        )
        version = re.search(r"\d+(?:\.\d+)+", out.stdout)  # "postgres (PostgreSQL) 15.18 (Debian ...)"
        return f"PostgreSQL {version.group(0)}" if version else "PostgreSQL"
    except (OSError, subprocess.SubprocessError):
        return "PostgreSQL"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None


def _up(args: argparse.Namespace) -> int:
    from commerce_db.localtier import LocalTier, LocalTierError

    running = _read_state(args.state)
    if running and _alive(running["pid"]):
        print(f"commerce-db local up: a tier is already running (pid {running['pid']}); 'local down' first",
              file=sys.stderr)  # fmt: skip
        return 2
    print("starting PostgreSQL primary + standby, PgBouncer and Redis + replica ...", file=sys.stderr)
    tier = LocalTier(standby=not args.no_standby, transport="plaintext" if args.plaintext else "tls")
    try:
        tier.start()
    except LocalTierError as exc:
        print(f"commerce-db local up: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        dsns = tier.dsns()
        env = exports(dsns, tier.redis_url if tier.redis is not None else None)
        state = {
            "pid": os.getpid(),
            "primary": dsns.primary,
            "standby": dsns.standby,
            "pgbouncer": dsns.pgbouncer,
            "redis": env.get("COMMERCE_DB_REDIS_URL"),
            "transport": tier.transport,
            "ca_cert": str(tier.tls.ca_cert) if tier.tls is not None else None,
            "exports": env,
        }
        args.state.parent.mkdir(parents=True, exist_ok=True)
        args.state.write_text(json.dumps(state, indent=2) + "\n")
        os.chmod(args.state, 0o600)  # the DSNs carry the local app password
        if args.json:
            print(json.dumps(state, indent=2))
        else:
            print(f"local tier up in {tier.started_in:.1f} s (state: {args.state})")
            pg = _postgres_version(tier)
            print(f"  {pg} locally; the stacks run PostgreSQL 16/17 (tested here on 15 only)")
            if tier.tls is not None:
                print(f"  TLS only (plaintext refused); CA certificate: {tier.tls.ca_cert}")
            else:
                print("  PLAINTEXT (--plaintext): no TLS, no Redis password")
            for label in ("primary", "standby", "pgbouncer", "redis"):
                if state[label]:
                    print(f"  {label:<10} {state[label]}")
            print("# for the data layer (Settings.from_env):")
            for key, value in env.items():
                print(f"export {key}='{value}'")
            print("Ctrl-C or 'commerce-db local down' stops every server.")
        sys.stdout.flush()
        stop.wait()
    finally:
        tier.stop()
        if (_read_state(args.state) or {}).get("pid") == os.getpid():
            args.state.unlink(missing_ok=True)
    print("local tier stopped", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    state = _read_state(args.state)
    if not state or not _alive(state["pid"]):
        print(f"no local tier running (state file {args.state})")
        return 1
    print(f"local tier running (owner pid {state['pid']})")
    for label in ("primary", "standby", "pgbouncer", "redis"):
        if state.get(label):
            print(f"  {label:<10} {state[label]}")
    return 0


def _down(args: argparse.Namespace) -> int:
    state = _read_state(args.state)
    if not state or not _alive(state["pid"]):
        print(f"no local tier running (state file {args.state})")
        args.state.unlink(missing_ok=True)
        return 0
    os.kill(state["pid"], signal.SIGTERM)
    print(f"asked the local tier (pid {state['pid']}) to stop every server")
    return 0


_RUNNERS = {"up": _up, "status": _status, "down": _down}
