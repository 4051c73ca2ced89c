"""Clean up after owners that died without stopping their tier (SIGKILL, OOM, a CI timeout).

Every tier's temp dir holds ``owner`` (pid and start time of the owning process) and ``pids`` (pid
and start time of every server it started). A dir whose owner is gone gets its recorded server
processes SIGKILLed and is deleted. Start times guard against pid reuse.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
from pathlib import Path

OWNER_FILE = "owner"
PIDS_FILE = "pids"


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def identity(pid: int) -> str:
    return f"{pid} {start_time(pid)}"


def write_owner(workdir: Path) -> None:
    (workdir / OWNER_FILE).write_text(identity(os.getpid()) + "\n")


def record_pid(workdir: Path, pid: int) -> None:
    """Remember a server process started for the tier in workdir (no-op for other dirs)."""
    if (workdir / OWNER_FILE).exists():
        with open(workdir / PIDS_FILE, "a") as fh:
            fh.write(identity(pid) + "\n")


def _alive(ident: str) -> bool:
    pid_s, _, started = ident.partition(" ")
    try:
        pid = int(pid_s)
    except ValueError:
        return False
    return start_time(pid) == started and started != "None"


def reap_orphans(
    base_dir: str | None = None, patterns: tuple[str, ...] = ("cdb-tier-*", "cdb-pgtemplate-*")
) -> int:
    """Kill the servers of, and delete, every tier dir under base_dir whose owner is dead.
    Returns how many dirs were reaped. Never raises."""
    base = base_dir or os.environ.get("TMPDIR") or "/tmp"
    reaped = 0
    for pattern in patterns:
        for d in glob.glob(os.path.join(base, pattern)):
            workdir = Path(d)
            try:
                owner = (workdir / OWNER_FILE).read_text().strip()
            except OSError:
                continue  # no owner file: not ours, or still being created
            if _alive(owner):
                continue
            with contextlib.suppress(OSError):
                for line in (workdir / PIDS_FILE).read_text().splitlines():
                    if _alive(line.strip()):
                        pid = int(line.split()[0])
                        with contextlib.suppress(OSError):
                            os.killpg(pid, signal.SIGKILL)  # servers lead their own session
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
            shutil.rmtree(workdir, ignore_errors=True)
            reaped += 1
    return reaped
