"""IAM documents and roles the components share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


def service_assume_role_policy(service: str) -> str:
    """Trust policy (JSON) letting the AWS ``service`` principal (``rds.amazonaws.com``...) assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


@dataclass(frozen=True)
class ServiceRole:
    """A service role with its managed-policy attachments (see :func:`service_role`)."""

    role: aws.iam.Role
    attachments: tuple[aws.iam.RolePolicyAttachment, ...]
    arn: pulumi.Output[str]
    """The role's ARN, resolved only once every attachment exists: AWS services (RDS enhanced
    monitoring, Lambda in a VPC, AWS Backup) check the role's permissions when they first use it."""


def service_role(
    name: str,
    *,
    service: str,
    description: str,
    attachments: Mapping[str, str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> ServiceRole:
    """IAM role ``name`` that ``service`` may assume, with one ``RolePolicyAttachment`` per entry of
    ``attachments`` (logical name -> managed policy ARN). Consumers that pass :attr:`ServiceRole.arn`
    to a service wait for the attachments, not only for the role."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        name,
        description=description,
        assume_role_policy=service_assume_role_policy(service),
        tags=dict(tags),
        opts=child,
    )
    attached = tuple(
        aws.iam.RolePolicyAttachment(logical, role=role.name, policy_arn=arn, opts=child)
        for logical, arn in attachments.items()
    )
    arn = pulumi.Output.all(role.arn, *(a.id for a in attached)).apply(lambda a: str(a[0]))
    return ServiceRole(role=role, attachments=attached, arn=arn)
