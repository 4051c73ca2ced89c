"""Automation API module: everything around the CLI boundary, with an injected stack handle.

The stand-in is a test double for *our* boundary (``StackHandle``); it returns the real
``pulumi.automation`` result/event classes, built the way the SDK builds them from the CLI's
JSON, so translation is tested against the SDK's actual shapes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pulumi.automation import errors as auto_errors
from pulumi.automation._cmd import CommandResult
from pulumi.automation.events import EngineEvent

from commerce_db import automation as cdb_auto
from commerce_db.automation import boundary
from commerce_db.automation.settings import load_stack_settings, parse_assignment

SECRET = "s3cr3t-value-that-must-not-leak"


# --------------------------------------------------------------------------- fixtures / doubles


def _engine_events() -> list[EngineEvent]:
    """A short but realistic event stream, as the CLI's JSON event log would produce it."""
    urn = "urn:pulumi:staging::commerce-db::commerce:db:PostgresCluster$aws:rds/instance:Instance::pg-primary"
    meta = {"op": "create", "urn": urn, "type": "aws:rds/instance:Instance", "provider": ""}
    diag_info = {"message": "creating...\n", "severity": "info", "ephemeral": True}
    diag_warn = {"message": "slow storage\n", "severity": "warning", "urn": urn}
    policy = {
        "message": "no public DB",
        "policyName": "no-public-db",
        "policyPackName": "commerce-db",
        "enforcementLevel": "advisory",
        "resourceUrn": urn,
    }
    summary = {"durationSeconds": 42, "resourceChanges": {"create": 3, "same": 10}}
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("preludeEvent", {"config": {}}),
        ("resourcePreEvent", {"metadata": meta}),
        ("diagnosticEvent", diag_info),
        ("diagnosticEvent", diag_warn),
        ("resOutputsEvent", {"metadata": meta}),
        ("policyEvent", policy),
        ("summaryEvent", summary),
    ]
    raw = [{"sequence": i, "timestamp": i, kind: body} for i, (kind, body) in enumerate(bodies, 1)]
    return [EngineEvent.from_json(r) for r in raw]


def _summary(kind: str, changes: dict[str, int], result: str = "succeeded") -> auto.UpdateSummary:
    return auto.UpdateSummary(
        kind=kind, start_time=datetime(2026, 1, 1), message="", environment={}, config={},
        result=result, end_time=datetime(2026, 1, 1), version=7,
        resource_changes=changes,  # type: ignore[arg-type]  # the CLI's JSON has string keys
    )  # fmt: skip


