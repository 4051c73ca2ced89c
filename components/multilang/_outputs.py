"""Copy a real component's outputs onto its multi-language wrapper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi


def publish(wrapper: pulumi.ComponentResource, values: dict[str, Any], names: Sequence[str]) -> None:
    """Set ``names`` as attributes of ``wrapper`` from ``values`` and register them as its outputs.

    The provider host reads the attributes named in the wrapper's annotations (``None`` ones are
    left out of the state, so optional outputs stay absent). ``list[Output[T]]`` values are
    joined into one ``Output[list[T]]``: the schema has no list of outputs.
    """
    registered: dict[str, Any] = {}
    for name in names:
        value = values.get(name)
        if isinstance(value, list | tuple) and any(isinstance(v, pulumi.Output) for v in value):
            value = pulumi.Output.all(*value)
        setattr(wrapper, name, value)
        if value is not None:
            registered[name] = value
    wrapper.register_outputs(registered)


def outputs_of(component: Any, names: Sequence[str]) -> dict[str, Any]:
    """``{name: getattr(component, name, None)}`` for ``names``."""
    return {name: getattr(component, name, None) for name in names}
