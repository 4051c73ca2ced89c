"""Helpers for INFRA-A's tests: load a stack file's flat ``config:`` map and run the program."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from commerce_db.mock_engine import ProgramRun, run_program

ROOT = Path(__file__).resolve().parents[3]


@cache
def stack_config(stack: str) -> dict[str, Any]:
    """The ``config:`` map of ``Pulumi.<stack>.yaml`` (keys fully qualified), as the CLI hands it over."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return dict(data["config"])


def run_stack(
    stack: str, overrides: dict[str, Any] | None = None, *, stack_name: str | None = None
) -> ProgramRun:
    """Run ``commerce_db_components.program.run`` under the mock engine with a stack file's config
    (+ overrides).

    Runs are memoised per (stack, overrides, stack name) for the session: a run takes about a
    second and its result is read-only, so test modules share them. Failing runs are not cached.
    """
    return _run(stack, json.dumps(overrides or {}, sort_keys=True), stack_name or stack)


@cache
def _run(stack: str, overrides_json: str, stack_name: str) -> ProgramRun:
    from commerce_db_components.program import run

    config = {**stack_config(stack), **json.loads(overrides_json)}
    return run_program(run, stack=stack_name, config=config)
