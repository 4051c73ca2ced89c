"""Assemble everything the plan shows from one mocked run: tree, counts, exports, policy, cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from commerce_db.cost import CostEstimate, estimate
from commerce_db.mock_engine import ProgramRun
from commerce_db.plan.model import OutputView, RegionView, build_outputs, build_regions, count_by_type
from commerce_db.plan.refs import RefIndex
from commerce_db.policy_rules import Finding, PolicyContext, evaluate, has_mandatory
from commerce_db.policy_rules.iam_lint import LintReport, lint


@dataclass(frozen=True)
class PlanReport:
    """The offline plan of one stack."""

    stack: str
    project: str
    environment: str
    primary_region: str | None
    run: ProgramRun
    regions: list[RegionView]
    counts: dict[str, int]
    total: int
    outputs: list[OutputView]
    findings: list[Finding]
    cost: CostEstimate
    policy_lint: LintReport
    """parliament's findings on every policy document (errors block like a mandatory policy)."""
    warnings: tuple[str, ...] = ()
    """States of the config that are valid but must not linger (printed, never an exit code):
    see :func:`lingering_failover_warnings`."""
    filtered_from: int | None = None
    """Set by a ``--component``/``--type`` filter: the stack's resource count before it (``total``,
    ``counts``, ``outputs``, ``findings`` and ``cost`` then cover only the shown resources)."""

    @property
    def blocked(self) -> bool:
        """True when a mandatory policy is violated."""
        return has_mandatory(self.findings)


def _primary_region(run: ProgramRun, config: Mapping[str, Any], project: str) -> str | None:
    for candidate in (
        run.outputs.get("primaryRegion"),
        config.get(f"{project}:primaryRegion"),
        config.get("aws:region"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def replica_regions(run: ProgramRun, config: Mapping[str, Any], project: str) -> list[str]:
    """Replica regions in config order (from the ``replicaRegions`` export or config)."""
    for candidate in (run.outputs.get("replicaRegions"), config.get(f"{project}:replicaRegions")):
        if isinstance(candidate, list):
            return [r for r in candidate if isinstance(r, str)]
    return []


def environment_of(stack: str, config: Mapping[str, Any], project: str) -> str:
    """``commerce-db:environment`` when the stack sets it, else the stack name."""
    env = config.get(f"{project}:environment")
    return env if isinstance(env, str) and env else stack


def lingering_failover_warnings(config: Mapping[str, Any], project: str = "commerce-db") -> tuple[str, ...]:
    """Warnings while a failover's temporary keys are set (second review N5): each pauses
    something that must resume, so a plan names the key, its region and what stays paused."""
    out = []
    promoted = config.get(f"{project}:promotedFrom")
    if promoted:
        out.append(
            f"promotedFrom is set ({promoted}): the failover from {promoted} is not complete. Until the "
            "completing update removes it, the proxies ignore login changes (auths), the promoted copies "
            f"of {promoted}'s application and cache AUTH secrets do not rotate (rotation compliance lapses "
            "after passwordRotationDays) and the cache AUTH token stays pinned; complete it as the "
            "failover runbook says"
        )
    retiring = config.get(f"{project}:retiringLoginsFrom")
    if retiring:
        out.append(
            f"retiringLoginsFrom is set ({retiring}): every proxy still accepts the promoted copies of "
            f"{retiring}'s application logins next to the new secrets; remove it once the apps run with "
            "the exported secrets, before the new secrets' second rotation (passwordRotationDays), or a "
            "proxy holds two secrets for one user"
        )
    return tuple(out)


def build_report(
    run: ProgramRun,
    *,
    stack: str,
    project: str = "commerce-db",
    config: Mapping[str, Any] | None = None,
    prices: Mapping[str, Any] | None = None,
) -> PlanReport:
    """Group, summarise, check and price a mocked run of ``stack``."""
    cfg = config or {}
    refs = RefIndex(run.resources)
    primary = _primary_region(run, cfg, project)
    environment = environment_of(stack, cfg, project)
    findings = evaluate(run.resources, PolicyContext(stack=stack, environment=environment))
    regions = build_regions(run, refs, primary, replica_regions(run, cfg, project))
    return PlanReport(
        stack=stack,
        project=project,
        environment=environment,
        primary_region=primary,
        run=run,
        regions=regions,
        counts=count_by_type(run),
        total=len(run.resources),
        outputs=build_outputs(run, refs),
        findings=findings,
        cost=estimate(run.resources, prices, refs, [r.region for r in regions]),
        policy_lint=lint(run.resources),
        warnings=lingering_failover_warnings(cfg, project),
    )
