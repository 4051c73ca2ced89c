"""Network: the private subnets the database tier lives in, for one region.

Either adopts an existing VPC and its private subnets (prod), or creates a VPC with one private
subnet per availability zone (staging). Created VPCs get no internet gateway and no NAT: nothing
in the tier needs the internet. AWS APIs the rotation Lambda calls (Secrets Manager, KMS) are then
reached through optional interface endpoints, whose security group admits only the security
groups named through :meth:`Network.allow_endpoint_access`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ._iam import service_assume_role_policy
from ._security_groups import ingress_from, security_group

INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = ("secretsmanager", "kms")
"""Services given an interface endpoint when ``interface_endpoints`` is on."""


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    """Inputs of :class:`Network`."""

    region: str
    """Region of the VPC (endpoint service names include it). Required."""
    existing_vpc_id: str | None = None
    """Adopt this VPC instead of creating one. Default: None (create)."""
    existing_subnet_ids: Sequence[str] = ()
    """Private subnets of ``existing_vpc_id`` (>= 2, different AZs). Default: ()."""
    cidr_block: str = "10.40.0.0/16"
    """CIDR of a created VPC; subnets are /20 slices of it. Default: "10.40.0.0/16"."""
    az_count: int = 3
    """AZs (= private subnets) of a created VPC, >= 2 for Multi-AZ. Default: 3."""
    interface_endpoints: bool = False
    """Create Secrets Manager and KMS interface endpoints (private DNS). Default: False."""
    flow_logs_kms_key_arn: pulumi.Input[str] | None = None
    """CMK of a created VPC's flow-log group (REJECT and ACCEPT records, CloudWatch Logs).
    Default: None (flow logs are still written, with CloudWatch Logs' own encryption)."""
    flow_logs_retention_days: int = 365
    """Retention of that flow-log group (a CloudWatch Logs allowed value). Default: 365."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        if self.existing_vpc_id is not None and len(self.existing_subnet_ids) < 2:
            raise ValueError(
                f"existing_subnet_ids has {len(self.existing_subnet_ids)} subnets; allowed: >= 2 (two AZs)"
            )
        if self.existing_vpc_id is None and not 2 <= self.az_count <= 6:
            raise ValueError(f"az_count {self.az_count} is invalid; allowed: 2-6")
        net = ipaddress.ip_network(self.cidr_block)
        if net.prefixlen > 20 - (self.az_count - 1).bit_length():
            raise ValueError(f"cidr_block {self.cidr_block} is too small for {self.az_count} /20 subnets")


class Network(pulumi.ComponentResource):
    """A VPC's private subnets for the tier (adopted or created)."""

    vpc_id: pulumi.Output[str]
    """ID of the VPC."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Private subnet IDs (>= 2 AZs)."""
    endpoint_security_group_id: pulumi.Output[str] | None
    """Security group of the interface endpoints (None without endpoints)."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:Network", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "component": "Network"}
        self._endpoint_sg: aws.ec2.SecurityGroup | None = None

        if args.existing_vpc_id is not None:
            self.vpc_id = pulumi.Output.from_input(args.existing_vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(args.existing_subnet_ids))
            route_table_ids: list[pulumi.Output[str]] = []
        else:
            vpc = aws.ec2.Vpc(
                f"{name}-vpc",
                cidr_block=args.cidr_block,
                # Private DNS of interface endpoints and RDS endpoint names need both.
                enable_dns_support=True,
                enable_dns_hostnames=True,
                tags={**tags, "Name": f"{name}-vpc"},
                opts=child,
            )
            azs = aws.get_availability_zones_output(
                state="available", region=args.region, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            # One route table without routes beyond "local": private by construction.
            table = aws.ec2.RouteTable(
                f"{name}-private", vpc_id=vpc.id, tags={**tags, "Name": f"{name}-private"}, opts=child
            )
            slices = list(ipaddress.ip_network(args.cidr_block).subnets(new_prefix=20))
            subnet_ids: list[pulumi.Output[str]] = []
            for i in range(args.az_count):
                subnet = aws.ec2.Subnet(
                    f"{name}-private-{i + 1}",
                    vpc_id=vpc.id,
                    cidr_block=str(slices[i]),
                    availability_zone=azs.names.apply(lambda names, i=i: _nth_az(names, i)),
                    map_public_ip_on_launch=False,
                    tags={**tags, "Name": f"{name}-private-{i + 1}", "tier": "private"},
                    opts=child,
                )
                aws.ec2.RouteTableAssociation(
                    f"{name}-private-{i + 1}", route_table_id=table.id, subnet_id=subnet.id, opts=child
                )
                subnet_ids.append(subnet.id)
            self._vpc_hygiene(name, vpc, args, tags)
            self.vpc_id = vpc.id
            self.private_subnet_ids = pulumi.Output.all(*subnet_ids).apply(list)
            route_table_ids = [table.id]

        self.endpoint_security_group_id = None
        if args.interface_endpoints:
            sg = security_group(
                f"{name}-endpoints",
                "Interface endpoints: HTTPS from allowed security groups only",
                self.vpc_id,
                tags,
                self,
            )
            self._endpoint_sg = sg
            self.endpoint_security_group_id = sg.id
            for service in INTERFACE_ENDPOINT_SERVICES:
                aws.ec2.VpcEndpoint(
                    f"{name}-{service}",
                    vpc_id=self.vpc_id,
                    service_name=f"com.amazonaws.{args.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=self.private_subnet_ids,
                    security_group_ids=[sg.id],
                    tags={**tags, "Name": f"{name}-{service}"},
                    opts=child,
                )
        del route_table_ids  # gateway endpoints (S3) are not needed by the tier
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "endpoint_security_group_id": self.endpoint_security_group_id,
            }
        )

    def _vpc_hygiene(self, name: str, vpc: aws.ec2.Vpc, args: NetworkArgs, tags: Mapping[str, str]) -> None:
        """What a VPC we create owes its auditors (an adopted VPC's belong to its owner).

        The default security group loses AWS's allow-all rules (nothing may fall back on it), and
        flow logs record every accepted and rejected connection, for incident response.
        """
        child = pulumi.ResourceOptions(parent=self)
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags={**tags, "Name": f"{name}-default (unused)"}, opts=child
        )
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/commerce-db/vpc-flow-logs/{pulumi.get_stack()}/{name}",
            retention_in_days=args.flow_logs_retention_days,
            kms_key_id=args.flow_logs_kms_key_arn,
            tags=tags,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=service_assume_role_policy("vpc-flow-logs.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=group.arn.apply(_flow_log_delivery_policy),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=tags,
            opts=child,
        )

    def allow_endpoint_access(self, label: str, source_sg_id: pulumi.Input[str]) -> None:
        """Let ``source_sg_id`` reach the interface endpoints on 443 (no-op without endpoints)."""
        if self._endpoint_sg is None:
            return
        ingress_from(
            f"{self._name}-endpoints-from-{label}",
            security_group_id=self._endpoint_sg.id,
            source_security_group_id=source_sg_id,
            port=443,
            description=f"HTTPS from {label}",
            parent=self,
        )


def _flow_log_delivery_policy(group_arn: str) -> str:
    """What VPC Flow Logs needs to write to one log group (its streams), nothing more."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    "Resource": [group_arn, f"{group_arn}:*"],
                }
            ],
        }
    )


def _nth_az(names: Sequence[str] | None, i: int) -> str:
    names = list(names or [])
    if i >= len(names):
        raise ValueError(f"region has {len(names)} available AZs; network.azCount needs {i + 1}")
    return names[i]
