"""Every field of every component Args dataclass documents its default (or says it is required)."""

from __future__ import annotations

import dataclasses

import pytest
from commerce_db_components._fielddocs import field_docs, undocumented
from commerce_db_components.audit import AuditTrailArgs
from commerce_db_components.backup import BackupPlanArgs
from commerce_db_components.cache_layer import CacheLayerArgs
from commerce_db_components.keys import RegionKeysArgs
from commerce_db_components.network import NetworkArgs
from commerce_db_components.observability_layer import (
    AlarmSubscription,
    AlarmThresholds,
    ObservabilityLayerArgs,
)
from commerce_db_components.postgres_cluster import (
    AuroraSecondaryClusterArgs,
    CrossRegionReplicasArgs,
    PostgresClusterArgs,
)
from commerce_db_components.proxy_layer import ProxyLayerArgs
from commerce_db_components.rds_log_groups import RdsLogGroupsArgs
from commerce_db_components.region_stack import RegionStackArgs

ARGS_CLASSES = (
    NetworkArgs, RegionKeysArgs, PostgresClusterArgs, CrossRegionReplicasArgs, AuroraSecondaryClusterArgs,
    BackupPlanArgs, ProxyLayerArgs, CacheLayerArgs, AuditTrailArgs, ObservabilityLayerArgs, AlarmThresholds,
    AlarmSubscription, RdsLogGroupsArgs, RegionStackArgs,
)  # fmt: skip


@pytest.mark.parametrize("cls", ARGS_CLASSES, ids=lambda c: c.__name__)
def test_every_args_field_documents_its_default(cls: type) -> None:
    assert undocumented(cls) == []
    assert len(field_docs(cls)) == len(dataclasses.fields(cls))  # every field has a docstring at all
