"""Security-group building blocks the components share.

Every rule here references another security group, never a CIDR: the tier is only ever opened to
named groups. Groups are created without inline rules, so the provider drops AWS's default
allow-all egress and each rule is a separate resource (``aws.vpc.SecurityGroupIngressRule`` /
``EgressRule``) that can be added later without replacing the group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws


def security_group(
    name: str,
    description: str,
    vpc_id: pulumi.Input[str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.ec2.SecurityGroup:
    """Security group ``name`` (also its ``Name`` tag) in ``vpc_id``, with no rules."""
    return aws.ec2.SecurityGroup(
        name,
        description=description,
        vpc_id=vpc_id,
        tags={**tags, "Name": name},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def ingress_from(
    name: str,
    *,
    security_group_id: pulumi.Input[str],
    source_security_group_id: pulumi.Input[str],
    port: int,
    description: str,
    parent: pulumi.Resource,
) -> aws.vpc.SecurityGroupIngressRule:
    """Rule ``name``: admit TCP ``port`` on ``security_group_id`` from ``source_security_group_id``."""
    args = _tcp_rule(security_group_id, source_security_group_id, port, description)
    return aws.vpc.SecurityGroupIngressRule(name, **args, opts=pulumi.ResourceOptions(parent=parent))


def egress_to(
    name: str,
    *,
    security_group_id: pulumi.Input[str],
    destination_security_group_id: pulumi.Input[str],
    port: int,
    description: str,
    parent: pulumi.Resource,
) -> aws.vpc.SecurityGroupEgressRule:
    """Rule ``name``: let ``security_group_id`` open TCP ``port`` to ``destination_security_group_id``."""
    args = _tcp_rule(security_group_id, destination_security_group_id, port, description)
    return aws.vpc.SecurityGroupEgressRule(name, **args, opts=pulumi.ResourceOptions(parent=parent))


def _tcp_rule(
    security_group_id: pulumi.Input[str], peer: pulumi.Input[str], port: int, description: str
) -> dict[str, Any]:
    """Arguments of a one-port TCP rule between two security groups (ingress and egress alike)."""
    return {
        "security_group_id": security_group_id,
        "referenced_security_group_id": peer,
        "ip_protocol": "tcp",
        "from_port": port,
        "to_port": port,
        "description": description,
    }
