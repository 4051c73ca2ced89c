"""Pulumi Automation API for internal tools: typed operations on the commerce-db stacks.

    from commerce_db import automation as cdb_auto

    bigger = {"postgres": {"instanceClass": "db.r7g.large"}}
    settings = cdb_auto.load_stack_settings("staging", overrides=bigger)
    result = cdb_auto.preview(settings, on_event=print)
    print(result.changes, result.duration_seconds)

Only :mod:`~commerce_db.automation.boundary` touches ``pulumi.automation`` (and so needs the
Pulumi CLI on PATH); the rest is pure and unit-tested with an injected stack handle.
"""

from commerce_db.automation.boundary import StackHandle, StackOpener, open_stack, require_pulumi_cli
from commerce_db.automation.errors import (
    PULUMI_INSTALL_HINT,
    AutomationError,
    ConcurrentUpdateError,
    DriftDetectedError,
    OperationFailedError,
    ProtectedStackError,
    PulumiCliNotFoundError,
    PulumiCliVersionError,
    SettingsError,
    StackNotFoundError,
)
from commerce_db.automation.events import (
    Diagnostic,
    OutputLine,
    PolicyViolation,
    ProgressCallback,
    ProgressEvent,
    ResourceStep,
    Summary,
    format_event,
)
from commerce_db.automation.operations import cancel, destroy, drift_check, outputs, preview, refresh, up
from commerce_db.automation.results import SECRET_MASK, OperationResult, ResourceChanges, StackOutput
from commerce_db.automation.settings import StackSettings, load_stack_settings
from commerce_db.automation.validate import check_stack_config

__all__ = [
    "PULUMI_INSTALL_HINT",
    "SECRET_MASK",
    "AutomationError",
    "ConcurrentUpdateError",
    "Diagnostic",
    "DriftDetectedError",
    "OperationFailedError",
    "OperationResult",
    "OutputLine",
    "PolicyViolation",
    "ProgressCallback",
    "ProgressEvent",
    "ProtectedStackError",
    "PulumiCliNotFoundError",
    "PulumiCliVersionError",
    "ResourceChanges",
    "ResourceStep",
    "SettingsError",
    "StackHandle",
    "StackNotFoundError",
    "StackOpener",
    "StackOutput",
    "StackSettings",
    "Summary",
    "cancel",
    "check_stack_config",
    "destroy",
    "drift_check",
    "format_event",
    "load_stack_settings",
    "open_stack",
    "outputs",
    "preview",
    "refresh",
    "require_pulumi_cli",
    "up",
]
