"""The example consumer program (examples/consumer) builds under mocks and wires what it promises."""

from __future__ import annotations

import importlib.util
import json
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from commerce_db.mock_engine import ProgramRun, run_program

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "consumer"
APP_SG = "sg-0c0ffee00000c0001"


def _as_pulumi_runs_it() -> None:
    """Pulumi's Python host executes the project's ``__main__.py`` with ``run_name="__main__"``."""
    runpy.run_path(str(EXAMPLE / "__main__.py"), run_name="__main__")


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    config = yaml.safe_load((EXAMPLE / "Pulumi.dev.yaml").read_text())["config"]
    return run_program(_as_pulumi_runs_it, project="checkout-history", stack="dev", config=config)


def test_importing_the_program_does_not_run_it() -> None:
    spec = importlib.util.spec_from_file_location("checkout_history_main", EXAMPLE / "__main__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # no Pulumi engine here: running main() would raise
    assert callable(module.main)


def _children_of(run: ProgramRun, component_type: str) -> list[Any]:
    return [r for r in run.resources if r.parent_type == component_type]


def test_project_files_are_consistent() -> None:
    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())
    stack = yaml.safe_load((EXAMPLE / "Pulumi.dev.yaml").read_text())["config"]
    assert project["runtime"]["name"] == "python"
    for key in ("vpcId", "privateSubnetIds", "appSecurityGroupId", "appRoleName", "opsTopicArn"):
        assert key in project["config"] and f"{project['name']}:{key}" in stack
    assert "commerce-db[infra] @ git+" in (EXAMPLE / "requirements.txt").read_text()


def test_registers_the_reused_components(run: ProgramRun) -> None:
    types = {r.type for r in run.resources}
    for token in ("commerce:db:RegionKeys", "commerce:db:PostgresCluster", "commerce:db:ProxyLayer",
                  "commerce:db:CacheLayer"):  # fmt: skip
        assert token in types
    assert all(r.region == "eu-west-1" for r in run.resources if r.type.startswith("aws:") and r.custom)
    assert set(run.outputs) >= {"writerEndpoint", "readerEndpoints", "redisPrimaryEndpoint", "dbSecretArn"}


def test_database_is_the_hardened_one_in_the_teams_vpc(run: ProgramRun) -> None:
    instances = run.of_type("aws:rds/instance:Instance")
    primary = next(i for i in instances if not i.inputs.get("replicateSourceDb"))
    replicas = [i for i in instances if i.inputs.get("replicateSourceDb")]
    assert len(replicas) == 1
    assert primary.inputs["storageEncrypted"] is True and primary.inputs["kmsKeyId"]
    assert primary.inputs["multiAz"] is True and primary.inputs["publiclyAccessible"] is False
    assert primary.inputs["instanceClass"] == "db.r7g.large"
    assert primary.inputs["backupRetentionPeriod"] == 14
    assert primary.inputs["deletionProtection"] is False  # Pulumi.dev.yaml turns it off
    subnet_group = run.of_type("aws:rds/subnetGroup:SubnetGroup")[0]
    assert subnet_group.inputs["subnetIds"] == ["subnet-0c0ffee00000b0001", "subnet-0c0ffee00000b0002"]


def test_app_security_group_admitted_only_by_reference(run: ProgramRun) -> None:
    rules = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    from_app = [r for r in rules if r.inputs.get("referencedSecurityGroupId") == APP_SG]
    ports = sorted(int(r.inputs["fromPort"]) for r in from_app)
    assert ports == [5432, 5432, 6379]  # proxy, read replicas, cache
    assert {r.parent_type for r in from_app} >= {"commerce:db:ProxyLayer", "commerce:db:CacheLayer"}
    assert not [r for r in rules if r.inputs.get("cidrIpv4") == "0.0.0.0/0"]
    # the app reaches the primary only through the proxy: on the DB side it is admitted to the readers' SG
    db_rules = [r for r in from_app if r.parent_type == "commerce:db:PostgresCluster"]
    assert [r.name for r in db_rules] == ["history-db-readers-from-checkout-app"]


def test_grant_connect_policy_on_the_app_role(run: ProgramRun) -> None:
    policies = [
        p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs.get("role") == "checkout-service"
    ]
    assert len(policies) == 1
    doc = policies[0].inputs["policy"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    statements = doc["Statement"]
    assert statements[0]["Action"] in ("rds-db:connect", ["rds-db:connect"])
    resources = statements[0]["Resource"]
    resources = [resources] if isinstance(resources, str) else resources
    assert resources and all(
        r.startswith("arn:aws:rds-db:eu-west-1:") and r.endswith("/app_user") for r in resources
    )


def test_database_log_groups_come_from_one_argument(run: ProgramRun) -> None:
    """Issue 14 item 5: cloudwatch_logs_retention_days creates the encrypted groups RDS exports
    into, with retention, before the instances (no hand-wired RdsLogGroups)."""
    instances = run.of_type("aws:rds/instance:Instance")
    groups = {g.inputs["name"]: g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for instance in instances:
        ident = instance.inputs["identifier"]
        for export in instance.inputs["enabledCloudwatchLogsExports"]:
            group = groups[f"/aws/rds/instance/{ident}/{export}"]
            assert group.inputs["retentionInDays"] == 90 and group.inputs["kmsKeyId"]
            assert run.waits_for(instance, group), (instance.name, group.name)
    assert [i.inputs["identifier"] for i in instances] == ["history-db-dev-1", "history-db-dev-2"]


def test_alarms_watch_the_components_and_go_to_the_teams_topic(run: ProgramRun) -> None:
    """Issue 14 items 6 and 7: ObservabilityLayer(watch=[db, proxy, cache]) with the team's topic."""
    ops = "arn:aws:sns:eu-west-1:123456789012:checkout-ops"
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    dims = [a.inputs.get("dimensions") or {} for a in alarms]
    assert any("DBInstanceIdentifier" in d for d in dims) and any("ProxyName" in d for d in dims)
    assert any(q.get("metric", {}).get("dimensions", {}).get("CacheClusterId") for a in alarms
               for q in a.inputs.get("metricQueries") or [])  # fmt: skip
    ticket = [a for a in alarms if a.inputs["tags"]["severity"] == "ticket"]
    assert ticket and all(a.inputs["alarmActions"] == [ops] for a in ticket)
    assert [t.name for t in run.of_type("aws:sns/topic:Topic")] == ["history-obs-page"]
