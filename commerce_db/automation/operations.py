"""Typed Automation API operations on a named stack: preview, up, drift_check, refresh, destroy,
cancel, outputs.

Semantics, following Pulumi's documentation:

* **Drift check** = ``preview(refresh=True, expect_no_changes=True)``: it reads the cloud, compares
  with the program and never writes. (``up --expect-no-changes`` is no drift gate: ``up`` runs with
  ``--yes --skip-preview`` and applies the changes before it checks; pulumi/pulumi#18105, #10967.)
* **Reviewed updates** use update plans: ``preview(plan_file=...)`` saves what the preview would
  do, ``up(plan_file=...)`` refuses anything that plan does not contain. On a protected (prod)
  stack ``up`` requires a plan and refuses per-run config overrides.
* ``refresh=True`` on ``preview``/``up`` reads the cloud first; a stack locked by another update
  raises :class:`ConcurrentUpdateError` (or is waited for, ``lock_wait_seconds``); ``cancel`` ends
  a stale update; ``destroy`` is refused on protected stacks and needs the name repeated elsewhere.

Each operation: resolves :class:`StackSettings` (from the repo's stack file when given a
name), validates the config offline (same ``load_stack_config`` the program uses, so a bad
value fails before the backend is touched), opens the stack through the CLI boundary with
the program inline, streams :mod:`~commerce_db.automation.events` records to ``on_event``,
and returns an :class:`OperationResult`. ``opener`` is the seam tests use to inject a fake
stack handle; by default it is :func:`~commerce_db.automation.boundary.open_stack`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypedDict, Unpack

from commerce_db.automation.boundary import (
    Program,
    StackHandle,
    StackOpener,
    _noop_program,
    open_stack,
    translate_pulumi_errors,
)
from commerce_db.automation.errors import (
    ConcurrentUpdateError,
    DriftDetectedError,
    OperationFailedError,
    ProtectedStackError,
    SettingsError,
)
from commerce_db.automation.events import (
    Diagnostic,
    OutputLine,
    PolicyViolation,
    ProgressCallback,
    ProgressEvent,
    Summary,
    safe_callback,
    translate_engine_event,
)
from commerce_db.automation.results import Operation, OperationResult, StackOutput, build_result, mask_outputs
from commerce_db.automation.settings import (
    PROTECTED_ENVIRONMENTS,
    StackSettings,
    committed_environment,
    differences_from_committed,
    load_stack_settings,
)
from commerce_db.automation.validate import check_stack_config

StackRef = StackSettings | str
"""A stack: ready settings, or a name whose ``Pulumi.<name>.yaml`` in the repo is loaded."""

Validator = Callable[[StackSettings], object]
Clock = Callable[[], float]
Sleep = Callable[[float], object]

LOCK_RETRY_SECONDS = 15.0
"""Pause between attempts while waiting for another update's lock (``lock_wait_seconds``)."""


def default_program() -> Program:
    """The project's own Pulumi program (``commerce_db_components.program.run``), imported on first use."""
    from commerce_db_components.program import run

    return run


def _scrub(text: str, settings: StackSettings) -> str:
    """Mask our secret config values in ``text`` (Pulumi masks them too; this is defence in depth)."""
    for value in settings.secrets.values():
        if len(value) >= 4:  # masking tiny values would garble unrelated text
            text = text.replace(value, "[secret]")
    return text


def _absolute(path: str | Path) -> Path:
    """``path`` resolved against the caller's directory: the SDK runs the CLI inside its own
    temporary workspace, where a relative plan or policy-pack path would point elsewhere."""
    return Path(path).expanduser().resolve()


def resolve_settings(stack: StackRef) -> StackSettings:
    """``stack`` as :class:`StackSettings` (a name loads the repo's ``Pulumi.<name>.yaml``)."""
    return stack if isinstance(stack, StackSettings) else load_stack_settings(stack)


class RunOptions(TypedDict, total=False):
    """Keyword options every operation takes (all optional)."""

    on_event: ProgressCallback | None
    """Receives each progress record (exceptions it raises are contained). Default: None."""
    program: Program | None
    """The Pulumi program. Default: None, i.e. :func:`default_program`."""
    opener: StackOpener | None
    """Opens the stack handle (tests inject fakes). Default: None, i.e. ``open_stack``."""
    validate: Validator | None
    """Offline config check before the backend is touched; None skips it.
    Default: ``check_stack_config`` (``destroy``: None)."""
    clock: Clock
    """Measures the duration. Default: ``time.monotonic``."""
    message: str | None
    """Update message recorded in the stack history. Default: None."""
    lock_wait_seconds: float
    """How long to keep retrying while another update holds the stack's lock, then raise
    :class:`ConcurrentUpdateError`. Default: 0 (raise at once)."""
    sleep: Sleep
    """Pauses between lock retries. Default: ``time.sleep``."""


