"""`commerce-db local up | status | down`: a tier that stays up until asked to stop."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commerce_db.cli", "local", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_local_up_status_down(tmp_path: Path) -> None:
    up = subprocess.Popen(
        [sys.executable, "-m", "commerce_db.cli", "local", "up", "--no-standby"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    state = tmp_path / "out" / "local-tier.json"
    try:
        for _ in range(600):  # the tier starts in seconds; CI machines can be slow
            if state.exists() or up.poll() is not None:
                break
            time.sleep(0.2)
        assert state.exists(), up.stderr.read() if up.poll() is not None else "no state file"
        doc = json.loads(state.read_text())
        assert doc["exports"]["COMMERCE_DB_WRITER_DSN"] == doc["pgbouncer"]
        # TLS by default: verify-full against the run's CA, rediss:// with the password.
        assert doc["transport"] == "tls" and Path(doc["ca_cert"]).is_file()
        assert doc["pgbouncer"].endswith(f"?sslmode=verify-full&sslrootcert={doc['ca_cert']}")
        redis_url = doc["exports"]["COMMERCE_DB_REDIS_URL"]
        assert redis_url.startswith("rediss://:") and redis_url.endswith(f"?ssl_ca_certs={doc['ca_cert']}")
        status = _cli("status", cwd=tmp_path)
        assert status.returncode == 0 and doc["pgbouncer"] in status.stdout
        assert _cli("down", cwd=tmp_path).returncode == 0
        assert up.wait(timeout=60) == 0
        assert _cli("status", cwd=tmp_path).returncode == 1 and not state.exists()
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=60)
