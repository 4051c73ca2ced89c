"""Typed Automation API operations on a named stack: preview, up, refresh, destroy, outputs.

Each operation: resolves :class:`StackSettings` (from the repo's stack file when given a
name), validates the config offline (same ``load_stack_config`` the program uses, so a bad
value fails before the backend is touched), opens the stack through the CLI boundary with
the program inline, streams :mod:`~commerce_db.automation.events` records to ``on_event``,
and returns an :class:`OperationResult`. ``opener`` is the seam tests use to inject a fake
stack handle; by default it is :func:`~commerce_db.automation.boundary.open_stack`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict, Unpack

from commerce_db.automation.boundary import (
    Program,
    StackHandle,
    StackOpener,
    _noop_program,
    open_stack,
    translate_pulumi_errors,
)
from commerce_db.automation.errors import OperationFailedError, SettingsError
from commerce_db.automation.events import OutputLine, ProgressCallback, safe_callback, translate_engine_event
from commerce_db.automation.results import Operation, OperationResult, StackOutput, build_result, mask_outputs
from commerce_db.automation.settings import StackSettings, load_stack_settings
from commerce_db.automation.validate import check_stack_config

StackRef = StackSettings | str
"""A stack: ready settings, or a name whose ``Pulumi.<name>.yaml`` in the repo is loaded."""

Validator = Callable[[StackSettings], object]
Clock = Callable[[], float]


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
        deliver(OutputLine(line))

    def on_engine_event(raw: Any) -> None:
        event = translate_engine_event(raw)
        if event is not None:
            deliver(event)

    message = options.get("message")
    kwargs: dict[str, Any] = {"on_output": on_output, "on_event": on_engine_event, **extra}
    if message is not None:
        kwargs["message"] = message
    opener = options.get("opener") or open_stack
    handle: StackHandle = opener(settings, options.get("program") or default_program(), create=create)
    clock = options.get("clock", time.monotonic)
    started = clock()
    try:
        with translate_pulumi_errors(operation, settings.stack):
            raw = getattr(handle, operation)(**kwargs)
    except OperationFailedError as exc:
        scrubbed = _scrub(exc.detail, settings)
        if scrubbed != exc.detail:
            raise OperationFailedError(exc.operation, exc.stack, scrubbed) from None
        raise
    return build_result(operation, settings.stack, raw, duration_seconds=clock() - started, message=message)


def preview(
    stack: StackRef,
    *,
    diff: bool = False,
    policy_packs: list[str] | None = None,
    **options: Unpack[RunOptions],
) -> OperationResult:
    """Dry-run ``stack``: the changes ``up`` would make. Creates the stack in the backend if missing.

    ``diff`` (default False) asks Pulumi for detailed property diffs in the output lines;
    ``policy_packs`` (default none) are paths passed as ``--policy-pack``; ``options``: see
    :class:`RunOptions`.
    """
    extra: dict[str, Any] = {"diff": diff}
    if policy_packs:
        extra["policy_packs"] = list(policy_packs)
    return _run("preview", stack, options, create=True, extra=extra)


def up(
    stack: StackRef,
    *,
    expect_no_changes: bool = False,
    policy_packs: list[str] | None = None,
    **options: Unpack[RunOptions],
) -> OperationResult:
    """Create or update ``stack``'s resources; the result carries the stack outputs, secrets masked.

    ``expect_no_changes`` (default False) makes Pulumi fail the update if anything would change
    (a drift gate for CI); ``policy_packs`` as in :func:`preview`; ``options``: see :class:`RunOptions`.
    """
    extra: dict[str, Any] = {"show_secrets": False}
    if expect_no_changes:
        extra["expect_no_changes"] = True
    if policy_packs:
        extra["policy_packs"] = list(policy_packs)
    return _run("up", stack, options, create=True, extra=extra)


def refresh(stack: StackRef, **options: Unpack[RunOptions]) -> OperationResult:
    """Reconcile ``stack``'s state with what exists in AWS (the stack must already exist).

    ``options``: see :class:`RunOptions`.
    """
    return _run("refresh", stack, options, create=False, extra={"show_secrets": False})


def destroy(stack: StackRef, *, confirm_stack: str, **options: Unpack[RunOptions]) -> OperationResult:
    """Delete every resource of ``stack``; ``confirm_stack`` must repeat the stack name.

    Why the confirmation: a typo'd stack name in a tool must not tear down a database tier.
    Prod resources additionally carry deletion protection, so AWS refuses until it is lifted.
    Config is not validated (default ``validate=None``) so a stack whose config no longer
    loads can still be destroyed. ``options``: see :class:`RunOptions`.
    """
    settings = resolve_settings(stack)
    if confirm_stack != settings.stack:
        raise SettingsError(
            f"destroy of stack {settings.stack!r} needs confirm_stack={settings.stack!r} "
            f"(got {confirm_stack!r}); nothing was changed",
            key="confirm_stack",
        )
    return _run(
        "destroy", settings, {"validate": None, **options}, create=False, extra={"show_secrets": False}
    )


def outputs(stack: StackRef, *, opener: StackOpener | None = None) -> Mapping[str, StackOutput]:
    """Current outputs of ``stack`` (secret values masked as ``"[secret]"``); runs no program."""
    settings = resolve_settings(stack)
    handle = (opener or open_stack)(settings, _noop_program, create=False)
    with translate_pulumi_errors("stack output", settings.stack):
        raw = handle.outputs()
    return mask_outputs(raw)