def _run(
    operation: Operation,
    stack: StackRef,
    options: RunOptions,
    *,
    create: bool,
    extra: Mapping[str, Any],
) -> OperationResult:
    unknown = sorted(set(options) - RunOptions.__optional_keys__)
    if unknown:  # **options accepts any keyword at runtime; a typo must not be ignored
        raise TypeError(f"{operation}() got unexpected keyword argument(s): {', '.join(unknown)}")
    settings = resolve_settings(stack)
    validate = options.get("validate", check_stack_config)
    if validate is not None:
        validate(settings)
    deliver = safe_callback(options.get("on_event"))

    def on_output(line: str) -> None:
        deliver(OutputLine(_scrub(line, settings)))

    def on_error(line: str) -> None:
        deliver(OutputLine(_scrub(line, settings), stream="stderr"))

    def on_engine_event(raw: Any) -> None:
        event = translate_engine_event(raw)
        if isinstance(event, Diagnostic | PolicyViolation):
            event = dataclasses.replace(event, message=_scrub(event.message, settings))
        if event is not None:
            deliver(event)

    message = options.get("message")
    kwargs: dict[str, Any] = {
        "on_output": on_output,
        "on_error": on_error,
        "on_event": on_engine_event,
        **extra,
    }
    if message is not None:
        kwargs["message"] = message
    opener = options.get("opener") or open_stack
    handle: StackHandle = opener(settings, options.get("program") or default_program(), create=create)
    clock = options.get("clock", time.monotonic)
    sleep = options.get("sleep", time.sleep)
    started = clock()
    deadline = started + max(0.0, float(options.get("lock_wait_seconds", 0.0)))
    try:
        while True:
            try:
                with translate_pulumi_errors(operation, settings.stack):
                    raw = getattr(handle, operation)(**kwargs)
                break
            except ConcurrentUpdateError:
                # Another update holds the lock: nothing of ours ran; wait for it or give up.
                if clock() + LOCK_RETRY_SECONDS > deadline:
                    raise
                deliver(OutputLine(f"stack {settings.stack} is locked by another update; retrying"))
                sleep(LOCK_RETRY_SECONDS)
    except OperationFailedError as exc:
        scrubbed = _scrub(exc.detail, settings)
        if scrubbed == exc.detail:
            raise
        failure = OperationFailedError(exc.operation, exc.stack, scrubbed)
    else:
        return build_result(
            operation, settings.stack, raw, duration_seconds=clock() - started, message=message
        )
    # Raised outside the handler on purpose: the original error (and the SDK's, chained to it)
    # hold the unmasked text; raising here keeps them out of ``__context__``.
    raise failure


def preview(
    stack: StackRef,
    *,
    diff: bool = False,
    policy_packs: list[str] | None = None,
    refresh: bool = False,
    expect_no_changes: bool = False,
    plan_file: str | Path | None = None,
    **options: Unpack[RunOptions],
) -> OperationResult:
    """Dry-run ``stack``: the changes ``up`` would make; never writes resources. Creates the stack
    in the backend if missing.

    ``diff`` (default False) asks Pulumi for detailed property diffs in the output lines;
    ``policy_packs`` (default none) are paths passed as ``--policy-pack``; ``refresh`` (default
    False) reads the cloud first, so drift shows; ``expect_no_changes`` (default False) fails if
    anything would change; ``plan_file`` (default None) saves an update plan there for
    ``up(plan_file=...)``; ``options``: see :class:`RunOptions`.
    """
    extra: dict[str, Any] = {"diff": diff}
    if policy_packs:
        extra["policy_packs"] = [str(_absolute(p)) for p in policy_packs]
    if refresh:
        extra["refresh"] = True
    if expect_no_changes:
        extra["expect_no_changes"] = True
    if plan_file is not None:
        extra["plan"] = str(_absolute(plan_file))
    return _run("preview", stack, options, create=True, extra=extra)


def drift_check(stack: StackRef, **options: Unpack[RunOptions]) -> OperationResult:
    """Whether the cloud, the state and the program agree: ``preview(refresh=True,
    expect_no_changes=True)``. Never writes (no ``up``, and the refresh is a preview's).

    Returns the result when nothing would change; raises :class:`DriftDetectedError` (with the
    counts) when something would, :class:`OperationFailedError` for other failures.
    ``options``: see :class:`RunOptions`.
    """
    settings = resolve_settings(stack)
    seen: list[ProgressEvent] = []
    user = safe_callback(options.get("on_event"))

    def record(event: ProgressEvent) -> None:
        seen.append(event)
        user(event)

    try:
        return _run(
            "preview",
            settings,
            {**options, "on_event": record},
            create=False,
            extra={"diff": True, "refresh": True, "expect_no_changes": True},
        )
    except OperationFailedError as exc:
        summaries = [e for e in seen if isinstance(e, Summary)]
        if summaries:
            changes = summaries[-1].changes
            counts = {
                "create": changes.create,
                "update": changes.update,
                "delete": changes.delete,
                "replace": changes.replace,
            }
            if any(counts.values()):
                raise DriftDetectedError(settings.stack, counts, exc.detail) from None
        raise


