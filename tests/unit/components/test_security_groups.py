"""commerce_db_components._security_groups under the mock engine: groups and rules reference groups,
never CIDRs."""

from __future__ import annotations

import pulumi
from commerce_db_components._security_groups import egress_to, ingress_from, security_group

from commerce_db.mock_engine import run_program


class _Parent(pulumi.ComponentResource):
    def __init__(self) -> None:
        super().__init__("test:index:Parent", "parent", None, None)
        sg = security_group("db-sg", "PostgreSQL from apps", "vpc-1", {"team": "db"}, self)
        ingress_from(
            "db-from-app", security_group_id=sg.id, source_security_group_id="sg-app", port=5432,
            description="PostgreSQL from app", parent=self,
        )  # fmt: skip
        egress_to(
            "db-to-peer", security_group_id=sg.id, destination_security_group_id="sg-peer", port=6379,
            description="Redis to peer", parent=self,
        )  # fmt: skip


def test_group_and_rules_register_with_a_parent_and_security_group_references_only() -> None:
    run = run_program(_Parent, config={"aws:region": "us-east-1"})
    by_name = {r.name: r for r in run.resources}
    sg, ingress, egress = by_name["db-sg"], by_name["db-from-app"], by_name["db-to-peer"]
    assert sg.inputs["tags"] == {"team": "db", "Name": "db-sg"} and sg.inputs["vpcId"] == "vpc-1"
    assert "ingress" not in sg.inputs and "egress" not in sg.inputs  # no inline rules
    assert ingress.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    assert egress.type == "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
    for rule, ref, port in ((ingress, "sg-app", 5432.0), (egress, "sg-peer", 6379.0)):
        assert rule.parent_name == "parent"
        assert rule.inputs["referencedSecurityGroupId"] == ref and "cidrIpv4" not in rule.inputs
        inputs = rule.inputs
        assert (inputs["ipProtocol"], inputs["fromPort"], inputs["toPort"]) == ("tcp", port, port)
