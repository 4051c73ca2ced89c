"""Policy rules shared by ``commerce-db plan`` and the ``pulumi-policy`` pack in ``policy/``.

Public API::

    from commerce_db.policy_rules import RULES, PolicyContext, evaluate, has_mandatory
    findings = evaluate(run.resources, PolicyContext(stack="prod", environment="prod"))

``evaluate`` accepts anything shaped like :class:`PolicySubject` (``type``, ``name``, ``inputs``,
``region``), e.g. ``commerce_db.mock_engine.RegisteredResource``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from commerce_db.policy_rules.model import (
    Enforcement,
    Finding,
    PolicyContext,
    PolicySubject,
    Rule,
    Subject,
)
from commerce_db.policy_rules.rules import RULES

__all__ = [
    "RULES",
    "Enforcement",
    "Finding",
    "PolicyContext",
    "PolicySubject",
    "Rule",
    "Subject",
    "check_resource",
    "check_stack",
    "evaluate",
    "has_mandatory",
    "rule_named",
]


def rule_named(name: str) -> Rule:
    """The rule called ``name`` (KeyError if none)."""
    for rule in RULES:
        if rule.name == name:
            return rule
    raise KeyError(name)


def _finding(rule: Rule, subject: PolicySubject | None, message: str) -> Finding:
    return Finding(
        policy=rule.name,
        enforcement=rule.enforcement,
        resource=subject.name if subject is not None else None,
        type=subject.type if subject is not None else None,
        region=subject.region if subject is not None else None,
        message=message,
        urn=str(getattr(subject, "urn", "") or ""),
    )


def check_resource(rule: Rule, subject: PolicySubject, ctx: PolicyContext) -> list[Finding]:
    """Findings of one per-resource ``rule`` on ``subject`` (empty when it passes or does not apply)."""
    if rule.check is None or subject.type not in rule.types or not rule.applies_to(ctx):
        return []
    return [_finding(rule, subject, msg) for msg in rule.check(subject, ctx)]


def check_stack(rule: Rule, subjects: Sequence[PolicySubject], ctx: PolicyContext) -> list[Finding]:
    """Findings of one stack-wide ``rule`` over all ``subjects``."""
    if rule.check_stack is None or not rule.applies_to(ctx):
        return []
    return [_finding(rule, subject, msg) for subject, msg in rule.check_stack(subjects, ctx)]


def evaluate(
    resources: Iterable[PolicySubject], ctx: PolicyContext, rules: Sequence[Rule] = RULES
) -> list[Finding]:
    """Run every rule over ``resources``; mandatory findings first, then in rule order."""
    subjects = list(resources)
    findings: list[Finding] = []
    for rule in rules:
        if rule.check is not None:
            for subject in subjects:
                findings.extend(check_resource(rule, subject, ctx))
        if rule.check_stack is not None:
            findings.extend(check_stack(rule, subjects, ctx))
    return sorted(findings, key=lambda f: f.enforcement != Enforcement.MANDATORY)


def has_mandatory(findings: Iterable[Finding]) -> bool:
    """True when any finding blocks (mandatory)."""
    return any(f.enforcement == Enforcement.MANDATORY for f in findings)
