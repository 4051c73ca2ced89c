"""The data the policy rules work on: resources, the stack context, rules and findings.

The rules only need a resource's type token, logical name, inputs and region, so the same
code serves the offline plan (``commerce_db.mock_engine.RegisteredResource``) and the
``pulumi-policy`` pack (``ResourceValidationArgs`` / ``PolicyResource`` via ``policy/``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class Enforcement(enum.StrEnum):
    """How a violation is treated: ``mandatory`` blocks (plan exits 3), ``advisory`` only warns."""

    MANDATORY = "mandatory"
    ADVISORY = "advisory"


class PolicySubject(Protocol):
    """What a rule needs to know about one resource."""

    @property
    def type(self) -> str: ...  # e.g. "aws:rds/instance:Instance"

    @property
    def name(self) -> str: ...  # logical name

    @property
    def inputs(self) -> Mapping[str, Any]: ...  # camelCase input keys

    @property
    def region(self) -> str | None: ...


@dataclass(frozen=True)
class Subject:
    """A plain :class:`PolicySubject` (what the policy-pack adapter builds)."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    region: str | None = None
    urn: str = ""
    identifiers: tuple[str, ...] = ()
    """Extra strings other resources may use to refer to this one (ids, ARNs, identifiers)."""
    protect: bool | None = None
    """``ResourceOptions.protect`` when the caller knows it; None = unknown (rules on it skip)."""


@dataclass(frozen=True)
class PolicyContext:
    """Stack-level facts some rules depend on."""

    stack: str
    environment: str = ""
    """``prod`` / ``staging``; defaults to the stack name when empty."""

    @property
    def env(self) -> str:
        return (self.environment or self.stack).lower()

    @property
    def is_prod(self) -> bool:
        """True for the production environment (``prod`` / ``production``)."""
        return self.env in ("prod", "production")


ResourceCheck = Callable[[PolicySubject, PolicyContext], Iterable[str]]
"""Yields one message per violation of a single resource."""

StackCheck = Callable[[Sequence[PolicySubject], PolicyContext], Iterable[tuple[PolicySubject | None, str]]]
"""Yields ``(resource or None, message)`` per violation across the whole stack."""


@dataclass(frozen=True)
class Rule:
    """One policy: a resource check over ``types`` or a stack check over every resource."""

    name: str
    description: str
    enforcement: Enforcement
    types: frozenset[str] = frozenset()
    check: ResourceCheck | None = None
    check_stack: StackCheck | None = None
    prod_only: bool = False
    """Evaluated only when :attr:`PolicyContext.is_prod`."""

    def applies_to(self, ctx: PolicyContext) -> bool:
        return ctx.is_prod or not self.prod_only


@dataclass(frozen=True)
class Finding:
    """One violation of one rule."""

    policy: str
    enforcement: Enforcement
    resource: str | None
    type: str | None
    region: str | None
    message: str
    urn: str = field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        """The ``policy`` list entry of ``commerce-db plan --json``."""
        return {
            "policy": self.policy,
            "enforcement": self.enforcement.value,
            "resource": self.resource,
            "type": self.type,
            "region": self.region,
            "message": self.message,
        }