class FakeStack:
    """Stands in for ``pulumi.automation.Stack`` at our boundary; records every call."""

    def __init__(self, *, fail_with: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_with = fail_with

    def _run(self, op: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((op, kwargs))
        if self.fail_with is not None:
            raise self.fail_with
        kwargs["on_output"]("Updating (staging):\n")
        for event in _engine_events():
            kwargs["on_event"](event)

    def preview(self, **kwargs: Any) -> Any:
        self._run("preview", kwargs)
        return auto.PreviewResult("out", "", change_summary={auto.OpType.CREATE: 3, auto.OpType.SAME: 10})

    def up(self, **kwargs: Any) -> Any:
        self._run("up", kwargs)
        outputs = {
            "writerEndpoint": auto.OutputValue("pg.proxy.example", secret=False),
            "redisAuthToken": auto.OutputValue(SECRET, secret=True),
        }
        return auto.UpResult("out", "", _summary("update", {"create": 3, "same": 10}), outputs)

    def refresh(self, **kwargs: Any) -> Any:
        self._run("refresh", kwargs)
        return auto.RefreshResult("out", "", _summary("refresh", {"update": 1, "same": 12}))

    def destroy(self, **kwargs: Any) -> Any:
        self._run("destroy", kwargs)
        return auto.DestroyResult("out", "", _summary("destroy", {"delete": 13}))

    def cancel(self) -> None:
        self.calls.append(("cancel", {}))

    def outputs(self) -> dict[str, Any]:
        self.calls.append(("outputs", {}))
        return {
            "primaryRegion": auto.OutputValue("us-east-1", False),
            "token": auto.OutputValue(SECRET, True),
        }


class RecordingOpener:
    """A ``StackOpener`` handing out one FakeStack and remembering how it was asked."""

    def __init__(self, stack: FakeStack | None = None) -> None:
        self.stack = stack or FakeStack()
        self.opened: list[tuple[cdb_auto.StackSettings, Any, bool]] = []

    def __call__(self, settings: cdb_auto.StackSettings, program: Any, *, create: bool) -> FakeStack:
        self.opened.append((settings, program, create))
        return self.stack


class Clock:
    """Deterministic clock: each call advances by ``step`` seconds."""

    def __init__(self, step: float = 2.5) -> None:
        self.now, self.step = 100.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _program() -> None:  # never run by the fake
    raise AssertionError("the fake stack must not run the program")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: commerce-db\nruntime: python\n")
    (tmp_path / "Pulumi.staging.yaml").write_text(
        "config:\n"
        "  aws:region: us-east-1\n"
        "  commerce-db:primaryRegion: us-east-1\n"
        "  commerce-db:replicaRegions:\n"
        "    - us-west-2\n"
        "  commerce-db:backup:\n"
        "    retentionDays: 7\n"
        "  commerce-db:alertWebhook:\n"
        "    secure: v1:abcdef==\n"
    )
    (tmp_path / "Pulumi.prod.yaml").write_text("config:\n  commerce-db:primaryRegion: us-east-1\n")
    return tmp_path


@pytest.fixture
def settings() -> cdb_auto.StackSettings:
    return cdb_auto.StackSettings(
        stack="staging",
        config={"aws:region": "us-east-1", "commerce-db:replicaRegions": ["us-west-2"]},
        secrets={"commerce-db:alertWebhook": SECRET},
    )


def _run_kwargs(**extra: Any) -> dict[str, Any]:
    return {"program": _program, "validate": None, "clock": Clock(), **extra}


# --------------------------------------------------------------------------- settings


def test_settings_from_stack_file_qualify_keys_and_apply_overrides(project_dir: Path) -> None:
    s = load_stack_settings(
        "staging", project_dir=project_dir, overrides={"backup": {"retentionDays": 14}},
        secrets={"alertWebhook": SECRET},
    )  # fmt: skip
    assert s.config["aws:region"] == "us-east-1"
    assert s.config["commerce-db:replicaRegions"] == ["us-west-2"]
    assert s.config["commerce-db:backup"] == {"retentionDays": 14}
    assert s.secrets == {"commerce-db:alertWebhook": SECRET}
    cmap = s.config_map()
    assert cmap["commerce-db:backup"] == ('{"retentionDays": 14}', False)
    assert cmap["commerce-db:replicaRegions"] == ('["us-west-2"]', False)
    assert cmap["commerce-db:alertWebhook"] == (SECRET, True)


def test_encrypted_value_without_secret_is_named(project_dir: Path) -> None:
    with pytest.raises(cdb_auto.SettingsError) as err:
        load_stack_settings("staging", project_dir=project_dir)
    assert err.value.key == "commerce-db:alertWebhook"
    assert "encrypted" in str(err.value) and "--secret-env" in str(err.value)


def test_unknown_stack_lists_known_ones(project_dir: Path) -> None:
    with pytest.raises(cdb_auto.SettingsError, match=r"unknown stack 'qa'.*prod, staging"):
        load_stack_settings("qa", project_dir=project_dir)


def test_secrets_never_in_repr_or_describe(settings: cdb_auto.StackSettings) -> None:
    assert SECRET not in repr(settings)
    assert SECRET not in json.dumps(settings.describe())
    assert settings.describe()["secrets"] == {"commerce-db:alertWebhook": "[secret]"}


def test_settings_are_immutable_and_reject_bad_input(settings: cdb_auto.StackSettings) -> None:
    with pytest.raises(TypeError):
        settings.config["aws:region"] = "eu-west-1"  # type: ignore[index]
    with pytest.raises(cdb_auto.SettingsError, match="stack name"):
        cdb_auto.StackSettings(stack="prod; rm -rf /")
    with pytest.raises(cdb_auto.SettingsError, match="both as plain and as secret"):
        cdb_auto.StackSettings(stack="s", config={"a:b": 1}, secrets={"a:b": "x"})
    with pytest.raises(cdb_auto.SettingsError, match="non-empty string"):
        settings.with_overrides(secrets={"x": ""})
    # a secret override turns a plain key secret (and vice versa), never both
    moved = settings.with_overrides(secrets={"aws:region": "eu-west-1"})
    assert "aws:region" not in moved.config and moved.secrets["aws:region"] == "eu-west-1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a=1", ("a", 1)), ("a=true", ("a", True)), ("a=us-east-1", ("a", "us-east-1")),
     ('b={"x": [1]}', ("b", {"x": [1]})), ("a=", ("a", ""))],
)  # fmt: skip
def test_parse_assignment(text: str, expected: tuple[str, Any]) -> None:
    assert parse_assignment(text) == expected


def test_parse_assignment_rejects_missing_equals() -> None:
    with pytest.raises(cdb_auto.SettingsError, match="KEY=VALUE"):
        parse_assignment("primaryRegion")


# --------------------------------------------------------------------------- operations


