"""Local stand-in for the AWS data tier: PostgreSQL primary + streaming hot standby, PgBouncer in
transaction mode (plays RDS Proxy), Redis primary + replica, all from local binaries on free
loopback ports in a temp dir. Used by the integration tests, ``commerce-db demo`` and ``bench``.
"""

from commerce_db.localtier.binaries import Binaries, find_binaries
from commerce_db.localtier.errors import LocalTierError, MissingBinaryError
from commerce_db.localtier.external import ExternalTier
from commerce_db.localtier.tier import DatabaseDSNs, LocalTier

__all__ = [
    "Binaries",
    "DatabaseDSNs",
    "ExternalTier",
    "LocalTier",
    "LocalTierError",
    "MissingBinaryError",
    "find_binaries",
]
