"""Turn the inputs a multi-language ``Construct`` call delivers into what the Python Args expect.

The provider host (``pulumi.provider.experimental``, pulumi 3.272) maps schema names to Python
names and turns enum strings into enum members, but hands integers over as floats: its
``map_input_properties`` casts ``int(value)`` and then overwrites the result with the raw value,
and every number on the wire is a protobuf double. Enums must become the plain strings the
frozen Args' ``Literal`` fields take. :func:`coerce` does both, driven by the wrapper's own
TypedDict annotations, so a new ``int`` or enum field needs no extra code.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Awaitable, Mapping
from typing import Any

import pulumi


def whole_number(value: Any, path: str) -> int:
    """``value`` as an ``int``: ints pass, floats must be whole (``3.0``), anything else is refused."""
    if isinstance(value, bool):
        raise TypeError(f"{path} {value!r} is invalid; expected a whole number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{path} {value!r} is invalid; expected a whole number")


def _is_output_or_awaitable(member: Any) -> bool:
    origin = typing.get_origin(member)
    if origin is pulumi.Output or origin is Awaitable or member is pulumi.Output:
        return True
    # pulumi.Input's Union spells its Output member as the forward reference "Output[T]".
    return isinstance(member, typing.ForwardRef)


def _plain_member(hint: Any) -> Any:
    """The plain type inside ``Input[T]``, ``Output[T]``, ``T | None`` and ``NotRequired[T]``."""
    while True:
        origin = typing.get_origin(hint)
        if origin in (typing.NotRequired, typing.Required, pulumi.Output):
            hint = typing.get_args(hint)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [
                m for m in typing.get_args(hint) if m is not type(None) and not _is_output_or_awaitable(m)
            ]
            if not members:
                return Any
            hint = members[0]
        else:
            return hint


def coerce(hint: Any, value: Any, path: str) -> Any:
    """Convert ``value`` (as the provider host delivers it) to the shape ``hint`` describes.

    Whole-number floats become ``int`` for ``int`` fields, enum members (or their values) become
    the plain value, TypedDicts, lists and dicts are converted item by item, Outputs are
    converted inside an ``apply``. ``path`` names the field in error messages.
    """
    if value is None:
        return None
    if isinstance(value, pulumi.Output):
        return value.apply(lambda v: coerce(hint, v, path))
    plain = _plain_member(hint)
    origin = typing.get_origin(plain)
    if plain is int:
        return whole_number(value, path)
    if plain is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(plain, type) and issubclass(plain, enum.Enum):
        try:
            return plain(value.value if isinstance(value, enum.Enum) else value).value
        except ValueError:
            allowed = ", ".join(str(m.value) for m in plain)
            raise ValueError(f"{path} {value!r} is invalid; allowed: {allowed}") from None
    if typing.is_typeddict(plain) and isinstance(value, Mapping):
        return coerce_args(plain, value, path)
    if origin is list and isinstance(value, list | tuple):
        (item,) = typing.get_args(plain)
        return [coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict and isinstance(value, Mapping):
        _, item = typing.get_args(plain)
        return {k: coerce(item, v, f"{path}.{k}") for k, v in value.items()}
    return value


def coerce_args(typed_dict: type, values: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """Every key of ``values`` converted by :func:`coerce` against ``typed_dict``'s annotations.

    Unknown keys are refused with the list of known ones (a typo must not silently fall back to a
    default).
    """
    # The raw annotations (inherited keys included): get_type_hints would try to evaluate
    # pulumi.Input's "Output[T]" forward reference and fail.
    hints: dict[str, Any] = dict(typed_dict.__annotations__)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ValueError(
            f"{path or typed_dict.__name__}: unknown field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(hints))}"
        )
    return {key: coerce(hints[key], value, f"{path}.{key}" if path else key) for key, value in values.items()}
