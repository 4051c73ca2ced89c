"""The pulumi-policy adapter runs the same rules through pulumi_policy's own argument classes."""

from __future__ import annotations

from typing import Any

import pytest

pulumi_policy = pytest.importorskip("pulumi_policy")
from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UnknownValueError, unknown_checking_proxy  # noqa: E402

from commerce_db.policy_rules import RULES  # noqa: E402
from commerce_db.policy_rules.pack import build_policies, context_for, stack_from_urn  # noqa: E402

RDS = "aws:rds/instance:Instance"


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _urn(stack: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::commerce-db::{type_}::{name}"


def _args(
    stack: str, type_: str, name: str, props: dict[str, Any], config: dict[str, Any] | None = None
) -> Any:
    provider = PolicyProviderResource("pulumi:providers:aws", {"region": "eu-west-1"}, "urn:prov", "aws-euw1")
    return ResourceValidationArgs(
        type_, unknown_checking_proxy(props), _urn(stack, type_, name), name, _opts(), provider, config or {}
    )


def _policy(name: str, kind: type) -> Any:
    return next(p for p in build_policies() if p.name == name and isinstance(p, kind))


def _run(policy: Any, args: Any) -> list[tuple[str, str | None]]:
    reported: list[tuple[str, str | None]] = []
    policy.validate(args, lambda msg, urn=None: reported.append((msg, urn)))
    return reported


def test_every_rule_becomes_a_policy_with_its_enforcement() -> None:
    policies = build_policies()
    assert {p.name for p in policies} == {r.name for r in RULES}
    for rule in RULES:
        p = next(x for x in policies if x.name == rule.name)
        expected = (
            EnforcementLevel.MANDATORY if rule.enforcement.value == "mandatory" else EnforcementLevel.ADVISORY
        )
        assert p.enforcement_level == expected
        assert isinstance(p, StackValidationPolicy if rule.check_stack else ResourceValidationPolicy)


def test_resource_policy_reports_violation_and_region_from_provider() -> None:
    policy = _policy("no-public-database", ResourceValidationPolicy)
    bad = _run(policy, _args("staging", RDS, "db", {"publiclyAccessible": True}))
    assert len(bad) == 1 and "publicly_accessible is true" in bad[0][0] and "eu-west-1" in bad[0][0]
    assert _run(policy, _args("staging", RDS, "db", {"publiclyAccessible": False})) == []
    # Other resource types are ignored.
    assert _run(policy, _args("staging", "aws:s3/bucket:Bucket", "b", {"publiclyAccessible": True})) == []


def test_prod_rules_follow_stack_name_or_policy_config() -> None:
    policy = _policy("prod-deletion-protection", ResourceValidationPolicy)
    props = {"deletionProtection": False, "backupRetentionPeriod": 7}
    assert _run(policy, _args("prod", RDS, "db", props))
    assert _run(policy, _args("staging", RDS, "db", props)) == []
    assert _run(policy, _args("blue", RDS, "db", props, {"environment": "prod"}))
    assert stack_from_urn(_urn("prod", RDS, "x")) == "prod"
    assert context_for(_urn("qa", RDS, "x"), {"environment": "prod"}).is_prod


def test_unknown_values_at_preview_raise_for_the_runtime_to_skip() -> None:
    # pulumi_policy's runtime catches UnknownValueError and records "can't run during preview".
    policy = _policy("no-public-database", ResourceValidationPolicy)
    with pytest.raises(UnknownValueError):
        _run(policy, _args("prod", RDS, "db", {"publiclyAccessible": UNKNOWN_BOOLEAN_VALUE}))


def _policy_resource(type_: str, name: str, props: dict[str, Any]) -> PolicyResource:
    return PolicyResource(type_, props, _urn("prod", type_, name), name, _opts(), None, None, [], {})


def _rds_alarm(name: str, metric: str, instance: str) -> PolicyResource:
    props = {"namespace": "AWS/RDS", "metricName": metric, "dimensions": {"DBInstanceIdentifier": instance}}
    return _policy_resource("aws:cloudwatch/metricAlarm:MetricAlarm", name, props)


def test_stack_policy_db_alarms_reports_against_the_instance_urn() -> None:
    policy = _policy("db-alarms", StackValidationPolicy)
    db = _policy_resource(RDS, "primary", {"identifier": "cdb-primary", "id": "cdb-primary"})
    cpu = _rds_alarm("cpu", "CPUUtilization", "cdb-primary")
    reported = _run(policy, StackValidationArgs([db, cpu]))
    assert len(reported) == 1
    assert "FreeStorageSpace" in reported[0][0] and reported[0][1] == db.urn
    storage = _rds_alarm("storage", "FreeStorageSpace", "cdb-primary")
    assert _run(policy, StackValidationArgs([db, cpu, storage])) == []


def test_policy_pack_entrypoint_boots_and_serves() -> None:
    """``policy/__main__.py`` builds the pack and starts the analyzer (prints its gRPC port)."""
    import subprocess
    import sys
    from pathlib import Path

    main_py = Path(__file__).resolve().parents[3] / "policy" / "__main__.py"
    proc = subprocess.Popen(
        [sys.executable, str(main_py)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=main_py.parent,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.isdigit(), (first, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_protected_data_policy_reads_the_resource_options() -> None:
    policy = _policy("prod-protected-data", ResourceValidationPolicy)

    def args(stack: str, protect: bool) -> Any:
        provider = PolicyProviderResource("pulumi:providers:aws", {"region": "eu-west-1"}, "urn:prov", "aws")
        opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
        return ResourceValidationArgs(
            RDS, unknown_checking_proxy({}), _urn(stack, RDS, "db"), "db", opts, provider, {}
        )

    reported = _run(policy, args("prod", False))
    assert len(reported) == 1 and "protectResources" in reported[0][0]
    assert _run(policy, args("prod", True)) == []
    assert _run(policy, args("staging", False)) == []
