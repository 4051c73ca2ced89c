"""Process plumbing shared by the server nodes: free ports, running as a non-root user, waiting."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from commerce_db.localtier.errors import LocalTierError
from commerce_db.localtier.reaper import record_pid

_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc; empty where there is none)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
                if int(stat.rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def free_port() -> int:
    """A loopback TCP port that is free right now and not yet handed out by this process.

    There is an unavoidable race with other processes between this call and the server's bind;
    nodes detect "address already in use" in their log and retry on a new port.
    """
    with _ports_lock:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise LocalTierError("could not find a free loopback port")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


class RunAs:
    """Who server processes run as: the current user, or ``postgres`` when we are root.

    PostgreSQL refuses to run as root and PgBouncer warns/refuses too, so as root every server
    process is started with the ``postgres`` uid/gid and its directories are chowned to it.
    """

    def __init__(self, user: str | None = None) -> None:
        if user is None and os.geteuid() == 0:
            user = os.environ.get("LOCALTIER_USER", "postgres")
        self.user = user
        if user is not None:
            try:
                entry = pwd.getpwnam(user)
            except KeyError as exc:
                raise LocalTierError(
                    f"running as root, the local tier needs a {user!r} system user to run PostgreSQL "
                    "(create it, e.g. `useradd --system postgres`, or run as a normal user)"
                ) from exc
            self.uid: int | None = entry.pw_uid
            self.gid: int | None = entry.pw_gid
        else:
            self.uid = self.gid = None

    def chown(self, path: Path) -> None:
        """Give path (recursively) to the run-as user; no-op when not switching users."""
        if self.uid is None or self.gid is None:
            return
        os.chown(path, self.uid, self.gid)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)

    def popen_kwargs(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a short-lived tool as the run-as user; raise LocalTierError with its output on failure."""
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
            **self.popen_kwargs(),
        )
        if proc.returncode != 0:
            out = (proc.stderr or proc.stdout).strip()[-2000:]
            raise LocalTierError(f"{Path(argv[0]).name} failed (exit {proc.returncode}): {out}")
        return proc


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
    if extra:
        env.update(extra)
    return env


class ManagedProcess:
    """A long-running server process started in its own session, with its log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        log: Path,
        run_as: RunAs,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log = log
        # Own session: Ctrl-C in a terminal must not reach the servers before we stop them in order,
        # and killpg() can take down a postmaster together with its backends.
        with open(log, "ab") as fh:
            self.popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=_env(env),
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **run_as.popen_kwargs(),
            )

        record_pid(cwd.parent, self.popen.pid)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL the leader, its process group and its children: a crash. The children are
        killed by pid because PostgreSQL's backends leave the postmaster's group (each calls
        ``setsid()``): killing the group alone leaves them serving their open connections until
        they notice the postmaster is gone, which on a loaded machine is not at once."""
        children = _children(self.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Send sig, wait up to timeout, then SIGKILL the group. Safe to call repeatedly."""
        if self.alive():
            self.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # Children (postgres backends) may outlive a killed leader for a moment: kill the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def wait_until(
    what: str,
    check: Callable[[], bool],
    *,
    timeout: float,
    proc: ManagedProcess | None = None,
    interval: float = 0.03,
) -> None:
    """Poll check() until it is true; fail early (with the log tail) if proc died meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if proc is not None and not proc.alive():
            raise LocalTierError(f"{proc.name} exited while waiting for {what}:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            tail = f":\n{proc.log_tail()}" if proc is not None else ""
            raise LocalTierError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.25)
