"""The offline plan: run a stack's Pulumi program under the mock engine and report on it.

Public API::

    from commerce_db.plan import plan_stack
    report = plan_stack("prod", overrides=["postgres.instanceClass=db.r7g.xlarge"])
    report.findings, report.cost.monthly_total, report.blocked

``commerce-db plan`` (``commerce_db/commands/plan.py``) is a thin CLI over this.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from commerce_db.mock_engine import run_program
from commerce_db.plan.report import PlanReport, build_report
from commerce_db.plan.stackfile import (
    StackConfigFile,
    StackFileError,
    apply_overrides,
    available_stacks,
    find_project_dir,
    load_stack,
)

__all__ = [
    "PlanReport",
    "StackConfigFile",
    "StackFileError",
    "apply_overrides",
    "available_stacks",
    "build_report",
    "find_project_dir",
    "load_program",
    "load_stack",
    "plan_stack",
]


def load_program(project_dir: Path) -> Callable[[], Any]:
    """``commerce_db_components.program.run`` from ``project_dir`` (put first on ``sys.path``)."""
    root = str(project_dir)
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module("commerce_db_components.program")
    return module.run  # type: ignore[no-any-return]


def plan_stack(
    stack: str,
    *,
    project_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    program: Callable[[], Any] | None = None,
    prices: Mapping[str, Any] | None = None,
) -> PlanReport:
    """Load ``Pulumi.<stack>.yaml`` (+ ``overrides``), run the program under mocks, build the report.

    ``program`` defaults to ``commerce_db_components.program.run`` of the project. Raises
    :class:`StackFileError` for unknown stacks/bad overrides; the program's own ``ValueError``
    (``commerce_db_components.config.ConfigError``) propagates unchanged.
    """
    pdir = find_project_dir(project_dir)
    loaded = load_stack(stack, pdir)
    config = apply_overrides(loaded.config, list(overrides), loaded.project)
    prog = program if program is not None else load_program(pdir)
    # A key stays secret unless an override replaced it (a --config value is given in clear).
    secret = {k for k in loaded.secret_keys if config.get(k) == loaded.config.get(k)}
    run = run_program(prog, project=loaded.project, stack=stack, config=config, secret_keys=secret)
    return build_report(run, stack=stack, project=loaded.project, config=config, prices=prices)