def test_preview_streams_typed_events_and_returns_counts(settings: cdb_auto.StackSettings) -> None:
    opener = RecordingOpener()
    seen: list[cdb_auto.ProgressEvent] = []
    result = cdb_auto.preview(settings, on_event=seen.append, opener=opener, **_run_kwargs())

    assert [(s.stack, c) for s, _p, c in opener.opened] == [("staging", True)]
    assert opener.opened[0][1] is _program
    op, kwargs = opener.stack.calls[0]
    assert op == "preview" and kwargs["diff"] is False and "message" not in kwargs
    kinds = [type(e).__name__ for e in seen]
    assert kinds == ["OutputLine", "ResourceStep", "Diagnostic", "ResourceStep", "PolicyViolation", "Summary"]
    pre, done = seen[1], seen[3]
    assert isinstance(pre, cdb_auto.ResourceStep) and isinstance(done, cdb_auto.ResourceStep)
    assert (pre.phase, pre.op, pre.type, pre.name) == (
        "pre",
        "create",
        "aws:rds/instance:Instance",
        "pg-primary",
    )
    assert done.phase == "done"
    assert (
        isinstance(seen[2], cdb_auto.Diagnostic) and seen[2].severity == "warning"
    )  # ephemeral info dropped
    assert isinstance(seen[-1], cdb_auto.Summary) and seen[-1].changes.create == 3
    assert result.operation == "preview" and result.succeeded
    assert (result.changes.create, result.changes.same, result.changes.changed) == (3, 10, 3)
    assert result.duration_seconds == pytest.approx(2.5)
    assert result.outputs == {} and result.version is None


def test_up_masks_secret_outputs_everywhere(settings: cdb_auto.StackSettings) -> None:
    opener = RecordingOpener()
    result = cdb_auto.up(settings, opener=opener, message="release 42", **_run_kwargs())

    _op, kwargs = opener.stack.calls[0]
    assert kwargs["message"] == "release 42" and kwargs["show_secrets"] is False
    assert "expect_no_changes" not in kwargs
    assert result.outputs["writerEndpoint"] == cdb_auto.StackOutput("pg.proxy.example", False)
    assert result.outputs["redisAuthToken"] == cdb_auto.StackOutput(cdb_auto.SECRET_MASK, True)
    dumped = json.dumps(result.to_dict())
    assert SECRET not in dumped and SECRET not in repr(result)
    assert result.version == 7 and result.message == "release 42"
    assert result.to_dict()["changes"] == {"create": 3, "update": 0, "delete": 0, "replace": 0, "same": 10}


def test_up_passes_plan_refresh_and_policy_packs(settings: cdb_auto.StackSettings, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    opener = RecordingOpener()
    cdb_auto.up(
        settings, opener=opener, plan_file=plan, refresh=True, policy_packs=["policy"], **_run_kwargs()
    )
    _op, kwargs = opener.stack.calls[0]
    # Relative paths are resolved against the caller's directory: the SDK runs the CLI elsewhere.
    assert kwargs["plan"] == str(plan) and kwargs["refresh"] is True
    assert kwargs["policy_packs"] == [str(Path("policy").resolve())]
    assert "expect_no_changes" not in kwargs  # up applies before it checks: never a drift gate
    with pytest.raises(TypeError, match="expect_no_changes"):
        cdb_auto.up(settings, opener=opener, expect_no_changes=True, **_run_kwargs())  # type: ignore[call-arg]


def test_preview_saves_an_update_plan(settings: cdb_auto.StackSettings, tmp_path: Path) -> None:
    opener = RecordingOpener()
    cdb_auto.preview(settings, opener=opener, plan_file=tmp_path / "p.json", refresh=True, **_run_kwargs())
    ((op, kwargs),) = opener.stack.calls
    assert op == "preview" and kwargs["plan"] == str(tmp_path / "p.json") and kwargs["refresh"] is True


def test_up_with_a_missing_plan_file_runs_nothing(settings: cdb_auto.StackSettings, tmp_path: Path) -> None:
    opener = RecordingOpener()
    with pytest.raises(cdb_auto.SettingsError, match="does not exist"):
        cdb_auto.up(settings, opener=opener, plan_file=tmp_path / "nope.json", **_run_kwargs())
    assert opener.opened == []


class DriftingStack(FakeStack):
    """``preview --expect-no-changes`` failing after a summary with changes, as the CLI does."""

    def __init__(self, changes: dict[str, int]) -> None:
        super().__init__()
        self.changes = changes

    def preview(self, **kwargs: Any) -> Any:
        self.calls.append(("preview", kwargs))
        raw = {
            "sequence": 1,
            "timestamp": 1,
            "summaryEvent": {"durationSeconds": 3, "resourceChanges": self.changes},
        }
        kwargs["on_event"](EngineEvent.from_json(raw))
        raise auto_errors.CommandError(
            CommandResult(stdout="", stderr="error: no changes were expected", code=255)
        )

    def up(self, **kwargs: Any) -> Any:  # a drift check must never get here
        raise AssertionError("drift_check called up")


def test_drift_check_is_a_refreshing_preview_that_expects_no_changes(
    settings: cdb_auto.StackSettings,
) -> None:
    opener = RecordingOpener()
    result = cdb_auto.drift_check(settings, opener=opener, **_run_kwargs())
    ((op, kwargs),) = opener.stack.calls
    assert op == "preview" and kwargs["refresh"] is True and kwargs["expect_no_changes"] is True
    assert opener.opened[0][2] is False  # never creates a stack
    assert result.succeeded


def test_drift_check_reports_drift_with_counts_and_never_writes(settings: cdb_auto.StackSettings) -> None:
    stack = DriftingStack({"update": 2, "same": 11})
    opener = RecordingOpener(stack)
    with pytest.raises(cdb_auto.DriftDetectedError) as info:
        cdb_auto.drift_check(settings, opener=opener, **_run_kwargs())
    assert info.value.changes == {"create": 0, "update": 2, "delete": 0, "replace": 0}
    assert [c[0] for c in stack.calls] == ["preview"]
    other = DriftingStack({"same": 13})  # failed for another reason: not called drift
    with pytest.raises(cdb_auto.OperationFailedError) as failed:
        cdb_auto.drift_check(settings, opener=RecordingOpener(other), **_run_kwargs())
    assert not isinstance(failed.value, cdb_auto.DriftDetectedError)


def _prod(**config: Any) -> cdb_auto.StackSettings:
    return cdb_auto.StackSettings(stack="prod", config={"aws:region": "us-east-1", **config})


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
    )