def up(
    stack: StackRef,
    *,
    plan_file: str | Path | None = None,
    refresh: bool = False,
    policy_packs: list[str] | None = None,
    **options: Unpack[RunOptions],
) -> OperationResult:
    """Create or update ``stack``'s resources; the result carries the stack outputs, secrets masked.

    ``plan_file`` (default None) is an update plan saved by ``preview(plan_file=...)``: the update
    then refuses any change that plan does not contain (what was reviewed is what is applied).
    Required on a protected stack, which also refuses per-run config overrides
    (:class:`ProtectedStackError`; nothing runs). ``refresh`` (default False) reads the cloud
    first; ``policy_packs`` as in :func:`preview`; ``options``: see :class:`RunOptions`.
    """
    settings = resolve_settings(stack)
    validate = options.get("validate", check_stack_config)
    if validate is not None:  # an invalid value is the first thing to report
        validate(settings)
    options = {**options, "validate": None}
    if settings.protected or committed_environment(settings) in PROTECTED_ENVIRONMENTS:
        if plan_file is None:
            raise ProtectedStackError(
                f"stack {settings.stack!r} is protected: up needs a reviewed update plan; run "
                f"preview with plan_file (CLI: stack preview {settings.stack} --save-plan PATH), "
                "review it, then up with that plan_file (--plan PATH)",
                key="plan_file",
            )
        differing = sorted(set(settings.overridden) | set(differences_from_committed(settings)))
        if differing:
            raise ProtectedStackError(
                f"stack {settings.stack!r} is protected: up refuses per-run config overrides and "
                f"runs only the committed Pulumi.{settings.stack}.yaml; this config differs from it in "
                f"{', '.join(differing)}; the next up from the repository would silently revert "
                "that. Commit the change to the stack file instead (nothing was changed)",
                key=differing[0],
            )
    extra: dict[str, Any] = {"show_secrets": False}
    if plan_file is not None:
        plan_path = _absolute(plan_file)
        if not plan_path.is_file():
            raise SettingsError(
                f"update plan {plan_path} does not exist; save one with preview", key="plan_file"
            )
        extra["plan"] = str(plan_path)
    if refresh:
        extra["refresh"] = True
    if policy_packs:
        extra["policy_packs"] = [str(_absolute(p)) for p in policy_packs]
    return _run("up", settings, options, create=True, extra=extra)


def refresh(stack: StackRef, **options: Unpack[RunOptions]) -> OperationResult:
    """Reconcile ``stack``'s state with what exists in AWS (the stack must already exist).

    ``options``: see :class:`RunOptions`.
    """
    return _run("refresh", stack, options, create=False, extra={"show_secrets": False})


def destroy(stack: StackRef, *, confirm_stack: str, **options: Unpack[RunOptions]) -> OperationResult:
    """Delete every resource of ``stack``; ``confirm_stack`` must repeat the stack name.

    Refused on a protected stack (:class:`ProtectedStackError`): tearing down prod is a change to
    the repository (and its deletion protection), not a command. Elsewhere the confirmation guards
    a typo'd stack name. Config is not validated (default ``validate=None``) so a stack whose config
    no longer loads can still be destroyed. ``options``: see :class:`RunOptions`.
    """
    settings = resolve_settings(stack)
    if settings.protected or committed_environment(settings) in PROTECTED_ENVIRONMENTS:
        raise ProtectedStackError(
            f"stack {settings.stack!r} is protected (environment {settings.environment!r}): destroy is "
            "refused; nothing was changed",
            key="stack",
        )
    if confirm_stack != settings.stack:
        raise SettingsError(
            f"destroy of stack {settings.stack!r} needs confirm_stack={settings.stack!r} "
            f"(got {confirm_stack!r}); nothing was changed",
            key="confirm_stack",
        )
    return _run(
        "destroy", settings, {"validate": None, **options}, create=False, extra={"show_secrets": False}
    )


def cancel(stack: StackRef, *, opener: StackOpener | None = None) -> None:
    """Cancel the update currently running on ``stack`` (ends a stale lock after a crashed run).

    Pulumi's own warning applies: resources the cancelled update was changing may be left in a
    pending state; run :func:`refresh` afterwards.
    """
    settings = resolve_settings(stack)
    handle = (opener or open_stack)(settings, _noop_program, create=False)
    with translate_pulumi_errors("cancel", settings.stack):
        handle.cancel()


def outputs(stack: StackRef, *, opener: StackOpener | None = None) -> Mapping[str, StackOutput]:
    """Current outputs of ``stack`` (secret values masked as ``"[secret]"``); runs no program."""
    settings = resolve_settings(stack)
    handle = (opener or open_stack)(settings, _noop_program, create=False)
    with translate_pulumi_errors("stack output", settings.stack):
        raw = handle.outputs()
    return mask_outputs(raw)
