"""Resource options for the resources that hold data or guard it.

Databases, Aurora clusters, ElastiCache replication groups, KMS keys, backup vaults, audit buckets
and secrets are protected (``pulumi destroy`` and replacements stop instead of deleting them) and
retained on delete (removing them from the program leaves them in AWS). Every component applies
the same options to every such resource regardless of its current role, so a replica promoted
to primary (or a Global Datastore secondary made primary) stays protected after the role change.
"""

from __future__ import annotations

import pulumi


def stateful(parent: pulumi.Resource, protect: bool, **options: object) -> pulumi.ResourceOptions:
    """``ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect, **options)``."""
    return pulumi.ResourceOptions(
        parent=parent,
        protect=protect,
        retain_on_delete=protect,
        **options,  # type: ignore[arg-type]
    )
