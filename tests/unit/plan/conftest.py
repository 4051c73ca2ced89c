"""Fixtures for the offline-plan tests: the sample program's project dir and cached runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from commerce_db.plan import PlanReport, plan_stack
from tests.unit.plan import sample_program

FIXTURE_DIR = Path(__file__).parent / "fixture_project"
SAMPLE = "tests.unit.plan.sample_program:run"
MOCK_SECRET_CHAR = "P"  # RecordingMocks makes RandomPassword.result "P" * length


def sample_plan(stack: str = "prod", overrides: tuple[str, ...] = ()) -> PlanReport:
    """Plan the sample program (tests/unit/plan/sample_program.py) for ``stack``."""
    return plan_stack(stack, project_dir=FIXTURE_DIR, overrides=list(overrides), program=sample_program.run)


@pytest.fixture(scope="module")
def sample_prod() -> PlanReport:
    return sample_plan("prod")
