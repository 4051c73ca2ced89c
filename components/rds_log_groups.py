"""RdsLogGroups: the CloudWatch log groups RDS exports PostgreSQL logs into, created *before* the DB.

RDS writes exported logs to ``/aws/rds/instance/<id>/<log>`` (``/aws/rds/cluster/<id>/<log>``
for Aurora) and creates that group itself, never-expiring and without a CMK, if it does not exist
when the instance starts exporting. So the program creates the groups first, with the exact names,
from identifiers it chose itself (plain strings, known before the DB exists), and makes the DB
resources depend on :attr:`RdsLogGroups.log_groups`. Then retention and encryption are ours.

Typical wiring::

    logs = RdsLogGroups(f"{name}-rds-logs", RdsLogGroupsArgs(identifiers={"primary": "prod-db"},
                        kms_key_arn=key.arn), opts=child)
    db = aws.rds.Instance(..., identifier="prod-db", opts=ResourceOptions(depends_on=logs.log_groups))
    ObservabilityLayer(..., ObservabilityLayerArgs(..., postgres_log_groups=logs.postgresql_log_group_names))
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from .validation import check_log_retention

RDS_LOG_EXPORTS = ("postgresql", "upgrade", "iam-db-auth-error")
"""Log types RDS for PostgreSQL can export to CloudWatch Logs."""

_IDENTIFIER_RE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def rds_log_group_name(
    identifier: str, export: str, *, kind: Literal["instance", "cluster"] = "instance"
) -> str:
    """The exact log group name RDS exports ``export`` logs of ``identifier`` to."""
    return f"/aws/rds/{kind}/{identifier}/{export}"


@dataclass(frozen=True, kw_only=True)
class RdsLogGroupsArgs:
    """Inputs of :class:`RdsLogGroups`."""

    identifiers: Mapping[str, str]
    """Label -> DB instance (or Aurora cluster) identifier. Plain strings on purpose: the groups
    must exist before the DB does. Required (may be empty)."""
    kind: Literal["instance", "cluster"] = "instance"
    """``instance`` for RDS instances and replicas, ``cluster`` for Aurora clusters. Default: "instance"."""
    exports: Sequence[str] = ("postgresql", "upgrade")
    """Exported log types; must match the DB's ``enabled_cloudwatch_logs_exports``.
    Default: ("postgresql", "upgrade")."""
    retention_days: int = 365
    """Retention (a CloudWatch Logs allowed value). Default: 365."""
    kms_key_arn: pulumi.Input[str] | None = None
    """CMK for the groups; its key policy must allow ``logs.<region>.amazonaws.com``.
    Default: None (CloudWatch Logs' own encryption)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every group. Default: {}."""

    def __post_init__(self) -> None:
        if self.kind not in ("instance", "cluster"):
            raise ValueError(f"kind {self.kind!r} is invalid; allowed: 'instance', 'cluster'")
        for label, ident in self.identifiers.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,47}", label):
                raise ValueError(
                    f"identifiers label {label!r} is invalid; "
                    "allowed: 1-48 lowercase letters, digits, hyphens"
                )
            if not isinstance(ident, str) or len(ident) > 63 or not _IDENTIFIER_RE.fullmatch(ident):
                raise ValueError(
                    f"identifiers[{label!r}] {ident!r} is invalid; allowed: a plain DB identifier string "
                    "(1-63 lowercase letters, digits, single hyphens, starting with a letter), not an Output"
                )
        for export in self.exports:
            if export not in RDS_LOG_EXPORTS:
                raise ValueError(
                    f"exports entry {export!r} is invalid; allowed: {', '.join(RDS_LOG_EXPORTS)}"
                )
        check_log_retention("retention_days", self.retention_days)


class RdsLogGroups(pulumi.ComponentResource):
    """One log group per DB identifier and exported log type, with retention and KMS."""

    log_groups: list[aws.cloudwatch.LogGroup]
    """Every group created; pass as ``depends_on`` of the DB resources."""
    log_group_names: list[pulumi.Output[str]]
    """Names of every group created."""
    postgresql_log_group_names: dict[str, pulumi.Output[str]]
    """Label -> name of the ``postgresql`` group (for ObservabilityLayer's audit shipping)."""

    def __init__(self, name: str, args: RdsLogGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:db:RdsLogGroups", name, None, opts)
        tags = {**args.tags, "component": "RdsLogGroups"}
        self.log_groups = []
        self.postgresql_log_group_names = {}
        for label, ident in args.identifiers.items():
            for export in args.exports:
                group = aws.cloudwatch.LogGroup(
                    f"{name}-{label}-{export}",
                    name=rds_log_group_name(ident, export, kind=args.kind),
                    retention_in_days=args.retention_days,
                    kms_key_id=args.kms_key_arn,
                    tags=tags,
                    opts=pulumi.ResourceOptions(parent=self),
                )
                self.log_groups.append(group)
                if export == "postgresql":
                    self.postgresql_log_group_names[label] = group.name
        self.log_group_names = [g.name for g in self.log_groups]
        self.register_outputs(
            {
                "log_group_names": self.log_group_names,
                "postgresql_log_group_names": self.postgresql_log_group_names,
            }
        )
