"""Helpers for the multi-language tests: build inputs as a Construct call delivers them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from commerce_db_components import multilang
from pulumi.provider.experimental.component import ComponentProvider

from commerce_db.mock_engine import ProgramRun, run_program

PKG = multilang.PACKAGE_NAME


def wire(value: Any) -> Any:
    """``value`` as it arrives over gRPC: every number a float (protobuf Struct values are doubles)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def provider() -> ComponentProvider:
    """The provider the plugin serves (schema inferred from the wrappers)."""
    return ComponentProvider(multilang.served_components(), PKG, version="0.0.0")


def construct(component: str, inputs: dict[str, Any], name: str = "x") -> ProgramRun:
    """Run the provider's ``construct`` for ``commerce:index:<component>`` under the mock engine.

    ``inputs`` use schema (camelCase) names; numbers are sent as floats like the engine does. The
    construct result's state is exported as ``state``.
    """
    prov = provider()

    def program() -> None:
        result = prov.construct(name, f"{PKG}:index:{component}", wire(inputs), None)
        pulumi.export("state", result.state)

    return run_program(program, config={"aws:region": "eu-west-1"})


def expect_construct_error(component: str, inputs: dict[str, Any]) -> Callable[[], ProgramRun]:
    """A thunk running :func:`construct`, for ``pytest.raises``."""
    return lambda: construct(component, inputs)


CMK = "arn:aws:kms:eu-west-1:123456789012:key/team-cmk"
PLACEMENT: dict[str, Any] = {"vpcId": "vpc-team", "subnetIds": ["subnet-a", "subnet-b"]}
POSTGRES: dict[str, Any] = {"region": "eu-west-1", **PLACEMENT, "kmsKeyArn": CMK}
