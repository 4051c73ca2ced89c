"""Small typed progress records streamed to a caller's callback during an operation.

``pulumi.automation`` emits raw ``EngineEvent`` objects and stdout lines; tools want a
few stable shapes. :func:`translate_engine_event` maps one to the other (pure, duck-typed,
so tests feed plain stand-ins) and :func:`safe_callback` keeps a faulty progress UI from
aborting a half-finished ``up``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from commerce_db.automation.results import ResourceChanges

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputLine:
    """One line of Pulumi's human-readable output."""

    text: str
    stream: Literal["stdout", "stderr"] = "stdout"


@dataclass(frozen=True)
class ResourceStep:
    """A resource operation starting (``pre``), finishing (``done``) or failing (``failed``)."""

    phase: Literal["pre", "done", "failed"]
    op: str
    urn: str
    type: str

    @property
    def name(self) -> str:
        """Logical resource name (last URN segment)."""
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class Diagnostic:
    """An engine diagnostic (``info``, ``warning``, ``error`` ...); Pulumi masks secrets in it."""

    severity: str
    message: str
    urn: str | None = None


@dataclass(frozen=True)
class PolicyViolation:
    """A policy pack finding reported during the operation."""

    policy: str
    pack: str
    enforcement: str
    message: str
    urn: str | None = None


@dataclass(frozen=True)
class Summary:
    """The engine's end-of-operation summary."""

    changes: ResourceChanges
    duration_seconds: float


ProgressEvent = OutputLine | ResourceStep | Diagnostic | PolicyViolation | Summary
ProgressCallback = Callable[[ProgressEvent], None]


def _op(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def _step(phase: Literal["pre", "done", "failed"], event: Any) -> ResourceStep | None:
    meta = getattr(event, "metadata", None)
    if meta is None:
        return None
    return ResourceStep(
        phase=phase, op=_op(getattr(meta, "op", "")), urn=str(meta.urn or ""), type=str(meta.type or "")
    )


def translate_engine_event(event: Any) -> ProgressEvent | None:
    """Map one ``pulumi.automation.events.EngineEvent`` to a progress record (None = not interesting)."""
    if (e := getattr(event, "resource_pre_event", None)) is not None:
        return _step("pre", e)
    if (e := getattr(event, "res_outputs_event", None)) is not None:
        return _step("done", e)
    if (e := getattr(event, "res_op_failed_event", None)) is not None:
        return _step("failed", e)
    if (e := getattr(event, "diagnostic_event", None)) is not None:
        message = str(getattr(e, "message", "")).rstrip()
        if getattr(e, "ephemeral", False) or not message:
            return None
        return Diagnostic(severity=str(e.severity), message=message, urn=getattr(e, "urn", None) or None)
    if (e := getattr(event, "policy_event", None)) is not None:
        return PolicyViolation(
            policy=str(e.policy_name),
            pack=str(e.policy_pack_name),
            enforcement=str(e.enforcement_level),
            message=str(e.message).rstrip(),
            urn=getattr(e, "resource_urn", None) or None,
        )
    if (e := getattr(event, "summary_event", None)) is not None:
        return Summary(
            changes=ResourceChanges.from_op_map(getattr(e, "resource_changes", None)),
            duration_seconds=float(getattr(e, "duration_seconds", 0) or 0),
        )
    return None


def safe_callback(callback: ProgressCallback | None) -> ProgressCallback:
    """Wrap ``callback`` so its exceptions are logged, not raised.

    Why: Pulumi calls it from its event thread in the middle of an update; an exception
    there would abort the engine with resources half-changed, which is far worse than a
    missing progress line.
    """

    def deliver(event: ProgressEvent) -> None:
        if callback is None:
            return
        try:
            callback(event)
        except Exception:
            _log.exception("progress callback failed on %s; continuing the operation", type(event).__name__)

    return deliver


def format_event(event: ProgressEvent) -> str | None:
    """One human-readable line for ``event`` (None for events not worth a line)."""
    if isinstance(event, ResourceStep):
        if event.op in ("same", "read") and event.phase != "failed":
            return None
        mark = {"pre": "...", "done": "ok ", "failed": "ERR"}[event.phase]
        return f"{mark} {event.op:<8} {event.type} {event.name}"
    if isinstance(event, Diagnostic):
        if event.severity in ("debug", "info#err") and not event.urn:
            return None
        return f"[{event.severity}] {event.message}"
    if isinstance(event, PolicyViolation):
        return f"[policy {event.enforcement}] {event.pack}/{event.policy}: {event.message}"
    if isinstance(event, Summary):
        return f"summary: {event.changes} in {event.duration_seconds:.0f}s"
    return event.text.rstrip("\n") or None
