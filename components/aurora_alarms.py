"""AuroraAlarms: the Aurora-specific CloudWatch alarms of one region (Aurora variant only).

ObservabilityLayer's RDS catalogue watches instances the way RDS instances need it (CPU, memory,
connections, storage). Aurora differs where it matters for recovery: replica lag is
``AuroraReplicaLag`` (ms, per reader), the cross-region copy's age is ``AuroraGlobalDBRPOLag``
(ms, on a secondary cluster: the data a regional failover would lose), the volume is
``VolumeBytesUsed`` (cluster, grows to 128 TiB; there is no FreeStorageSpace to watch) and a
Serverless v2 instance that lives at its ceiling shows in ``ACUUtilization``. Kept apart from the
RDS catalogue so that changing one never shifts the other's alarms.

Pages go to the region's page topic (ALARM and OK), tickets to its ticket topic (ALARM only), as
in ObservabilityLayer. In a secondary region the cluster is also the watcher of the primary region
(``watch_primary``): ``primary-lost`` pages from *this* region when the secondary stops hearing
from the primary, so losing the primary region pages someone although every alarm there is gone.
The cluster-level Global Database metrics (``AuroraGlobalDBProgressLag``, ``AuroraGlobalDBRPOLag``,
``AuroraGlobalDBReplicationLag``, ``AuroraGlobalDBDataTransferBytes``) are published in the
secondary regions, per secondary cluster (``DBClusterIdentifier``); see docs/alarms.md for the
AWS pages this relies on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True, kw_only=True)
class AuroraAlarmsArgs:
    """Inputs of :class:`AuroraAlarms`."""

    topic_arn: pulumi.Input[str]
    """SNS topic the tickets notify (the region's ``-alarms`` topic; ALARM only). Required."""
    page_topic_arn: pulumi.Input[str] | None = None
    """SNS topic the pages notify (the region's ``-page`` topic; ALARM and OK). None: pages go to
    ``topic_arn`` too. Default: None."""
    watch_primary: bool = False
    """This region holds a Global Database secondary that watches the primary region: add the
    ``primary-lost`` page (AuroraGlobalDBProgressLag of this cluster, silence counts as breaching).
    Default: False."""
    cluster_identifier: pulumi.Input[str]
    """The region's Aurora cluster. Required."""
    instances: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Label -> instance identifier (every instance: readers change with failovers). Default: {}."""
    global_secondary: bool = False
    """The cluster is a Global Database secondary (watch its RPO lag). Default: False."""
    global_member: bool = False
    """The cluster belongs to a Global Database (any role): watch RPO lag on whichever cluster is a
    secondary, since roles move with failovers. Default: False."""
    serverless: bool = True
    """Instances are Serverless v2 (watch ACUUtilization). Default: True."""
    replica_lag_ms: float = 2000.0
    """AuroraReplicaLag above this (ms, per instance that is a reader). Default: 2000."""
    rpo_lag_ms: float = 5000.0
    """AuroraGlobalDBRPOLag above this (ms) in 2 consecutive minutes pages: the stated Aurora RPO
    budget. Default: 5000."""
    primary_lost_ms: float = 60_000.0
    """AuroraGlobalDBProgressLag above this (ms) in 2 consecutive minutes, or no datapoint, pages
    from a secondary region: the primary region is lost or cut off. Typical lag is under a second,
    so a minute of it is no burst. Default: 60000."""
    volume_bytes: float = 64 * 1024**4
    """VolumeBytesUsed above this (half of Aurora's 128 TiB ceiling). Default: 64 TiB."""
    acu_utilization_percent: float = 90.0
    """ACUUtilization above this for 15 minutes: raise maxCapacityAcu. Default: 90."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every alarm. Default: {}."""

    def __post_init__(self) -> None:
        for name in ("replica_lag_ms", "rpo_lag_ms", "primary_lost_ms", "volume_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} {getattr(self, name)} is invalid; allowed: > 0")
        if not 0 < self.acu_utilization_percent <= 100:
            raise ValueError(
                f"acu_utilization_percent {self.acu_utilization_percent} is invalid; allowed: 0-100"
            )


PAGE_WINDOW = (2, 2)
"""(evaluation periods, datapoints to alarm) of the Aurora pages: two consecutive one-minute
datapoints. One would page on a single late or spiky datapoint; the RDS catalogue's shared 3 of 5
let breaches shorter than ~3 minutes go unpaged."""


@dataclass(frozen=True)
class AuroraAlarmSpec:
    """One Aurora alarm: what the catalogue (docs/alarms.md) and the component both read."""

    key: str
    metric: str
    scope: Literal["cluster", "instance"]
    statistic: str
    threshold_field: str
    severity: Literal["page", "ticket"]
    periods: int
    missing: str
    why_missing: str
    description: str
    where: Literal["every", "global", "secondary", "serverless"]
    """Which regions get it: every region, global members (any role), secondary regions only
    (``watch_primary``), or Serverless v2 instances."""
    period: int = 60


AURORA_ALARMS: tuple[AuroraAlarmSpec, ...] = (
    AuroraAlarmSpec(
        "primary-lost", "AuroraGlobalDBProgressLag", "cluster", "Maximum", "primary_lost_ms", "page",
        PAGE_WINDOW[0], "breaching",
        "breaching: the metric exists only on a secondary cluster and covers user and system "
        "transactions, so a replicating secondary always publishes it; silence means the link to the "
        "primary is gone (or the cluster left the Global Database), which is this alarm's subject",
        "Secondary cluster behind the primary (ms, user and system transactions): the primary region "
        "is lost or cut off; AWS says this lag keeps growing through a cross-Region disruption",
        "secondary",
    ),
    AuroraAlarmSpec(
        "rpo-lag", "AuroraGlobalDBRPOLag", "cluster", "Maximum", "rpo_lag_ms", "page", PAGE_WINDOW[0],
        "notBreaching",
        "notBreaching: only a secondary cluster publishes it and the role moves with failovers; a "
        "silent secondary is primary-lost's subject",
        "Age of the newest committed data the secondary has (ms): what a regional failover would lose now",
        "global",
    ),
    AuroraAlarmSpec(
        "volume", "VolumeBytesUsed", "cluster", "Average", "volume_bytes", "ticket", 1, "missing",
        "missing: the cluster publishes it while it exists",
        "Cluster volume past the planning threshold (Aurora's ceiling is 128 TiB)", "every",
    ),
    AuroraAlarmSpec(
        "replica-lag", "AuroraReplicaLag", "instance", "Maximum", "replica_lag_ms", "ticket", 3,
        "notBreaching",
        "notBreaching: the writer publishes none, and Aurora moves the writer role between instances",
        "Reader behind the writer (ms)", "every",
    ),
    AuroraAlarmSpec(
        "acu", "ACUUtilization", "instance", "Average", "acu_utilization_percent", "ticket", 3, "missing",
        "missing: every Serverless v2 instance publishes it while it runs",
        "Serverless v2 instance at its capacity ceiling for 15 minutes: raise maxCapacityAcu",
        "serverless", period=300,
    ),
)  # fmt: skip
"""Every Aurora alarm, in the order they are created."""


def aurora_catalogue_rows(args: AuroraAlarmsArgs) -> list[tuple[str, str, str, str, str]]:
    """(alarm, severity, metric, threshold, why) for docs/alarms.md, with ``args``' thresholds."""
    where = {
        "every": "every region",
        "global": "every Global Database member (the role moves)",
        "secondary": "secondary regions only, paging from there",
        "serverless": "Serverless v2 instances",
    }
    rows: list[tuple[str, str, str, str, str]] = []
    for spec in AURORA_ALARMS:
        value = float(getattr(args, spec.threshold_field))
        shown = f"{value / 1024**4:g} TiB" if spec.threshold_field == "volume_bytes" else f"{value:,.6g}"
        rows.append((
            f"Aurora {spec.scope}: {spec.key}", spec.severity, f"{spec.metric} ({spec.statistic})",
            f"> {shown}", f"{spec.description}. Where: {where[spec.where]}. Evaluation: {spec.periods} of "
            f"{spec.periods} periods of {spec.period} s. Missing data: {spec.why_missing}",
        ))  # fmt: skip
    return rows


class AuroraAlarms(pulumi.ComponentResource):
    """AuroraReplicaLag, AuroraGlobalDBRPOLag, AuroraGlobalDBProgressLag (secondary regions),
    VolumeBytesUsed and ACUUtilization alarms of a region."""

    alarm_names: list[pulumi.Output[str]]
    """Names of the alarms created."""

    def __init__(self, name: str, args: AuroraAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:AuroraAlarms", name, None, opts)
        tags = {**args.tags, "component": "AuroraAlarms"}
        self.alarm_names = []
        page = args.page_topic_arn if args.page_topic_arn is not None else args.topic_arn

        def alarm(suffix: str, spec: AuroraAlarmSpec, dims: Mapping[str, pulumi.Input[str]]) -> None:
            # Pages resolve themselves (ALARM and OK to the pager); tickets want the ALARM only.
            actions: dict[str, Any] = (
                {"alarm_actions": [page], "ok_actions": [page]}
                if spec.severity == "page"
                else {"alarm_actions": [args.topic_arn], "ok_actions": []}
            )
            resource = aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}",
                namespace="AWS/RDS",
                metric_name=spec.metric,
                dimensions=dict(dims),
                statistic=spec.statistic,
                period=spec.period,
                evaluation_periods=spec.periods,
                datapoints_to_alarm=spec.periods,
                threshold=float(getattr(args, spec.threshold_field)),
                comparison_operator="GreaterThanThreshold",
                treat_missing_data=spec.missing,
                alarm_description=(
                    f"{spec.description}. {spec.metric} {spec.statistic} > "
                    f"{float(getattr(args, spec.threshold_field)):g} in {spec.periods} of {spec.periods} "
                    f"periods of {spec.period} s. Severity: {spec.severity}. Missing data treated as "
                    f"{spec.why_missing}."
                ),
                **actions,
                tags={**tags, "severity": spec.severity},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.alarm_names.append(resource.name)

        wanted = {
            "every": True,
            "global": args.global_member or args.global_secondary or args.watch_primary,
            "secondary": args.watch_primary,
            "serverless": args.serverless,
        }
        cluster = {"DBClusterIdentifier": args.cluster_identifier}
        for spec in AURORA_ALARMS:
            if spec.scope == "cluster" and wanted[spec.where]:
                alarm(spec.key, spec, cluster)
        for label, ident in args.instances.items():
            instance = {"DBInstanceIdentifier": ident}
            for spec in AURORA_ALARMS:
                if spec.scope == "instance" and wanted[spec.where]:
                    # Names as before: "<label>-replica-lag", "acu-<label>".
                    alarm(f"acu-{label}" if spec.key == "acu" else f"{label}-{spec.key}", spec, instance)
        self.register_outputs({})
