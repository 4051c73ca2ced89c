"""The components as a multi-language Pulumi package (``commerce``), for TypeScript, Go, C#, Java, YAML.

Pulumi's source-based component host (``pulumi.provider.experimental``, pulumi 3.272) serves
Python components to other languages and infers the package schema from type annotations. Our
components take frozen dataclass Args with ``Literal`` fields, component references and
capability methods, none of which the host can serve, so this package puts a thin wrapper in
front of each one:

- ``PostgresCluster``, ``ProxyLayer``, ``CacheLayer``, ``ObservabilityLayer`` (type tokens
  ``commerce:index:<Name>``; the host only serves module ``index``) with TypedDict inputs,
- ``Database``: the four composed, because a component cannot take another component as input.

Each wrapper coerces its inputs (integers arrive as floats, enums become the Args' strings),
builds the real Args (so validation is the same as in Python), creates the real component as
its child (its ``commerce:db:*`` token and child names unchanged) and publishes its outputs.
Capability methods become inputs (``allowed_security_groups``, ``connect_grants``...), since the
host serves no method calls. The plugin entry point is ``plugin/__main__.py`` in the repository.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import metadata
from typing import Any

PACKAGE_NAME = "commerce"
"""Pulumi package name: SDKs are generated as ``@pulumi/commerce``, ``pulumi_commerce``, ... ."""


def served_components() -> list[type[Any]]:
    """The wrapper components the plugin serves, in schema order."""
    from .cache import CacheLayer
    from .database import Database
    from .observability import ObservabilityLayer
    from .postgres import PostgresCluster
    from .proxy import ProxyLayer

    return [PostgresCluster, ProxyLayer, CacheLayer, ObservabilityLayer, Database]


def package_version() -> str:
    """Version of the installed ``commerce-db`` distribution (the package schema's version)."""
    try:
        return metadata.version("commerce-db")
    except metadata.PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0"


def schema(version: str | None = None) -> dict[str, Any]:
    """The package schema, inferred exactly as the plugin serves it over ``GetSchema``."""
    from pulumi.provider.experimental.component import ComponentProvider

    provider = ComponentProvider(served_components(), PACKAGE_NAME, version=version or package_version())
    return json.loads(provider.schema or "{}")


def serve(argv: Sequence[str] | None = None) -> None:
    """Run the plugin's gRPC server (the Pulumi CLI starts it with the engine address as argument).

    Prints the port it listens on, as every Pulumi plugin does, and serves until terminated.
    """
    import sys

    from pulumi.provider.experimental import component_provider_host

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    component_provider_host(served_components(), PACKAGE_NAME, version=package_version())
