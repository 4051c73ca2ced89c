"""Thin adapter from :data:`~commerce_db.policy_rules.RULES` to ``pulumi-policy`` policies.

``policy/__main__.py`` builds the pack with :func:`build_policies`; the rule code is the same
the offline plan runs. Per-resource rules become ``ResourceValidationPolicy`` objects and
stack-wide rules ``StackValidationPolicy`` objects. During ``pulumi preview`` some values are
unknown: reading one raises ``pulumi_policy``'s ``UnknownValueError``, which the policy runtime
turns into a "can't run during preview" note instead of a false violation.

The environment (prod rules) comes from the policy config key ``environment`` when set
(``pulumi policy enable ... --config``), else from the stack name in the resource URN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from commerce_db.policy_rules import check_resource, check_stack
from commerce_db.policy_rules.model import Enforcement, PolicyContext, Rule, Subject
from commerce_db.policy_rules.rules import RULES

PACK_NAME = "commerce-db-guardrails"


def stack_from_urn(urn: str) -> str:
    """``urn:pulumi:prod::commerce-db::type::name`` -> ``prod`` (empty if not a URN)."""
    parts = urn.split("::")
    head = parts[0] if parts else ""
    return head.split(":", 2)[2] if head.startswith("urn:pulumi:") and head.count(":") >= 2 else ""


def context_for(urn: str, config: Mapping[str, Any] | None = None) -> PolicyContext:
    """Policy context from a resource URN and the policy's config."""
    env = (config or {}).get("environment")
    return PolicyContext(stack=stack_from_urn(urn), environment=env if isinstance(env, str) else "")


def _region(props: Mapping[str, Any], provider: Any) -> str | None:
    region = props.get("region") if "region" in props else None
    if not isinstance(region, str) and provider is not None:
        pprops = getattr(provider, "props", None) or {}
        region = pprops.get("region") if "region" in pprops else None
    return region if isinstance(region, str) else None


def _identifiers(props: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for key in ("id", "arn", "identifier", "bucket", "name"):
        if key in props and isinstance(props[key], str):
            out.append(props[key])
    return tuple(out)


def _protect(resource: Any) -> bool | None:
    """``opts.protect`` of a ResourceValidationArgs / PolicyResource (None where it has no options)."""
    value = getattr(getattr(resource, "opts", None), "protect", None)
    return value if isinstance(value, bool) else None


def _subject(resource: Any, identifiers: tuple[str, ...] = ()) -> Subject:
    """A :class:`Subject` from anything with pulumi_policy's ``resource_type``/``name``/``props``/``urn``."""
    return Subject(
        type=resource.resource_type,
        name=resource.name,
        inputs=resource.props,
        region=_region(resource.props, getattr(resource, "provider", None)),
        urn=resource.urn,
        identifiers=identifiers,
        protect=_protect(resource),
    )


def subject_from_resource_args(args: Any) -> Subject:
    """A :class:`Subject` from ``pulumi_policy.ResourceValidationArgs`` (props are inputs)."""
    return _subject(args)


def subject_from_policy_resource(res: Any) -> Subject:
    """A :class:`Subject` from ``pulumi_policy.PolicyResource`` (props are outputs, incl. ids and ARNs)."""
    return _subject(res, _identifiers(res.props))


def resource_validator(rule: Rule) -> Callable[[Any, Callable[..., None]], None]:
    """``validate(args, report_violation)`` running ``rule`` on one resource."""

    def validate(args: Any, report_violation: Callable[..., None]) -> None:
        if args.resource_type not in rule.types:
            return
        ctx = context_for(args.urn, args.get_config() if hasattr(args, "get_config") else None)
        for finding in check_resource(rule, subject_from_resource_args(args), ctx):
            report_violation(finding.message)

    return validate


def stack_validator(rule: Rule) -> Callable[[Any, Callable[..., None]], None]:
    """``validate(args, report_violation)`` running a stack-wide ``rule`` over all resources."""

    def validate(args: Any, report_violation: Callable[..., None]) -> None:
        subjects = [subject_from_policy_resource(r) for r in args.resources]
        urn = subjects[0].urn if subjects else ""
        ctx = context_for(urn, args.get_config() if hasattr(args, "get_config") else None)
        for finding in check_stack(rule, subjects, ctx):
            by_urn = next(
                (s.urn for s in subjects if s.name == finding.resource and s.type == finding.type), None
            )
            if by_urn:
                report_violation(finding.message, by_urn)
            else:
                report_violation(finding.message)

    return validate


def build_policies() -> list[Any]:
    """One ``pulumi_policy`` policy per rule, same names, descriptions and enforcement levels."""
    from pulumi_policy import (
        EnforcementLevel,
        PolicyConfigSchema,
        ResourceValidationPolicy,
        StackValidationPolicy,
    )

    schema = PolicyConfigSchema(
        properties={"environment": {"type": "string", "description": "prod or staging; default: stack name"}}
    )
    policies: list[Any] = []
    for rule in RULES:
        level = (
            EnforcementLevel.MANDATORY
            if rule.enforcement == Enforcement.MANDATORY
            else EnforcementLevel.ADVISORY
        )
        if rule.check is not None:
            policies.append(
                ResourceValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=resource_validator(rule),
                    enforcement_level=level,
                    config_schema=schema,
                )
            )
        if rule.check_stack is not None:
            policies.append(
                StackValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=stack_validator(rule),
                    enforcement_level=level,
                    config_schema=schema,
                )
            )
    return policies
