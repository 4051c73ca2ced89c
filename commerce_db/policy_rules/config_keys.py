"""Which policy a config key guards, for rejections that happen before any resource exists.

The stack config (``components/config.py``) already refuses some values the policies forbid
(e.g. ``postgres.deletionProtection: false`` in prod, ``backup.retentionDays: 0``). The plan
reports such a rejection as a violation of the matching policy, so breaking a rule in a stack
file gives the policy's name and message whichever layer catches it first.
"""

from __future__ import annotations

from commerce_db.policy_rules.model import Rule
from commerce_db.policy_rules.rules import RULES

# (substring of the lower-cased config key, rule name); first match wins.
CONFIG_KEY_RULES: tuple[tuple[str, str], ...] = (
    ("deletionprotection", "prod-deletion-protection"),
    ("finalsnapshot", "prod-final-snapshot"),
    ("publiclyaccessible", "no-public-database"),
    ("publicaccess", "no-public-database"),
    ("multiaz", "prod-multi-az"),
    ("backup.retention", "backup-retention"),
    ("backupretention", "backup-retention"),
    ("storageencrypted", "encryption-at-rest-rds"),
    ("atrestencryption", "encryption-at-rest-elasticache"),
    ("transitencryption", "encryption-in-transit-elasticache"),
    ("requiretls", "proxy-require-tls"),
    ("forcessl", "rds-force-ssl"),
    ("authtoken", "redis-auth-token"),
    ("performanceinsights", "performance-insights"),
    ("databaseinsights", "performance-insights"),
)


def rule_for_config_key(key: str | None) -> Rule | None:
    """The policy guarding config ``key`` (``"postgres.deletionProtection"``), if any."""
    if not key:
        return None
    k = key.lower().removeprefix("commerce-db:")
    for needle, name in CONFIG_KEY_RULES:
        if needle in k:
            return next(r for r in RULES if r.name == name)
    return None
