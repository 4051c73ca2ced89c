"""Structured, JSON-friendly results of Automation API operations (pure; no Pulumi CLI).

Built from the duck-typed objects ``pulumi.automation`` returns (``UpResult``,
``PreviewResult``, ``OutputValue`` ...), so tests can feed plain stand-ins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

SECRET_MASK = "[secret]"

Operation = Literal["preview", "up", "refresh", "destroy"]

# Pulumi reports replacements as up to three op kinds; operators think of them as one.
_REPLACE_OPS = ("replace", "create-replacement", "delete-replaced", "discard-replaced")


def _op_name(op: Any) -> str:
    """``OpType.CREATE`` or ``"create"`` -> ``"create"``."""
    return str(getattr(op, "value", op))


@dataclass(frozen=True)
class ResourceChanges:
    """Resource counts by operation kind (``create``, ``update``, ``delete``, ``same``, ``replace``...)."""

    counts: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))

    @classmethod
    def from_op_map(cls, op_map: Mapping[Any, Any] | None) -> ResourceChanges:
        """From Pulumi's ``OpMap`` (keys are ``OpType`` or strings, values counts)."""
        return cls({_op_name(k): int(v) for k, v in (op_map or {}).items() if int(v)})

    def _get(self, op: str) -> int:
        return int(self.counts.get(op, 0))

    @property
    def create(self) -> int:
        return self._get("create")

    @property
    def update(self) -> int:
        return self._get("update")

    @property
    def delete(self) -> int:
        return self._get("delete")

    @property
    def same(self) -> int:
        return self._get("same")

    @property
    def replace(self) -> int:
        """Resources replaced; Pulumi's separate create/delete-replacement steps are not double counted."""
        return self._get("replace") or max(self._get("create-replacement"), self._get("delete-replaced"))

    @property
    def changed(self) -> int:
        """Resources that are created, updated, deleted or replaced."""
        return self.create + self.update + self.delete + self.replace

    def to_dict(self) -> dict[str, int]:
        base = {"create": self.create, "update": self.update, "delete": self.delete, "replace": self.replace}
        base["same"] = self.same
        extra = {k: v for k, v in self.counts.items() if k not in base and k not in _REPLACE_OPS}
        return {**base, **dict(sorted(extra.items()))}

    def __str__(self) -> str:
        return (
            f"+{self.create} create, ~{self.update} update, -{self.delete} delete, "
            f"+-{self.replace} replace, {self.same} unchanged"
        )


@dataclass(frozen=True)
class StackOutput:
    """One stack output; a secret output's value is replaced by ``"[secret]"`` at construction."""

    value: Any
    secret: bool = False

    @classmethod
    def masked(cls, value: Any, secret: bool) -> StackOutput:
        return cls(SECRET_MASK if secret else value, secret)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "secret": self.secret}


def mask_outputs(outputs: Mapping[str, Any] | None) -> Mapping[str, StackOutput]:
    """Pulumi ``OutputMap`` (``OutputValue`` with ``.value``/``.secret``) -> masked, read-only mapping."""
    masked: dict[str, StackOutput] = {}
    for key, out in sorted((outputs or {}).items()):
        if hasattr(out, "secret") and hasattr(out, "value"):
            masked[key] = StackOutput.masked(out.value, bool(out.secret))
        else:  # a bare value: Pulumi only hands these out for non-secret outputs
            masked[key] = StackOutput.masked(out, False)
    return MappingProxyType(masked)


@dataclass(frozen=True)
class OperationResult:
    """Outcome of one preview/up/refresh/destroy on one stack."""

    operation: Operation
    stack: str
    result: str
    """Pulumi's result string: ``succeeded``, ``failed``, ``in-progress``; ``succeeded`` for a preview."""
    changes: ResourceChanges
    duration_seconds: float
    outputs: Mapping[str, StackOutput] = field(default_factory=dict)
    """Stack outputs after ``up`` (secret values masked); empty for the other operations."""
    version: int | None = None
    """Update version number in the backend (None for previews)."""
    message: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", MappingProxyType(dict(self.outputs)))

    @property
    def succeeded(self) -> bool:
        return self.result == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe representation (what ``commerce-db stack ... --json`` prints)."""
        return {
            "operation": self.operation,
            "stack": self.stack,
            "result": self.result,
            "succeeded": self.succeeded,
            "changes": self.changes.to_dict(),
            "durationSeconds": round(self.duration_seconds, 3),
            "version": self.version,
            "message": self.message,
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
        }


def build_result(
    operation: Operation,
    stack: str,
    raw: Any,
    *,
    duration_seconds: float,
    message: str | None = None,
) -> OperationResult:
    """Turn a ``pulumi.automation`` result object into an :class:`OperationResult`.

    Previews carry ``change_summary``; up/refresh/destroy carry ``summary`` (``UpdateSummary``)
    and up also ``outputs``.
    """
    summary = getattr(raw, "summary", None)
    if summary is not None:
        changes = ResourceChanges.from_op_map(getattr(summary, "resource_changes", None))
        result = str(getattr(summary, "result", "succeeded"))
        version = getattr(summary, "version", None)
    else:
        changes = ResourceChanges.from_op_map(getattr(raw, "change_summary", None))
        result, version = "succeeded", None
    outputs = mask_outputs(getattr(raw, "outputs", None)) if operation == "up" else {}
    return OperationResult(
        operation=operation,
        stack=stack,
        result=result,
        changes=changes,
        duration_seconds=duration_seconds,
        outputs=outputs,
        version=version if isinstance(version, int) else None,
        message=message,
    )
