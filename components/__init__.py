"""Typed Pulumi ComponentResources for the commerce-db database tier.

Every public component and its Args is re-exported here (``from components import PostgresCluster``).
The re-exports resolve lazily (PEP 562), so ``import components.config`` stays cheap and does not
pull in every ``pulumi_aws`` submodule the components use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # configuration
    "ConfigError": "components.config",
    "StackConfig": "components.config",
    "load_stack_config": "components.config",
    "parse_stack_config": "components.config",
    "config_reference": "components.config",
    # program and per-region composition
    "run": "components.program",
    "RegionStack": "components.region_stack",
    "RegionStackArgs": "components.region_stack",
    # foundations
    "Network": "components.network",
    "NetworkArgs": "components.network",
    "RegionKeys": "components.keys",
    "RegionKeysArgs": "components.keys",
    # PostgreSQL
    "PostgresCluster": "components.postgres_cluster",
    "PostgresClusterArgs": "components.postgres_cluster",
    "CrossRegionReplicas": "components.postgres_cluster",
    "CrossRegionReplicasArgs": "components.postgres_cluster",
    "AuroraSecondaryCluster": "components.postgres_cluster",
    "AuroraSecondaryClusterArgs": "components.postgres_cluster",
    "BackupPlan": "components.backup",
    "BackupPlanArgs": "components.backup",
    "ProxyLayer": "components.proxy_layer",
    "ProxyLayerArgs": "components.proxy_layer",
    # cache, observability, audit (INFRA-B)
    "CacheLayer": "components.cache_layer",
    "CacheLayerArgs": "components.cache_layer",
    "GlobalDatastoreRole": "components.cache_layer",
    "ObservabilityLayer": "components.observability_layer",
    "ObservabilityLayerArgs": "components.observability_layer",
    "AlarmThresholds": "components.observability_layer",
    "AlarmSubscription": "components.observability_layer",
    "RdsLogGroups": "components.rds_log_groups",
    "RdsLogGroupsArgs": "components.rds_log_groups",
    "AuditTrail": "components.audit",
    "AuditTrailArgs": "components.audit",
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
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static re-exports for type checkers and IDEs
    from components.audit import AuditTrail, AuditTrailArgs
    from components.backup import BackupPlan, BackupPlanArgs
    from components.cache_layer import CacheLayer, CacheLayerArgs, GlobalDatastoreRole
    from components.config import (
        ConfigError,
        StackConfig,
        config_reference,
        load_stack_config,
        parse_stack_config,
    )
    from components.keys import RegionKeys, RegionKeysArgs
    from components.network import Network, NetworkArgs
    from components.observability_layer import (
        AlarmSubscription,
        AlarmThresholds,
        ObservabilityLayer,
        ObservabilityLayerArgs,
    )
    from components.postgres_cluster import (
        AuroraSecondaryCluster,
        AuroraSecondaryClusterArgs,
        CrossRegionReplicas,
        CrossRegionReplicasArgs,
        PostgresCluster,
        PostgresClusterArgs,
    )
    from components.program import run
    from components.proxy_layer import ProxyLayer, ProxyLayerArgs
    from components.rds_log_groups import RdsLogGroups, RdsLogGroupsArgs
    from components.region_stack import RegionStack, RegionStackArgs
