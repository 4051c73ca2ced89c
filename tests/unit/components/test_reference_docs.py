"""docs/reference.md carries every component Args table exactly as the code generates it."""

from __future__ import annotations

from pathlib import Path

import pytest
from commerce_db_components._fielddocs import markdown_table
from commerce_db_components.audit import AuditTrailArgs
from commerce_db_components.backup import BackupPlanArgs
from commerce_db_components.cache_layer import CacheLayerArgs
from commerce_db_components.keys import RegionKeysArgs
from commerce_db_components.network import NetworkArgs
from commerce_db_components.observability_layer import AlarmThresholds, ObservabilityLayerArgs
from commerce_db_components.postgres_cluster import (
    AuroraSecondaryClusterArgs,
    CrossRegionReplicasArgs,
    PostgresClusterArgs,
)
from commerce_db_components.proxy_layer import ProxyLayerArgs
from commerce_db_components.rds_log_groups import RdsLogGroupsArgs

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "reference.md"
ARGS = (
    NetworkArgs, RegionKeysArgs, PostgresClusterArgs, CrossRegionReplicasArgs, AuroraSecondaryClusterArgs,
    BackupPlanArgs, ProxyLayerArgs, CacheLayerArgs, ObservabilityLayerArgs, AlarmThresholds,
    RdsLogGroupsArgs, AuditTrailArgs,
)  # fmt: skip


@pytest.mark.parametrize("cls", ARGS, ids=lambda c: c.__name__)
def test_reference_has_the_generated_args_table(cls: type) -> None:
    assert markdown_table(cls) in REFERENCE.read_text(), (
        f"docs/reference.md: regenerate {cls.__name__}'s table with "
        f"python -m components._fielddocs {cls.__module__}:{cls.__name__}"
    )
