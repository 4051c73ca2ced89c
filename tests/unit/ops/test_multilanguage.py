"""Multi-language component package: what the installed SDK's component_provider_host can serve.

No ``from __future__ import annotations`` here on purpose: the SDK's analyzer reads raw
``__annotations__`` and cannot resolve string annotations (docs/multi-language.md). The first test
proves schema inference runs in-process without the CLI; the canary tests pin why the Python
components themselves cannot be served and the package ships thin wrappers instead
(``components/multilang``, tested in tests/unit/multilang) -- if one starts failing, the SDK or the
components changed and the wrappers may be simplified.
"""

import inspect
import json
from typing import NotRequired, TypedDict

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer
from pulumi.provider.experimental.component import ComponentProvider


class DemoArgs(TypedDict):
    """Args shaped the way the SDK expects: a TypedDict of Inputs."""

    vpc_id: pulumi.Input[str]
    """VPC to deploy into."""
    node_count: NotRequired[pulumi.Input[int]]
    """Nodes; optional."""


class Demo(pulumi.ComponentResource):
    """A component the SDK can serve."""

    endpoint: pulumi.Output[str]
    """Where clients connect."""

    def __init__(self, name: str, args: DemoArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:index:Demo", name, {}, opts)


def test_schema_inference_runs_in_process_for_typed_dict_args() -> None:
    provider = ComponentProvider([Demo], "commerce", version="0.1.0")
    assert provider.schema is not None
    schema = json.loads(provider.schema)
    resource = schema["resources"]["commerce:index:Demo"]
    assert resource["isComponent"] is True
    assert resource["inputProperties"]["vpcId"]["type"] == "string"
    assert resource["inputProperties"]["vpcId"]["description"] == "VPC to deploy into."
    assert resource["requiredInputs"] == ["vpcId"]
    assert resource["properties"]["endpoint"]["type"] == "string"
    # The constructor receives a plain dict (Python names), never an Args *instance*: components
    # that read ``args.vpc_id`` off a frozen dataclass break at construct time.
    mapped = provider.map_inputs({"vpcId": "vpc-1", "nodeCount": 2}, provider._component_defs["Demo"])
    assert mapped == {"vpc_id": "vpc-1", "node_count": 2} and type(mapped) is dict


def _components() -> list[type[pulumi.ComponentResource]]:
    from commerce_db_components.cache_layer import CacheLayer
    from commerce_db_components.postgres_cluster import PostgresCluster

    return [PostgresCluster, CacheLayer]


@pytest.mark.parametrize("component", _components(), ids=lambda c: c.__name__)
def test_canary_components_are_not_servable_as_is(component: type[pulumi.ComponentResource]) -> None:
    # 1. string annotations (PEP 563) are handed to the analyzer unevaluated
    assert isinstance(inspect.get_annotations(component.__init__)["args"], str)
    with pytest.raises(AttributeError, match="'str' object has no attribute '__mro__'"):
        Analyzer("commerce").analyze([component])


def test_canary_literal_fields_are_rejected_even_when_annotations_are_evaluated() -> None:
    from commerce_db_components.cache_layer import CacheLayerArgs

    hints = inspect.get_annotations(CacheLayerArgs, eval_str=True)
    with pytest.raises(TypeError, match="issubclass"):
        Analyzer("commerce").analyze_property(
            hints["engine"], CacheLayerArgs, "engine", can_be_plain=True, is_component_output=False
        )


def test_canary_frozen_type_tokens_are_outside_the_supported_module() -> None:
    # Our contract freezes ``commerce:db:<Component>``; the host only serves ``<pkg>:index:<Component>``.
    ComponentProvider.validate_resource_type("commerce", "commerce:index:PostgresCluster")
    with pytest.raises(ValueError, match="expected index"):
        ComponentProvider.validate_resource_type("commerce", "commerce:db:PostgresCluster")