def _committed_prod(tmp_path: Path, **extra: Any) -> Path:
    """A git checkout whose committed Pulumi.prod.yaml declares environment prod (+ ``extra``)."""
    config = {"aws:region": "us-east-1", "commerce-db:environment": "prod", **extra}
    (tmp_path / "Pulumi.prod.yaml").write_text(json.dumps({"config": config}))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "Pulumi.prod.yaml")
    _git(tmp_path, "commit", "-q", "-m", "prod")
    return tmp_path


def test_protected_stack_up_needs_a_plan_and_refuses_overrides(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    opener = RecordingOpener()
    project = _committed_prod(tmp_path, **{"commerce-db:pagerToken": {"secure": "v1:abc"}})
    prod = cdb_auto.load_stack_settings("prod", project_dir=project, secrets={"pagerToken": "s3cr3t-value"})
    assert prod.protected and not prod.overridden
    assert not cdb_auto.StackSettings(stack="staging").protected
    with pytest.raises(cdb_auto.ProtectedStackError, match="reviewed update plan"):
        cdb_auto.up(prod, opener=opener, **_run_kwargs())
    overridden = prod.with_overrides({"postgres": {"instanceClass": "db.r7g.large"}})
    with pytest.raises(cdb_auto.ProtectedStackError, match="commerce-db:postgres"):
        cdb_auto.up(overridden, opener=opener, plan_file=plan, **_run_kwargs())
    # A secret for a key the file keeps in plain text is an override too (it replaces the value).
    secret_override = prod.with_overrides(secrets={"environment": "prod"})
    with pytest.raises(cdb_auto.ProtectedStackError, match="commerce-db:environment"):
        cdb_auto.up(secret_override, opener=opener, plan_file=plan, **_run_kwargs())
    # Settings built by hand are compared with the committed file as well.
    hand_built = dataclasses.replace(prod, config={**prod.config, "commerce-db:tags": {"team": "x"}})
    with pytest.raises(cdb_auto.ProtectedStackError, match="commerce-db:tags"):
        cdb_auto.up(hand_built, opener=opener, plan_file=plan, **_run_kwargs())
    assert opener.opened == []
    assert cdb_auto.up(prod, opener=opener, plan_file=plan, **_run_kwargs()).succeeded
    # "Committed" means committed in git: an edited working-tree file is refused as such.
    (project / "Pulumi.prod.yaml").write_text(
        json.dumps(
            {"config": {"commerce-db:environment": "prod", "commerce-db:pagerToken": {"secure": "v1:abc"}}}
        )
    )
    edited = cdb_auto.load_stack_settings("prod", project_dir=project, secrets={"pagerToken": "s3cr3t-value"})
    with pytest.raises(cdb_auto.ProtectedStackError, match="uncommitted edits"):
        cdb_auto.up(edited, opener=opener, plan_file=plan, **_run_kwargs())
    # A stack named otherwise whose environment is prod is protected too.
    assert cdb_auto.StackSettings(stack="prod-eu", config={"commerce-db:environment": "prod"}).protected


def test_protected_up_outside_a_git_checkout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.prod.yaml").write_text(json.dumps({"config": {"commerce-db:environment": "prod"}}))
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    prod = cdb_auto.load_stack_settings("prod", project_dir=tmp_path)
    with pytest.raises(cdb_auto.ProtectedStackError, match="not committed in a git checkout"):
        cdb_auto.up(prod, opener=RecordingOpener(), plan_file=plan, **_run_kwargs())


def test_hand_built_settings_follow_the_stack_files_environment(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.prod-eu.yaml").write_text(json.dumps({"config": {"commerce-db:environment": "prod"}}))
    relabelled = cdb_auto.StackSettings(
        stack="prod-eu", config={"commerce-db:environment": "staging"}, project_dir=tmp_path
    )
    assert not relabelled.protected  # by its own config alone...
    with pytest.raises(cdb_auto.ProtectedStackError, match="destroy is refused"):
        cdb_auto.destroy(relabelled, confirm_stack="prod-eu", opener=RecordingOpener(), **_run_kwargs())
    with pytest.raises(cdb_auto.ProtectedStackError, match="reviewed update plan"):
        cdb_auto.up(relabelled, opener=RecordingOpener(), **_run_kwargs())


def test_scrubbed_failures_do_not_keep_the_secret_in_their_context() -> None:
    secret = "hunter2-secret-value"

    class Leaky(FakeStack):
        def preview(self, **kwargs: Any) -> Any:
            raise auto_errors.CommandError(CommandResult(stdout="", stderr=f"bad token {secret}", code=1))

    settings = cdb_auto.StackSettings(stack="staging", secrets={"commerce-db:token": secret})
    with pytest.raises(cdb_auto.OperationFailedError) as info:
        cdb_auto.preview(settings, opener=RecordingOpener(Leaky()), **_run_kwargs())
    chain: list[BaseException] = []
    exc: BaseException | None = info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert chain and all(secret not in str(e) and secret not in repr(e) for e in chain)


def test_an_override_cannot_unprotect_a_stack(tmp_path: Path) -> None:
    opener = RecordingOpener()
    project = _committed_prod(tmp_path)
    for name, file_env in (("prod", "prod"), ("prod-eu", "prod")):
        (tmp_path / f"Pulumi.{name}.yaml").write_text(
            json.dumps({"config": {"commerce-db:environment": file_env}})
        )
        relabelled = cdb_auto.load_stack_settings(
            name, project_dir=project, overrides={"environment": "staging"}
        )
        assert relabelled.environment == "staging" and relabelled.protected
        with pytest.raises(cdb_auto.ProtectedStackError, match="destroy is refused"):
            cdb_auto.destroy(relabelled, confirm_stack=name, opener=opener, **_run_kwargs())
    assert opener.opened == []


def test_protected_stack_destroy_is_refused() -> None:
    opener = RecordingOpener()
    with pytest.raises(cdb_auto.ProtectedStackError, match="destroy is refused"):
        cdb_auto.destroy(_prod(), confirm_stack="prod", opener=opener, **_run_kwargs())
    assert opener.opened == []


class LockedStack(FakeStack):
    def __init__(self, locked_times: int) -> None:
        super().__init__()
        self.locked_times = locked_times

    def preview(self, **kwargs: Any) -> Any:
        if self.locked_times:
            self.locked_times -= 1
            self.calls.append(("preview-locked", kwargs))
            raise auto_errors.ConcurrentUpdateError(
                CommandResult(stdout="", stderr="[409] Conflict", code=255)
            )
        return super().preview(**kwargs)


def test_locked_stack_raises_or_is_waited_for(settings: cdb_auto.StackSettings) -> None:
    with pytest.raises(cdb_auto.ConcurrentUpdateError, match="locked by another update"):
        cdb_auto.preview(settings, opener=RecordingOpener(LockedStack(1)), **_run_kwargs())
    slept: list[float] = []
    stack = LockedStack(2)
    result = cdb_auto.preview(
        settings,
        opener=RecordingOpener(stack),
        lock_wait_seconds=120,
        sleep=slept.append,
        **_run_kwargs(clock=Clock(step=1.0)),
    )
    assert result.succeeded and len(slept) == 2 and [c[0] for c in stack.calls][-1] == "preview"
    with pytest.raises(cdb_auto.ConcurrentUpdateError):  # gives up at the deadline
        cdb_auto.preview(
            settings,
            opener=RecordingOpener(LockedStack(100)),
            lock_wait_seconds=40,
            sleep=lambda s: None,
            **_run_kwargs(clock=Clock(step=10.0)),
        )


def test_cancel_calls_the_sdk_cancel(settings: cdb_auto.StackSettings) -> None:
    opener = RecordingOpener()
    cdb_auto.cancel(settings, opener=opener)
    assert opener.stack.calls == [("cancel", {})] and opener.opened[0][2] is False


def test_refresh_selects_existing_stack(settings: cdb_auto.StackSettings) -> None:
    opener = RecordingOpener()
    result = cdb_auto.refresh(settings, opener=opener, **_run_kwargs())
    assert opener.opened[0][2] is False  # never creates a stack just to refresh it
    assert result.changes.update == 1 and result.version == 7


def test_destroy_needs_the_stack_name_repeated(settings: cdb_auto.StackSettings) -> None:
    opener = RecordingOpener()
    with pytest.raises(cdb_auto.SettingsError, match="confirm_stack='staging'"):
        cdb_auto.destroy(settings, confirm_stack="prod", opener=opener, **_run_kwargs())
    assert opener.opened == [] and opener.stack.calls == []
    result = cdb_auto.destroy(settings, confirm_stack="staging", opener=opener, **_run_kwargs())
    assert result.changes.delete == 13 and opener.opened[0][2] is False


def test_outputs_masks_secrets_and_runs_no_program(settings: cdb_auto.StackSettings) -> None:
    opener = RecordingOpener()
    outs = cdb_auto.outputs(settings, opener=opener)
    assert outs["primaryRegion"].value == "us-east-1"
    assert outs["token"] == cdb_auto.StackOutput("[secret]", True)
    assert opener.opened[0][1] is boundary._noop_program and opener.opened[0][2] is False


def test_failed_validation_touches_nothing(settings: cdb_auto.StackSettings) -> None:
    opener = RecordingOpener()

    def reject(_s: cdb_auto.StackSettings) -> None:
        raise cdb_auto.SettingsError("invalid config commerce-db:backup.retentionDays = 40", key="backup")

    with pytest.raises(cdb_auto.SettingsError, match="retentionDays"):
        cdb_auto.up(settings, opener=opener, program=_program, validate=reject)
    assert opener.opened == []


def test_a_misspelt_option_is_refused_before_anything_runs(settings: cdb_auto.StackSettings) -> None:
    opener = RecordingOpener()
    with pytest.raises(TypeError, match="on_events"):
        cdb_auto.preview(settings, opener=opener, on_events=print, **_run_kwargs())  # type: ignore[call-arg]
    assert opener.opened == []


def test_only_destroy_skips_the_default_config_validation(
    settings: cdb_auto.StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stack whose config no longer loads must still be destroyable; the other operations validate.
    import commerce_db.automation.operations as ops

    checked: list[str] = []
    monkeypatch.setattr(ops, "check_stack_config", lambda s: checked.append(s.stack))
    run_opts: dict[str, Any] = {"program": _program, "clock": Clock()}
    cdb_auto.destroy(settings, confirm_stack="staging", opener=RecordingOpener(), **run_opts)
    assert checked == []
    cdb_auto.refresh(settings, opener=RecordingOpener(), **run_opts)
    assert checked == ["staging"]


def test_a_broken_progress_callback_does_not_abort_the_update(
    settings: cdb_auto.StackSettings, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(_event: cdb_auto.ProgressEvent) -> None:
        raise RuntimeError("UI crashed")

    with caplog.at_level(logging.ERROR):
        result = cdb_auto.up(settings, on_event=explode, opener=RecordingOpener(), **_run_kwargs())
    assert result.succeeded
    assert "progress callback failed" in caplog.text


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("error: [409] Conflict: Another update is currently in progress.", cdb_auto.ConcurrentUpdateError),
        ("error: no stack named 'staging' found", cdb_auto.StackNotFoundError),
        ("error: update failed\nRDS: InvalidParameterCombination", cdb_auto.OperationFailedError),
    ],
)
def test_pulumi_errors_become_typed_errors(
    settings: cdb_auto.StackSettings, stderr: str, expected: type[Exception]
) -> None:
    failure = auto_errors.create_command_error(CommandResult("", stderr, 255))
    opener = RecordingOpener(FakeStack(fail_with=failure))
    with pytest.raises(expected) as err:
        cdb_auto.up(settings, opener=opener, **_run_kwargs())
    if expected is cdb_auto.OperationFailedError:
        assert "InvalidParameterCombination" in str(err.value)
        assert err.value.operation == "up" and err.value.stack == "staging"  # type: ignore[attr-defined]


def test_resource_changes_count_replacements_once() -> None:
    changes = cdb_auto.ResourceChanges.from_op_map(
        {auto.OpType.CREATE_REPLACEMENT: 2, auto.OpType.DELETE_REPLACED: 2, "replace": 0, "same": 4}
    )
    assert (changes.replace, changes.changed, changes.same) == (2, 2, 4)
    assert "+-2 replace" in str(changes)


def test_format_event_lines() -> None:
    step = cdb_auto.ResourceStep("failed", "update", "urn:a::b::t::pg", "aws:rds/instance:Instance")
    assert cdb_auto.format_event(step) == "ERR update   aws:rds/instance:Instance pg"
    assert cdb_auto.format_event(cdb_auto.ResourceStep("pre", "same", "u::x", "t")) is None
    assert cdb_auto.format_event(cdb_auto.OutputLine("hello\n")) == "hello"


# --------------------------------------------------------------------------- CLI boundary


def test_missing_cli_has_the_install_hint() -> None:
    with pytest.raises(cdb_auto.PulumiCliNotFoundError) as err:
        cdb_auto.require_pulumi_cli(which=lambda _name: None)
    assert str(err.value) == "pulumi CLI not found on PATH; install from https://www.pulumi.com/docs/install/"
    assert cdb_auto.require_pulumi_cli(which=lambda name: f"/opt/bin/{name}") == "/opt/bin/pulumi"


@pytest.fixture
def no_pulumi_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("PATH", str(tmp_path))
    yield


def test_open_stack_without_cli_fails_clearly(
    settings: cdb_auto.StackSettings, no_pulumi_on_path: None
) -> None:
    with pytest.raises(cdb_auto.PulumiCliNotFoundError, match=r"install from https://www\.pulumi\.com"):
        cdb_auto.open_stack(settings, _program)


def test_up_without_cli_fails_before_running_anything(
    settings: cdb_auto.StackSettings, no_pulumi_on_path: None
) -> None:
    with pytest.raises(cdb_auto.PulumiCliNotFoundError):
        cdb_auto.up(settings, program=_program, validate=None)


# --------------------------------------------------------------------------- commerce-db stack CLI


def test_cli_without_pulumi_exits_1_with_install_hint(
    no_pulumi_on_path: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from commerce_db.cli import main

    assert main(["stack", "preview", "staging", "--quiet"]) == 1
    assert (
        "pulumi CLI not found on PATH; install from https://www.pulumi.com/docs/install/"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stack", "up", "prod", "--config", "backup.retentionDays=40"], "backup.retentionDays = 40"),
        (["stack", "up", "prod", "--config", "=1"], "KEY=VALUE"),
        (["stack", "preview", "qa"], "unknown stack 'qa'"),
        (["stack", "destroy", "staging"], "--yes staging"),
        (["stack", "destroy", "staging", "--yes", "prod"], "--yes staging"),
        (["stack", "up", "staging", "--secret-env", "alertWebhook=CDB_TEST_UNSET_VAR"], "CDB_TEST_UNSET_VAR"),
    ],
)
def test_cli_bad_input_exits_2_before_touching_pulumi(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from commerce_db.cli import main

    def must_not_open(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the stack must not be opened on bad input")

    monkeypatch.setattr("commerce_db.automation.operations.open_stack", must_not_open)
    monkeypatch.delenv("CDB_TEST_UNSET_VAR", raising=False)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_json_result_via_injected_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from commerce_db.cli import main

    opener = RecordingOpener()
    monkeypatch.setattr("commerce_db.automation.operations.open_stack", opener)
    monkeypatch.setenv("CDB_TEST_HOOK", SECRET)
    argv = ["stack", "up", "staging", "--json", "--quiet", "--config", "postgres.inRegionReplicas=2"]
    assert main([*argv, "--secret-env", "aws:secretKey=CDB_TEST_HOOK"]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)
    assert payload["operation"] == "up" and payload["succeeded"] is True
    assert payload["outputs"]["redisAuthToken"] == {"value": "[secret]", "secret": True}
    assert SECRET not in out
    settings = opener.opened[0][0]
    assert settings.config["commerce-db:postgres"]["inRegionReplicas"] == 2
    assert settings.config["commerce-db:postgres"]["instanceClass"] == "db.t4g.medium"  # rest kept
    assert settings.secrets == {"aws:secretKey": SECRET}


def test_cli_preview_passes_diff_and_policy_packs(monkeypatch: pytest.MonkeyPatch) -> None:
    from commerce_db.cli import main

    opener = RecordingOpener()
    monkeypatch.setattr("commerce_db.automation.operations.open_stack", opener)
    assert main(["stack", "preview", "staging", "--quiet", "--diff", "--policy-pack", "policy"]) == 0
    _op, kwargs = opener.stack.calls[0]
    assert kwargs["diff"] is True and kwargs["policy_packs"] == [str(Path("policy").resolve())]


def test_project_defaults_apply_unless_the_stack_sets_the_key(project_dir: Path) -> None:
    (project_dir / "Pulumi.yaml").write_text(
        "name: commerce-db\nruntime: python\nconfig:\n"
        "  environment:\n    type: string\n    default: staging\n"
        "  aws:region:\n    value: eu-west-1\n"
        "  drRegion:\n    type: string\n"
    )
    (project_dir / "Pulumi.qa.yaml").write_text(
        "config:\n  aws:region: us-east-2\n  commerce-db:tags:\n    value: {team: x}\n"
    )
    s = load_stack_settings("qa", project_dir=project_dir)
    assert s.config == {
        "commerce-db:environment": "staging",  # project default
        "aws:region": "us-east-2",  # stack file wins
        "commerce-db:tags": {"team": "x"},  # {value: ...} unwrapped
    }


def test_failed_operation_detail_never_carries_our_secrets(settings: cdb_auto.StackSettings) -> None:
    stderr = f"error: provider rejected webhook {SECRET}\nline2\n"
    failure = auto_errors.create_command_error(CommandResult("", stderr, 255))
    with pytest.raises(cdb_auto.OperationFailedError) as err:
        cdb_auto.up(settings, opener=RecordingOpener(FakeStack(fail_with=failure)), **_run_kwargs())
    assert SECRET not in str(err.value) and "[secret]" in err.value.detail
    assert err.value.__cause__ is None  # the original (unscrubbed) exception is not chained


def test_resource_failure_event_is_reported() -> None:
    from commerce_db.automation.events import translate_engine_event

    meta = {
        "op": "update",
        "urn": "urn:pulumi:s::p::aws:rds/instance:Instance::pg",
        "type": "aws:rds/instance:Instance",
    }
    event = translate_engine_event(
        EngineEvent.from_json({"resOpFailedEvent": {"metadata": meta, "status": 1}})
    )
    assert event == cdb_auto.ResourceStep("failed", "update", meta["urn"], "aws:rds/instance:Instance")
    assert translate_engine_event(EngineEvent.from_json({"cancelEvent": {}})) is None


def test_cli_drift_exits_3_on_drift_and_0_without(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from commerce_db.cli import main

    drifting = RecordingOpener(DriftingStack({"update": 1, "same": 3}))
    monkeypatch.setattr("commerce_db.automation.operations.open_stack", drifting)
    assert main(["stack", "drift", "staging", "--quiet"]) == 3
    assert "has drifted: 1 to update" in capsys.readouterr().err
    monkeypatch.setattr("commerce_db.automation.operations.open_stack", RecordingOpener())
    assert main(["stack", "drift", "staging", "--quiet"]) == 0


def test_cli_refuses_unreviewed_or_overridden_prod_up_and_prod_destroy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from commerce_db.cli import main

    opener = RecordingOpener()
    monkeypatch.setattr("commerce_db.automation.operations.open_stack", opener)
    assert main(["stack", "up", "prod", "--quiet"]) == 2
    assert "--save-plan" in capsys.readouterr().err
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    argv = [
        "stack",
        "up",
        "prod",
        "--quiet",
        "--plan",
        str(plan),
        "--config",
        "postgres.instanceClass=db.r7g.4xlarge",
    ]
    assert main(argv) == 2
    assert "refuses per-run config overrides" in capsys.readouterr().err
    assert main(["stack", "destroy", "prod", "--yes", "prod", "--quiet"]) == 2
    assert opener.opened == []
    assert main(["stack", "up", "prod", "--quiet", "--plan", str(plan)]) == 0
    assert opener.stack.calls[0][1]["plan"] == str(plan)


@pytest.mark.parametrize(
    ("raised", "expected", "words"),
    [
        (
            auto_errors.InvalidVersionError("Minimum version 3.181.0"),
            cdb_auto.PulumiCliVersionError,
            "newer pulumi",
        ),
        (
            RuntimeError("summary event never found"),
            cdb_auto.OperationFailedError,
            "without reporting a result",
        ),
    ],
)
def test_sdk_errors_without_a_command_result_become_typed_errors(
    raised: Exception, expected: type[Exception], words: str
) -> None:
    class Failing(FakeStack):
        def refresh(self, **kwargs: Any) -> Any:
            raise raised

    opener = RecordingOpener(Failing())
    with pytest.raises(expected, match=words):
        cdb_auto.refresh(cdb_auto.StackSettings(stack="staging"), opener=opener, **_run_kwargs())
