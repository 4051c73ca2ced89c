"""WriterDns: one writer name for the applications that a regional failover does not change.

``writer.<zone>`` (``<zone>`` = ``<stack>.db.internal``, a Route 53 private hosted zone associated
with every region's VPC) has one weighted CNAME record per region, pointing at that region's
writer target (its RDS Proxy, pre-created in replica regions). Each record carries a Route 53
health check of type ``RECOVERY_CONTROL`` bound to a Route 53 ARC routing control for that region;
Route 53 answers only with records whose control is On, so exactly the writer region's record is
served while exactly one control is On. A safety rule refuses any change that would leave none On.

Why ARC and not repointing a record: ``ChangeResourceRecordSets`` is Route 53's control plane,
which lives in us-east-1 (AWS Fault Isolation Boundaries, "Global services"); AWS advises against
control-plane calls in a recovery path. Routing control states are ARC's data plane, served by
five regional cluster endpoints, and health-check answers are Route 53's data plane. So a failover
is one ``update-routing-control-states`` call against any reachable cluster endpoint: the records,
health checks and this component never change (the failover test asserts it).

ARC's configuration API (cluster, control panel, controls, safety rule) exists only in us-west-2:
those children use ``arc_provider``. Records, zone and health checks are global (Route 53).

Cost: the ARC cluster is billed per hour (about $2.50, ~$1,800/month); health checks and the zone
cost cents. Routing controls start Off: after the first ``up`` the operator turns the writer
region's control On (``commerce-db`` prints the command in docs/operations.md); until then Route 53
treats all records as healthy and answers with any of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

WRITER_RECORD = "writer"
"""Record name of the writer inside the zone."""


def region_code(region: str) -> str:
    """``us-east-1`` -> ``use1`` (the same codes as the RegionStacks' logical names)."""
    from .region_stack import region_code as _code

    return _code(region)


@dataclass(frozen=True, kw_only=True)
class WriterDnsArgs:
    """Inputs of :class:`WriterDns`."""

    zone_name: str
    """Private hosted zone, e.g. ``prod.db.internal``. Required."""
    targets: Mapping[str, pulumi.Input[str]]
    """Region -> host name that region's writes go to once it is the writer (its RDS Proxy
    endpoint). At least 2 regions. Required."""
    vpcs: Mapping[str, pulumi.Input[str]]
    """Region -> VPC id the zone is associated with (every region of ``targets``). Required."""
    home_region: str
    """The region whose VPC the zone is created with (the stack's pinned home region; it never
    moves, so the zone's creation VPC never changes). When it is not in ``vpcs`` (the home region
    was dropped after a failover) the zone keeps the association it was created with. Required."""
    arc_provider: pulumi.ProviderResource
    """Provider in us-west-2, where ARC's configuration API lives. Required."""
    ttl_seconds: int = 10
    """TTL of the writer records: how long resolvers may keep the old writer after a switch.
    Default: 10."""
    wait_period_ms: int = 5000
    """Safety rule's evaluation window. Default: 5000."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"(?=.{1,200}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}", self.zone_name):
            raise ValueError(f"zone_name {self.zone_name!r} is invalid; allowed: a lower-case DNS name")
        if len(self.targets) < 2:
            raise ValueError(
                f"targets has {len(self.targets)} region(s); a writer name across failovers needs >= 2"
            )
        missing = sorted(set(self.targets) - set(self.vpcs))
        if missing:
            raise ValueError(f"vpcs lacks {missing}: every region of targets needs its VPC in the zone")
        if not 0 <= self.ttl_seconds <= 300:
            raise ValueError(f"ttl_seconds {self.ttl_seconds} is invalid; allowed: 0-300")


class WriterDns(pulumi.ComponentResource):
    """Private zone + per-region weighted records gated by Route 53 ARC routing controls."""

    name: pulumi.Output[str]
    """The writer's DNS name (``writer.<zone>``): what applications connect to."""
    routing_control_arns: dict[str, pulumi.Output[str]]
    """Region -> ARN of its routing control (the failover switches these)."""
    cluster_arn: pulumi.Output[str]
    """ARC cluster ARN."""
    cluster_endpoints: pulumi.Output[list[dict[str, str]]]
    """The ARC cluster's five regional endpoints ({endpoint, region}): the data plane a failover
    uses. Keep them with the runbook; looking them up needs ARC's configuration API (us-west-2)."""
    zone_id: pulumi.Output[str]
    """Private hosted zone id."""

    def __init__(self, name: str, args: WriterDnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:WriterDns", name, None, opts)
        tags = {**args.tags, "component": "WriterDns"}
        child = pulumi.ResourceOptions(parent=self)
        arc = pulumi.ResourceOptions(parent=self, provider=args.arc_provider)
        slug = args.zone_name.split(".", 1)[0]
        cluster = aws.route53recoverycontrol.Cluster(
            f"{name}-arc", name=f"cdb-{slug}-writer"[:64], tags=tags, opts=arc
        )
        panel = aws.route53recoverycontrol.ControlPanel(
            f"{name}-panel", cluster_arn=cluster.arn, name=f"cdb-{slug}-writer"[:64], tags=tags, opts=arc
        )
        # Children are named by region code, never by role: a failover changes no URN here.
        controls = {
            region: aws.route53recoverycontrol.RoutingControl(
                f"{name}-{region_code(region)}",
                cluster_arn=cluster.arn,
                control_panel_arn=panel.arn,
                name=f"cdb-{slug}-writer-{region}",
                opts=arc,
            )
            for region in sorted(args.targets)
        }
        aws.route53recoverycontrol.SafetyRule(
            f"{name}-at-least-one",
            control_panel_arn=panel.arn,
            name=f"cdb-{slug}-writer-at-least-one-region",
            asserted_controls=[c.arn for c in controls.values()],
            # Refuse any update that leaves no region On (Route 53 would then answer with every
            # record, the replicas included). Switch regions in one call: new On, old Off.
            rule_config=aws.route53recoverycontrol.SafetyRuleRuleConfigArgs(
                inverted=False, threshold=1, type="ATLEAST"
            ),
            wait_period_ms=args.wait_period_ms,
            tags=tags,
            opts=arc,
        )
        home_vpc = args.vpcs.get(args.home_region) or next(iter(args.vpcs.values()))
        home_region = args.home_region if args.home_region in args.vpcs else next(iter(args.vpcs))
        zone = aws.route53.Zone(
            f"{name}-zone",
            name=args.zone_name,
            comment="commerce-db writer name (switched by Route 53 ARC routing controls)",
            vpcs=[aws.route53.ZoneVpcArgs(vpc_id=home_vpc, vpc_region=home_region)],
            tags=tags,
            # Other VPCs join through ZoneAssociation (the provider requires ignoring the inline
            # list then); the creation VPC is the pinned home region's and never changes.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["vpcs"]),
        )
        for region, vpc_id in sorted(args.vpcs.items()):
            if region == args.home_region:
                continue
            aws.route53.ZoneAssociation(
                f"{name}-{region_code(region)}-vpc",
                zone_id=zone.zone_id,
                vpc_id=vpc_id,
                vpc_region=region,
                opts=child,
            )
        for region, target in sorted(args.targets.items()):
            code = region_code(region)
            check = aws.route53.HealthCheck(
                f"{name}-{code}-hc",
                type="RECOVERY_CONTROL",
                routing_control_arn=controls[region].arn,
                reference_name=f"writer-{code}"[:64],
                tags={**tags, "Name": f"cdb-{slug}-writer-{region}"},
                opts=child,
            )
            aws.route53.Record(
                f"{name}-{code}",
                zone_id=zone.zone_id,
                name=f"{WRITER_RECORD}.{args.zone_name}",  # the FQDN: unique per stack
                type="CNAME",
                ttl=args.ttl_seconds,
                records=[target],
                set_identifier=region,
                weighted_routing_policies=[aws.route53.RecordWeightedRoutingPolicyArgs(weight=1)],
                health_check_id=check.id,
                opts=child,
            )
        self.name = pulumi.Output.from_input(f"{WRITER_RECORD}.{args.zone_name}")
        self.routing_control_arns = {region: c.arn for region, c in controls.items()}
        self.cluster_arn = cluster.arn
        self.cluster_endpoints = cluster.cluster_endpoints.apply(
            lambda eps: [{"endpoint": e.endpoint or "", "region": e.region or ""} for e in eps or []]
        )
        self.zone_id = zone.zone_id
        self.register_outputs(
            {
                "name": self.name,
                "routing_control_arns": self.routing_control_arns,
                "cluster_arn": self.cluster_arn,
                "zone_id": self.zone_id,
            }
        )
