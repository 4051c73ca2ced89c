"""Typed Pulumi ComponentResources for the commerce-db database tier.

Every public component and its Args is re-exported here
(``from commerce_db_components import PostgresCluster``).
The re-exports resolve lazily (PEP 562), so ``import commerce_db_components.config`` stays cheap and does not
pull in every ``pulumi_aws`` submodule the components use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # configuration
    "ConfigError": ".config",
    "StackConfig": ".config",
    "load_stack_config": ".config",
    "parse_stack_config": ".config",
    "config_reference": ".config",
    # program and per-region composition
    "run": ".program",
    "RegionStack": ".region_stack",
    "RegionStackArgs": ".region_stack",
    # foundations
    "Network": ".network",
    "NetworkArgs": ".network",
    "RegionKeys": ".keys",
    "RegionKeysArgs": ".keys",
    # PostgreSQL
    "PostgresCluster": ".postgres_cluster",
    "PostgresClusterArgs": ".postgres_cluster",
    "CrossRegionReplicas": ".postgres_cluster",
    "CrossRegionReplicasArgs": ".postgres_cluster",
    "AuroraSecondaryCluster": ".postgres_cluster",
    "AuroraSecondaryClusterArgs": ".postgres_cluster",
    "BackupPlan": ".backup",
    "BackupPlanArgs": ".backup",
    "ProxyLayer": ".proxy_layer",
    "ProxyLayerArgs": ".proxy_layer",
    # cache, observability, audit (INFRA-B)
    "CacheLayer": ".cache_layer",
    "CacheLayerArgs": ".cache_layer",
    "GlobalDatastoreRole": ".cache_layer",
    "ObservabilityLayer": ".observability_layer",
    "ObservabilityLayerArgs": ".observability_layer",
    "AlarmThresholds": ".observability_layer",
    "AlarmSubscription": ".observability_layer",
    "RdsLogGroups": ".rds_log_groups",
    "RdsLogGroupsArgs": ".rds_log_groups",
    "AuditTrail": ".audit",
    "AuditTrailArgs": ".audit",
}

__all__ = [
    "AlarmSubscription",
    "AlarmThresholds",
    "AuditTrail",
    "AuditTrailArgs",
    "AuroraSecondaryCluster",
    "AuroraSecondaryClusterArgs",
    "BackupPlan",
    "BackupPlanArgs",
    "CacheLayer",
    "CacheLayerArgs",
    "ConfigError",
    "CrossRegionReplicas",
    "CrossRegionReplicasArgs",
    "GlobalDatastoreRole",
    "Network",
    "NetworkArgs",
    "ObservabilityLayer",
    "ObservabilityLayerArgs",
    "PostgresCluster",
    "PostgresClusterArgs",
    "ProxyLayer",
    "ProxyLayerArgs",
    "RdsLogGroups",
    "RdsLogGroupsArgs",
    "RegionKeys",
    "RegionKeysArgs",
    "RegionStack",
    "RegionStackArgs",
    "StackConfig",
    "config_reference",
    "load_stack_config",
    "parse_stack_config",
    "run",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static re-exports for type checkers and IDEs
    from .audit import AuditTrail, AuditTrailArgs
    from .backup import BackupPlan, BackupPlanArgs
    from .cache_layer import CacheLayer, CacheLayerArgs, GlobalDatastoreRole
    from .config import (
        ConfigError,
        StackConfig,
        config_reference,
        load_stack_config,
        parse_stack_config,
    )
    from .keys import RegionKeys, RegionKeysArgs
    from .network import Network, NetworkArgs
    from .observability_layer import (
        AlarmSubscription,
        AlarmThresholds,
        ObservabilityLayer,
        ObservabilityLayerArgs,
    )
    from .postgres_cluster import (
        AuroraSecondaryCluster,
        AuroraSecondaryClusterArgs,
        CrossRegionReplicas,
        CrossRegionReplicasArgs,
        PostgresCluster,
        PostgresClusterArgs,
    )
    from .program import run
    from .proxy_layer import ProxyLayer, ProxyLayerArgs
    from .rds_log_groups import RdsLogGroups, RdsLogGroupsArgs
    from .region_stack import RegionStack, RegionStackArgs
