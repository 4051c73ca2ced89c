"""Pulumi policy pack: ``pulumi preview --policy-pack policy/``.

A thin wrapper: the rules live in ``commerce_db/policy_rules`` (plain Python over resource type
and inputs) and are shared with the offline plan, so both report the same violations.
"""

import sys
from pathlib import Path

# Import the rule code straight from the repository checkout (no install needed in the pack's venv).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from commerce_db.policy_rules.pack import PACK_NAME, build_policies

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.ADVISORY,  # each policy sets its own level (mandatory/advisory)
    policies=build_policies(),
)
