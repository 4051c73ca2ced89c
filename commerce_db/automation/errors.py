"""Errors raised by :mod:`commerce_db.automation`; each names what was wrong and what to do."""

from __future__ import annotations

PULUMI_INSTALL_HINT = "pulumi CLI not found on PATH; install from https://www.pulumi.com/docs/install/"


class AutomationError(RuntimeError):
    """Base class of every error this package raises on purpose."""


class SettingsError(AutomationError, ValueError):
    """Stack settings could not be built (unknown stack, bad override, encrypted value without a secret).

    ``key`` names the offending config key when there is one.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class PulumiCliNotFoundError(AutomationError):
    """The Automation API needs the ``pulumi`` binary and it is not on PATH."""

    def __init__(self) -> None:
        super().__init__(PULUMI_INSTALL_HINT)


class PulumiCliVersionError(AutomationError):
    """The installed ``pulumi`` CLI is older than the Automation SDK (or an operation) needs."""


class StackNotFoundError(AutomationError):
    """The named stack does not exist in the backend (only raised when not creating stacks)."""


class ConcurrentUpdateError(AutomationError):
    """Another update holds the stack's lock; retry later or ``pulumi cancel`` a stale one."""


class OperationFailedError(AutomationError):
    """A Pulumi operation ran and failed; ``detail`` is the tail of Pulumi's own stderr."""

    def __init__(self, operation: str, stack: str, detail: str) -> None:
        super().__init__(f"pulumi {operation} failed for stack {stack!r}: {detail}")
        self.operation = operation
        self.stack = stack
        self.detail = detail


class ProtectedStackError(SettingsError):
    """The operation is refused on a protected (prod) stack; nothing was changed."""


class DriftDetectedError(OperationFailedError):
    """A drift check found differences between the program, the state and the cloud.

    ``changes`` holds the counts of the would-be changes (``create``/``update``/``delete``/...).
    """

    def __init__(self, stack: str, changes: dict[str, int], detail: str) -> None:
        super().__init__("drift check", stack, detail)
        self.changes = changes
