"""AuroraAlarms: the Aurora-specific CloudWatch alarms of one region (Aurora variant only).

ObservabilityLayer's RDS catalogue watches instances the way RDS instances need it (CPU, memory,
connections, storage). Aurora differs where it matters for recovery: replica lag is
``AuroraReplicaLag`` (ms, per reader), the cross-region copy's age is ``AuroraGlobalDBRPOLag``
(ms, on a secondary cluster: the data a regional failover would lose), the volume is
``VolumeBytesUsed`` (cluster, grows to 128 TiB; there is no FreeStorageSpace to watch) and a
Serverless v2 instance that lives at its ceiling shows in ``ACUUtilization``. Kept apart from the
RDS catalogue so that changing one never shifts the other's alarms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True, kw_only=True)
class AuroraAlarmsArgs:
    """Inputs of :class:`AuroraAlarms`."""

    topic_arn: pulumi.Input[str]
    """SNS topic the alarms notify (the region's alarm topic). Required."""
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
    """AuroraGlobalDBRPOLag above this (ms): the stated Aurora RPO budget. Default: 5000."""
    volume_bytes: float = 64 * 1024**4
    """VolumeBytesUsed above this (half of Aurora's 128 TiB ceiling). Default: 64 TiB."""
    acu_utilization_percent: float = 90.0
    """ACUUtilization above this for 15 minutes: raise maxCapacityAcu. Default: 90."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every alarm. Default: {}."""

    def __post_init__(self) -> None:
        for name in ("replica_lag_ms", "rpo_lag_ms", "volume_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} {getattr(self, name)} is invalid; allowed: > 0")
        if not 0 < self.acu_utilization_percent <= 100:
            raise ValueError(
                f"acu_utilization_percent {self.acu_utilization_percent} is invalid; allowed: 0-100"
            )


class AuroraAlarms(pulumi.ComponentResource):
    """AuroraReplicaLag, AuroraGlobalDBRPOLag, VolumeBytesUsed and ACUUtilization alarms of a region."""

    alarm_names: list[pulumi.Output[str]]
    """Names of the alarms created."""

    def __init__(self, name: str, args: AuroraAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:AuroraAlarms", name, None, opts)
        tags = {**args.tags, "component": "AuroraAlarms"}
        self.alarm_names = []

        def alarm(
            suffix: str,
            metric: str,
            dims: Mapping[str, pulumi.Input[str]],
            threshold: float,
            description: str,
            *,
            periods: int = 3,
            missing: str = "missing",
            statistic: str = "Maximum",
        ) -> None:
            resource = aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}",
                namespace="AWS/RDS",
                metric_name=metric,
                dimensions=dict(dims),
                statistic=statistic,
                period=300 if suffix.startswith("acu") else 60,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                threshold=threshold,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data=missing,
                alarm_description=description,
                alarm_actions=[args.topic_arn],
                ok_actions=[args.topic_arn],
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.alarm_names.append(resource.name)

        cluster = {"DBClusterIdentifier": args.cluster_identifier}
        if args.global_member or args.global_secondary:
            alarm(
                "rpo-lag",
                "AuroraGlobalDBRPOLag",
                cluster,
                args.rpo_lag_ms,
                "Age of the newest data the secondary has (ms): what a regional failover would lose now. "
                "notBreaching when silent: only a secondary cluster publishes it, and the role moves.",
                missing="notBreaching",
            )
        alarm(
            "volume",
            "VolumeBytesUsed",
            cluster,
            args.volume_bytes,
            "Cluster volume past the planning threshold (Aurora's ceiling is 128 TiB).",
            periods=1,
            statistic="Average",
        )
        for label, ident in args.instances.items():
            instance = {"DBInstanceIdentifier": ident}
            alarm(
                f"{label}-replica-lag",
                "AuroraReplicaLag",
                instance,
                args.replica_lag_ms,
                "Reader behind the writer (ms). notBreaching when silent: the writer publishes none, and "
                "Aurora moves the writer role between instances.",
                missing="notBreaching",
            )
            if args.serverless:
                alarm(
                    f"acu-{label}",
                    "ACUUtilization",
                    instance,
                    args.acu_utilization_percent,
                    "Serverless v2 instance at its capacity ceiling for 15 minutes: raise maxCapacityAcu.",
                    statistic="Average",
                )
        self.register_outputs({})
