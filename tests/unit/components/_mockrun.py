"""Shared helpers for the component tests: run a program under the mock engine and pick resources."""

from __future__ import annotations

from collections.abc import Callable

from commerce_db.mock_engine import ProgramRun, RegisteredResource, run_program


def run(program: Callable[[], None]) -> ProgramRun:
    """Run ``program`` under the mock engine with ``aws:region`` us-east-1."""
    return run_program(program, config={"aws:region": "us-east-1"})


def single(run_: ProgramRun, type_token: str) -> RegisteredResource:
    """The one resource of ``type_token`` in ``run_`` (fails listing the names when not exactly one)."""
    found = run_.of_type(type_token)
    assert len(found) == 1, [r.name for r in found]
    return found[0]
