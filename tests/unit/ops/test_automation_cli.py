"""Automation API against the real Pulumi CLI (skipped where ``pulumi`` is not on PATH).

Uses a local file backend in a temp dir and trivial inline programs, so no cloud account is
needed: it exercises the boundary (stack create/select, config incl. secrets, up/preview/
outputs/destroy, event streaming, secret masking) end to end.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pulumi
import pytest

from commerce_db import automation as cdb_auto

pytestmark = [
    pytest.mark.pulumi_cli,
    pytest.mark.skipif(shutil.which("pulumi") is None, reason="pulumi CLI not on PATH"),
]


@pytest.fixture
def local_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{state}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only-passphrase")
    monkeypatch.setenv("PULUMI_SKIP_UPDATE_CHECK", "true")
    return state


def _program() -> None:
    cfg = pulumi.Config("commerce-db")
    pulumi.export("region", cfg.require("primaryRegion"))
    pulumi.export("token", cfg.require_secret("alertWebhook"))


def test_up_outputs_destroy_on_a_local_backend(local_backend: Path) -> None:
    settings = cdb_auto.StackSettings(
        stack="cli-test",
        config={"commerce-db:primaryRegion": "us-east-1"},
        secrets={"commerce-db:alertWebhook": "hook-secret-123"},
    )
    events: list[cdb_auto.ProgressEvent] = []
    preview = cdb_auto.preview(settings, program=_program, validate=None, on_event=events.append)
    assert preview.succeeded and any(isinstance(e, cdb_auto.Summary) for e in events)

    result = cdb_auto.up(settings, program=_program, validate=None)
    assert result.succeeded and result.version is not None
    assert result.outputs["region"] == cdb_auto.StackOutput("us-east-1", False)
    assert result.outputs["token"] == cdb_auto.StackOutput("[secret]", True)
    assert "hook-secret-123" not in str(result.to_dict())

    outs = cdb_auto.outputs(settings)
    assert outs["token"].value == "[secret]" and outs["region"].value == "us-east-1"

    gone = cdb_auto.destroy(settings, confirm_stack="cli-test", program=_program)
    assert gone.succeeded


def test_reviewed_update_and_drift_check_on_a_local_backend(local_backend: Path, tmp_path: Path) -> None:
    """preview(plan_file) -> up(plan_file); then a drift check finds nothing and writes nothing."""
    settings = cdb_auto.StackSettings(
        stack="cli-plan-test",
        config={"commerce-db:primaryRegion": "us-east-1"},
        secrets={"commerce-db:alertWebhook": "hook-secret-456"},
    )
    plan = tmp_path / "plan.json"
    cdb_auto.preview(settings, program=_program, validate=None, plan_file=plan)
    assert plan.is_file()
    assert cdb_auto.up(settings, program=_program, validate=None, plan_file=plan).succeeded
    before = cdb_auto.outputs(settings)
    check = cdb_auto.drift_check(settings, program=_program, validate=None)
    assert check.succeeded and check.changes.changed == 0
    assert cdb_auto.outputs(settings) == before
    assert cdb_auto.destroy(settings, confirm_stack="cli-plan-test", program=_program).succeeded
