"""PostgresCluster and CrossRegionReplicas: the PostgreSQL tier of one region.

:class:`PostgresCluster` lives in the primary region. In ``rds`` mode it is an RDS PostgreSQL
primary (Multi-AZ, gp3/io2, KMS, Performance Insights / Database Insights, enhanced monitoring,
log exports, IAM auth) plus in-region read replicas; in ``aurora`` mode an Aurora PostgreSQL
cluster with a writer and readers (Serverless v2 capable). Both come with their subnet group,
security group (ingress only from security groups named through :meth:`allow_from`), a tuned
parameter group in the engine's family, and master credentials: a generated password kept in a
KMS-encrypted Secrets Manager secret with rotation. RDS's *managed* master password is only an
option without replicas, because AWS refuses read replicas of such a source.

:class:`CrossRegionReplicas` lives in each replica region: read replicas of the primary given by
**ARN**, encrypted with that region's CMK, with a parameter group, security group and subnet
group of that region (the replica would otherwise get the region's *default* groups). It is
registered under the replica region's RegionStack, so the region comes from that stack's explicit
provider like every other resource there.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ._iam import service_role
from ._protection import stateful
from ._security_groups import egress_to, ingress_from, security_group
from .catalogue import check_class_limits, check_rds_engine_version, check_rds_instance_class
from .config import MASTER_PASSWORD_SPECIALS, PostgresParameters
from .rds_log_groups import RdsLogGroups, RdsLogGroupsArgs
from .validation import (
    MONITORING_INTERVALS,
    RESERVED_USERNAMES,
    ArgumentError,
    check_choice,
    check_daily_window,
    check_database_insights,
    check_log_retention,
    check_performance_insights_retention,
    check_postgres_identifier,
    check_region,
    check_unique_label,
    check_weekly_window,
    coerce_args,
    stack_hash,
    stack_scoped,
    windows_overlap,
)

ENHANCED_MONITORING_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
RDS_LOG_EXPORTS: tuple[str, ...] = ("postgresql", "upgrade")
"""RDS PostgreSQL log types exported to CloudWatch Logs."""
AURORA_LOG_EXPORTS: tuple[str, ...] = ("postgresql",)
"""Aurora PostgreSQL log types exported to CloudWatch Logs."""
ROTATION_APP_ID = (
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationSingleUser"
)
"""AWS's single-user PostgreSQL rotation function in the Serverless Application Repository."""
DEFAULT_APP_USERS: Mapping[str, Literal["writer", "reader"]] = {
    "app_writer": "writer",
    "app_reader": "reader",
}
"""Application users created by default: one with the writer role, one with the reader role."""
ROTATION_MULTI_USER_APP_ID = (
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationMultiUser"
)
"""AWS's alternating-users PostgreSQL rotation function (application users' secrets)."""
LAMBDA_VPC_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
BOOTSTRAP_SOURCE = Path(__file__).resolve().parent / "lambda_src" / "db_bootstrap.py"
"""Handler of the user-bootstrap Lambda (standard library only; packaged as ``index.py``)."""
DEFAULT_DATABASE = "postgres"
"""The database every RDS PostgreSQL instance has; the secrets name it when ``db_name`` is None."""
CA_CERT_IDENTIFIER = "rds-ca-rsa2048-g1"
"""Server certificate authority of the instances (clients verify TLS against it)."""

# Parameters PostgreSQL only reads at start: RDS rejects apply_method=immediate for them.
STATIC_PARAMETERS = frozenset(
    {"shared_preload_libraries", "max_connections", "wal_buffers", "max_wal_senders"}
)


def parameter_family(engine_mode: str, engine_version: str) -> str:
    """``postgres16``/``postgres17`` (or ``aurora-postgresql16/17``) for ``engine_version``."""
    major = int(engine_version.split(".")[0])
    if major not in (16, 17):
        raise ValueError(f"engine_version {engine_version!r} is invalid; allowed: PostgreSQL 16.x or 17.x")
    return f"{'aurora-postgresql' if engine_mode == 'aurora' else 'postgres'}{major}"


EngineLifecycleSupport = Literal[
    "open-source-rds-extended-support-disabled", "open-source-rds-extended-support"
]
ENGINE_LIFECYCLE_CHOICES: tuple[str, ...] = (
    "open-source-rds-extended-support-disabled",
    "open-source-rds-extended-support",
)
"""RDS Extended Support (paid, after a major version's standard support ends) off or on."""


def check_engine_version(engine_version: str, *, auto_minor_version_upgrade: bool) -> None:
    """Raise ``ValueError`` for a version that would drift or is malformed.

    ``"16"`` (the major) lets RDS pick and later upgrade the minor; a pinned minor (``"16.6"``) is
    only allowed with ``auto_minor_version_upgrade=False``: once AWS upgrades the minor, the next
    ``up`` would try to downgrade to the pinned one (which RDS refuses).
    """
    if not re.fullmatch(r"\d+(\.\d+)?", engine_version):
        raise ValueError(
            f"engine_version {engine_version!r} is invalid; allowed: a major version such as '16' or "
            "a major.minor such as '16.6'"
        )
    if "." in engine_version and auto_minor_version_upgrade:
        major = engine_version.split(".", 1)[0]
        raise ValueError(
            f"engine_version {engine_version!r} pins a minor version while auto_minor_version_upgrade "
            f"is on; allowed: the major version {major!r} (AWS upgrades minors in the maintenance "
            "window and the next `up` would try a downgrade), or auto_minor_version_upgrade off"
        )


class StorageError(ArgumentError):
    """A storage setting RDS would refuse; ``field`` is the Args field (``iops``...)."""


def check_storage(
    storage_type: str,
    allocated_gib: int,
    iops: int | None,
    throughput_mibps: int | None,
    *,
    max_allocated_gib: int = 0,
) -> None:
    """Raise :class:`StorageError` for storage settings RDS refuses (gp3 / io2 rules).

    gp3 below 400 GiB has fixed 3000 IOPS and 125 MiB/s; from 400 GiB IOPS 12000-64000 and
    throughput 500-4000 MiB/s with throughput/IOPS <= 0.25. io2 needs 100+ GiB and 1000-256000
    provisioned IOPS, 0.5-1000 IOPS per GiB, and takes no throughput setting.
    """
    if storage_type not in ("gp3", "io2"):
        raise StorageError("storage_type", storage_type, "allowed: gp3, io2")
    size = allocated_gib
    if not 20 <= size <= 65536:
        raise StorageError("allocated_storage_gib", size, "allowed: 20-65536 GiB")
    if max_allocated_gib and max_allocated_gib < size:
        raise StorageError(
            "max_allocated_storage_gib", max_allocated_gib, f"allowed: 0 (no autoscaling) or >= {size}"
        )
    if storage_type == "io2":
        if size < 100:
            raise StorageError("allocated_storage_gib", size, "io2 needs 100-65536 GiB")
        if iops is None:
            raise StorageError("iops", None, "io2 needs provisioned IOPS: 1000-256000")
        if not 1000 <= iops <= 256000:
            raise StorageError("iops", iops, "io2 IOPS must be from 1000 to 256000")
        if iops > 1000 * size:
            raise StorageError("iops", iops, f"io2 allows at most 1000 IOPS per GiB ({1000 * size})")
        if iops * 2 < size:
            raise StorageError("iops", iops, f"io2 needs at least 0.5 IOPS per GiB ({size // 2})")
        if throughput_mibps is not None:
            raise StorageError(
                "storage_throughput_mibps", throughput_mibps, "only for gp3; io2 throughput follows IOPS"
            )
        return
    if size < 400:
        if iops not in (None, 3000):
            raise StorageError(
                "iops", iops, "gp3 below 400 GiB has fixed 3000 IOPS (leave unset or grow to >= 400 GiB)"
            )
        if throughput_mibps not in (None, 125):
            raise StorageError(
                "storage_throughput_mibps",
                throughput_mibps,
                "gp3 below 400 GiB has fixed 125 MiBps (leave unset or grow to >= 400 GiB)",
            )
        return
    eff_iops = iops if iops is not None else 12000
    eff_thr = throughput_mibps if throughput_mibps is not None else 500
    if not 12000 <= eff_iops <= 64000:
        raise StorageError("iops", iops, "gp3 at >= 400 GiB: IOPS from 12000 (baseline) to 64000")
    if not 500 <= eff_thr <= 4000:
        raise StorageError(
            "storage_throughput_mibps", throughput_mibps, "gp3 at >= 400 GiB: 500 (baseline) to 4000 MiBps"
        )
    if eff_thr / eff_iops > 0.25:
        raise StorageError(
            "storage_throughput_mibps", eff_thr, f"gp3 throughput/IOPS must be <= 0.25 (IOPS {eff_iops})"
        )


def storage_performance(
    storage_type: str, allocated_gib: int, iops: int | None, throughput_mibps: int | None
) -> tuple[int | None, int | None]:
    """(iops, throughput) to send to RDS; None where AWS fixes the value (gp3 < 400 GiB)."""
    if storage_type == "io2":
        return iops, None
    if allocated_gib < 400:
        return None, None
    return (iops or 12000), (throughput_mibps or 500)


def tuned_parameters(tuned: PostgresParameters, *, aurora: bool = False) -> dict[str, tuple[str, str]]:
    """Parameter name -> (value, apply_method) for the tier's parameter groups.

    ``aurora=True`` leaves out ``wal_buffers``: Aurora's storage layer owns the WAL and does not
    expose it.
    """
    values: dict[str, str] = {
        # Default is 1 from PostgreSQL 15 on; pinned so a family default can never turn TLS off.
        "rds.force_ssl": "1",
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",
        "log_min_duration_statement": str(tuned.log_min_duration_statement_ms),
        "work_mem": str(tuned.work_mem_kb),
        "maintenance_work_mem": str(tuned.maintenance_work_mem_kb),
        "wal_buffers": str(tuned.wal_buffers_pages),
        "random_page_cost": f"{tuned.random_page_cost:g}",
        "idle_in_transaction_session_timeout": str(tuned.idle_in_transaction_timeout_ms),
    }
    if tuned.max_connections is not None:
        values["max_connections"] = str(tuned.max_connections)
    if aurora:
        del values["wal_buffers"]
    out = {k: (v, "pending-reboot" if k in STATIC_PARAMETERS else "immediate") for k, v in values.items()}
    # Unknown extras may be static; pending-reboot is accepted for every parameter.
    out.update({k: (v, "pending-reboot") for k, v in tuned.extra.items()})
    return out


def planned_identifiers(
    prefix: str, *, engine_mode: str = "rds", replicas: int = 0, aurora_readers: int = 0
) -> dict[str, str]:
    """Label -> DB identifier the cluster will use with ``identifier_prefix=prefix``.

    Labels and identifiers name a slot, never a role, so that a failover (a replica promoted,
    a writer rebuilt as a replica) keeps every name: ``db-1`` (``<prefix>-1``) is the writer,
    ``db-2`` ... the in-region replicas (Aurora: readers); Aurora adds ``cluster``
    (``<prefix>-cluster``, the log-exporting unit). :func:`planned_replica_identifiers` gives a
    replica region the same ``<prefix>-N`` names, so its ``db-1`` is the one to promote.
    """
    count = (aurora_readers if engine_mode == "aurora" else replicas) + 1
    ids = {"cluster": f"{prefix}-cluster"} if engine_mode == "aurora" else {}
    ids.update({f"db-{n}": f"{prefix}-{n}" for n in range(1, count + 1)})
    return ids


AURORA_ROLE_SWITCH_IGNORED = (
    "replicationSourceIdentifier",
    "databaseName",
    "masterUsername",
    "masterPassword",
)
"""Aurora cluster inputs a Global Database role switch must not touch, in both roles: AWS sets the
replication source on a secondary; ``database_name`` and ``master_username`` force a replacement
in the Terraform provider (ForceNew), and a cluster that joined as a secondary was created without
them (its Read sets ``database_name`` only when AWS returns one, terraform-provider-aws
internal/service/rds/cluster.go), so the promoted secondary's first update as the writer would
plan a replacement that deletion protection refuses (the failed-update mode of
terraform-provider-aws#28187/#34203/#39368, there on the global cluster). They are sent on
create; an existing cluster keeps its own. ``master_password``: as on the RDS writer
(:data:`WRITER_INSTANCE_OPTIONS`), set on create only, rotation owns it after."""

WRITER_INSTANCE_OPTIONS: dict[str, Any] = {"ignore_changes": ["password"]}
"""Resource options of the writer instance. No replace_on_changes: replicate_source_db
disappearing is a promotion, which the provider does in place. The master password is sent on
create only: after that it belongs to the rotation (the master secret's value is ignored the same
way), and a promoted replica keeps the old writer's password, which the promoted copy of the old
master secret and the new region's master secret (started from that copy) both hold; re-applying
the generated one would lock both out."""

PROMOTED_WRITER_IGNORED = ("dbName", "username", "engineLifecycleSupport")
"""Create-only inputs of an RDS writer that was promoted from a read replica
(``PostgresClusterArgs.writer_promoted``): ``db_name`` and ``username`` force a replacement
(ForceNew) and ``engine_lifecycle_support`` is set at create only, and the replica was created
without them (they come from its source); whether the provider reads them back from a promoted
replica is not proven (the independent ForceNew audit), so they are not sent to it."""

REPLICA_INSTANCE_OPTIONS: dict[str, Any] = {
    # A replica pointed at a new source (a writer demoted after a failover, or a replica of the
    # old writer) must be rebuilt: the provider refuses to "elect a new source". Identifiers are
    # fixed, so the old instance goes first.
    "replace_on_changes": ["replicateSourceDb"],
    "delete_before_replace": True,
}
"""Resource options of every read replica (in-region and cross-region)."""


def _param_args(params: Mapping[str, tuple[str, str]], cls: Any) -> list[Any]:
    return [cls(name=k, value=v, apply_method=m) for k, (v, m) in sorted(params.items())]


def _parameter_group(
    name: str,
    family: str,
    description: str,
    params: Mapping[str, tuple[str, str]],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.rds.ParameterGroup | aws.rds.ClusterParameterGroup:
    """``<name>-params``: a DB parameter group, or a *cluster* parameter group for an Aurora family.

    Auto-named: a family change creates the new group before deleting the old one.
    """
    aurora = family.startswith("aurora-")
    opts = pulumi.ResourceOptions(parent=parent)
    if aurora:
        cluster_params = _param_args(params, aws.rds.ClusterParameterGroupParameterArgs)
        return aws.rds.ClusterParameterGroup(
            f"{name}-params",
            family=family,
            description=description,
            parameters=cluster_params,
            tags=tags,
            opts=opts,
        )
    db_params = _param_args(params, aws.rds.ParameterGroupParameterArgs)
    return aws.rds.ParameterGroup(
        f"{name}-params", family=family, description=description, parameters=db_params, tags=tags, opts=opts
    )


def _db_security_group(
    name: str, vpc_id: pulumi.Input[str], port: int, tags: Mapping[str, str], parent: pulumi.Resource
) -> aws.ec2.SecurityGroup:
    # No inline rules: the provider drops AWS's allow-all egress and ingress comes only from
    # allow_from() (named security groups, never CIDRs). Databases need no egress.
    return security_group(
        f"{name}-sg", f"PostgreSQL {port} from allowed security groups only", vpc_id, tags, parent
    )


def _ingress_from(
    name: str,
    label: str,
    sg_id: pulumi.Input[str],
    source: pulumi.Input[str],
    port: int,
    parent: pulumi.Resource,
) -> aws.vpc.SecurityGroupIngressRule:
    return ingress_from(
        f"{name}-from-{label}",
        security_group_id=sg_id,
        source_security_group_id=source,
        port=port,
        description=f"PostgreSQL from {label}",
        parent=parent,
    )


def _db_subnet_group(
    name: str,
    description: str,
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.rds.SubnetGroup:
    """``<name>-subnets``: without it RDS would place the databases in the region's default VPC."""
    return aws.rds.SubnetGroup(
        f"{name}-subnets",
        description=description,
        subnet_ids=subnet_ids,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _insights_and_monitoring(
    kms_key_arn: pulumi.Input[str],
    retention_days: int,
    monitoring_interval_seconds: int,
    monitoring_role_arn: pulumi.Input[str | None] | None,
) -> dict[str, Any]:
    """Performance Insights (encrypted with ``kms_key_arn``) and enhanced-monitoring instance arguments.

    The monitoring role is only passed with a non-zero interval: AWS rejects a role without one.
    """
    return {
        "performance_insights_enabled": True,
        "performance_insights_kms_key_id": kms_key_arn,
        "performance_insights_retention_period": retention_days,
        "monitoring_interval": monitoring_interval_seconds,
        "monitoring_role_arn": monitoring_role_arn if monitoring_interval_seconds else None,
    }


def _collect(values: Sequence[pulumi.Input[str]]) -> pulumi.Output[list[str]]:
    """One output holding the list of ``values`` (e.g. every replica's address)."""
    return pulumi.Output.all(*values).apply(list)


def _grant_connect(
    parent: pulumi.Resource,
    name: str,
    region: pulumi.Input[str],
    resource_ids: pulumi.Output[list[str]],
    role: aws.iam.Role | str,
    db_user: str,
    label: str | None,
) -> aws.iam.RolePolicy:
    """``<name>-connect-<label>-<db_user>``: an inline policy with ``rds-db:connect`` on ``resource_ids``."""
    tag = label or _role_label(role)
    role_name = role.name if isinstance(role, aws.iam.Role) else role
    identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent))
    policy = pulumi.Output.all(region, identity.account_id, resource_ids).apply(
        lambda a: json.dumps(rds_connect_policy(a[0], a[1], a[2], db_user))
    )
    return aws.iam.RolePolicy(
        f"{name}-connect-{tag}-{db_user}".replace("_", "-"),
        role=role_name,
        policy=policy,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def rds_connect_policy(
    region: str, account_id: str, resource_ids: Sequence[str], db_user: str
) -> dict[str, Any]:
    """IAM policy allowing ``rds-db:connect`` as ``db_user`` to the given DB/cluster resource ids."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": [
                    f"arn:aws:rds-db:{region}:{account_id}:dbuser:{rid}/{db_user}" for rid in resource_ids
                ],
            }
        ],
    }


def _physical_base(name: str, prefix: str | None) -> str:
    """Base of physical names (snapshots, Lambda functions): the identifier prefix when given,
    else the logical name plus the stack, so stacks of one program never collide."""
    # Lambda's alphabet; a stack name outside it (or one it would merge) gets a hash.
    return prefix or stack_scoped(name, alphabet=r"A-Za-z0-9_-")


def _final_snapshot_id(name: str, prefix: str | None) -> str:
    """The default final snapshot identifier, ``<base>-final``: :func:`_physical_base` when it is a valid
    RDS identifier (unchanged names for ordinary stacks), else the identifier-safe default prefix
    (a stack ``dev_1`` would give an underscore, which AWS refuses)."""
    base = _physical_base(name, prefix)
    if not (re.fullmatch(r"[A-Za-z](?:-?[A-Za-z0-9])*", base) and len(base) <= 249):
        base = _default_identifier_prefix(name)
    return f"{base}-final"


def _default_identifier_prefix(name: str) -> str:
    """DB identifiers for a component that needs them fixed but got no prefix: the logical name and
    the stack (unique per stack), in RDS's identifier alphabet, short enough for ``-cluster``."""
    stack = pulumi.get_stack()
    base = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", f"{name}-{stack}".lower())).strip("-")
    if not base[:1].isalpha():
        base = f"db-{base}"
    if re.fullmatch(r"[a-z0-9-]*", stack) and len(base) <= 55:
        return base
    # Sanitising changed the stack name or the cut reaches it: a hash keeps stacks apart.
    return f"{base[:48].rstrip('-')}-{stack_hash(stack)}"


def secret_arn_by_name_prefix(
    prefix: str, opts: pulumi.InvokeOutputOptions, *, where: str, context: str = ""
) -> pulumi.Output[str]:
    """ARN of the one secret whose name starts with ``prefix`` (a data-plane ``ListSecrets`` in the
    invoke's region): how a promoted copy of an auto-named secret is found after a failover.

    :raises ValueError: (when resolved) none or several match; the message names the prefix,
        ``where`` it was looked for and the optional ``context``."""
    found = aws.secretsmanager.get_secrets_output(
        filters=[aws.secretsmanager.GetSecretsFilterArgs(name="name", values=[prefix])], opts=opts
    )

    def one(arns: list[str]) -> str:
        if len(arns) != 1:
            raise ValueError(
                f"{context}expected exactly one secret named {prefix}* {where}, found {len(arns)}"
            )
        return arns[0]

    return found.arns.apply(one)


def _app_secret_json(values: list[Any], *, args: PostgresClusterArgs) -> str:
    """The alternating-users rotation function's secret shape: host, login, master ARN."""
    host, (user, password), master_arn = values
    return json.dumps(
        {
            "engine": "postgres",
            "host": host,
            "port": args.port,
            "username": user,
            "password": password,
            "dbname": args.db_name or DEFAULT_DATABASE,
            "masterarn": master_arn,
        }
    )


def secret_reader_policy(secret_arns: Sequence[str], kms_key_arn: str, region: str) -> dict[str, Any]:
    """Read these secrets and decrypt them only through Secrets Manager (proxy, bootstrap Lambda)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadDbSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(secret_arns),
            },
            {
                "Sid": "DecryptViaSecretsManager",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            },
        ],
    }


def _role_label(role: Any) -> str:
    if isinstance(role, aws.iam.Role):
        return str(role._name)  # logical name: stable and unique
    if isinstance(role, str):
        return role
    raise TypeError(
        "grant_connect(role=...) needs an aws.iam.Role or a role name string (pass label= otherwise)"
    )


_DB_IDENTIFIER = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]*(?<!-)")


def check_instance_class(field: str, instance_class: Any, *, serverless_ok: bool = False) -> None:
    """``db.<family>.<size>`` (or ``db.serverless`` for Aurora): the ``db.`` prefix is required."""
    if serverless_ok and instance_class == "db.serverless":
        return
    if not isinstance(instance_class, str) or not re.fullmatch(r"db\.[a-z0-9-]+\.[a-z0-9]+", instance_class):
        example = "db.serverless or " if serverless_ok else ""
        raise ArgumentError(
            field, instance_class, f"allowed: {example}an RDS instance class such as db.r7g.large "
            "(with the db. prefix)",
        )  # fmt: skip


def check_db_identifier(field: str, value: str | None, *, longest_suffix: str = "") -> None:
    """An RDS identifier (or prefix of one): a letter, then letters, digits, single hyphens, no
    trailing hyphen, at most 63 characters with the longest suffix the component appends."""
    if value is None:
        return
    if not isinstance(value, str) or not _DB_IDENTIFIER.fullmatch(value) or len(value + longest_suffix) > 63:
        raise ArgumentError(
            field, value, f"allowed: letters, digits and single hyphens, starting with a letter, "
            f"at most {63 - len(longest_suffix)} characters",
        )  # fmt: skip


def check_snapshot_identifier(field: str, value: str | None) -> None:
    """A DB snapshot identifier: 1-255 letters, digits, single hyphens, starting with a letter."""
    if value is not None and (
        not isinstance(value, str) or not _DB_IDENTIFIER.fullmatch(value) or len(value) > 255
    ):
        raise ArgumentError(
            field, value, "allowed: 1-255 letters, digits and single hyphens, starting with a letter, "
            "not ending with a hyphen",
        )  # fmt: skip


def check_aurora_capacity(min_acu: float, max_acu: float, *, prefix: str = "") -> None:
    """Serverless v2 capacity: minimum 0-256 and maximum 1-256 ACUs in steps of 0.5, min <= max."""
    for name, value, low in (
        (f"{prefix}min_capacity_acu", min_acu, 0.0),
        (f"{prefix}max_capacity_acu", max_acu, 1.0),
    ):
        if not low <= value <= 256 or (value * 2) != int(value * 2):
            raise ArgumentError(name, value, f"allowed: {low:g}-256 ACUs in steps of 0.5")
    if min_acu > max_acu:
        raise ArgumentError(
            f"{prefix}min_capacity_acu", min_acu, f"allowed: <= {prefix}max_capacity_acu ({max_acu:g})"
        )


def check_rds_common(args: Any, *, backup_window: str | None = None) -> None:
    """Rules every PostgreSQL component's Args share (placement, windows, monitoring, insights)."""
    if args.region is not None:
        check_region("region", args.region)
    if getattr(args, "source_region", None) is not None:
        check_region("source_region", args.source_region)
    if not 1150 <= args.port <= 65535:
        raise ArgumentError("port", args.port, "allowed: 1150-65535 (RDS)")
    check_choice("monitoring_interval_seconds", args.monitoring_interval_seconds, MONITORING_INTERVALS)
    check_performance_insights_retention(
        "performance_insights_retention_days", args.performance_insights_retention_days
    )
    check_database_insights(
        getattr(args, "database_insights_mode", "standard"), args.performance_insights_retention_days
    )
    check_weekly_window("maintenance_window", args.maintenance_window, min_minutes=30)
    if backup_window is not None:
        check_daily_window("backup_window", backup_window, min_minutes=30)
        if windows_overlap(args.maintenance_window, backup_window):
            raise ArgumentError(
                "backup_window", backup_window,
                f"overlaps maintenance_window {args.maintenance_window!r}; allowed: a daily window "
                "that does not overlap the weekly maintenance window (RDS refuses it)",
            )  # fmt: skip
    if not 1 <= getattr(args, "backup_retention_days", 7) <= 35:
        raise ArgumentError("backup_retention_days", args.backup_retention_days, "allowed: 1-35")


@dataclass(frozen=True, kw_only=True)
class PostgresClusterArgs:
    """Inputs of :class:`PostgresCluster`. Plain fields drive control flow; ``Input`` fields are wired."""

    vpc_id: pulumi.Input[str]
    """VPC of the database. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets, >= 2 AZs. Required."""
    kms_key_arn: pulumi.Input[str]
    """CMK for storage, Performance Insights, the secret and (Aurora) the cluster. Required."""
    region: str | None = None
    """Region of the database, for the instance-class catalogue check, IAM ``rds-db`` ARNs and the
    rotation endpoint. None takes it from the component's AWS provider (``aws:region`` or an
    explicit provider), and checks the instance class against every region. Default: None."""
    engine_mode: Literal["rds", "aurora"] = "rds"
    """``rds`` (instances) or ``aurora`` (Aurora PostgreSQL cluster). Default: "rds"."""
    engine_version: str = "16"
    """PostgreSQL major version (16 or 17; picks the parameter family), or major.minor with
    ``auto_minor_version_upgrade=False`` (see :func:`check_engine_version`). Default: "16"."""
    engine_lifecycle_support: EngineLifecycleSupport = "open-source-rds-extended-support-disabled"
    """Whether RDS Extended Support (paid) keeps a major version running after its standard
    support ends; disabled means RDS upgrades the major version then. Stated explicitly because
    AWS's default is enabled. Default: "open-source-rds-extended-support-disabled"."""
    instance_class: str = "db.r7g.large"
    """Primary class (rds mode). Default: "db.r7g.large"."""
    replica_instance_class: str | None = None
    """Read replica class (rds mode). Default: None (= instance_class)."""
    in_region_replicas: int = 1
    """Read replicas in this region (rds mode). Default: 1."""
    multi_az: bool = True
    """Multi-AZ primary (rds mode). Default: True."""
    storage_type: Literal["gp3", "io2"] = "gp3"
    """Storage type (rds mode). Default: "gp3"."""
    allocated_storage_gib: int = 100
    """Initial storage (rds mode). Default: 100."""
    max_allocated_storage_gib: int = 1000
    """Autoscaling ceiling; 0 disables. Default: 1000."""
    iops: int | None = None
    """Provisioned IOPS; None where AWS fixes it (gp3 < 400 GiB) or for gp3's baseline (12000 from
    400 GiB). Default: None."""
    storage_throughput_mibps: int | None = None
    """gp3 throughput (>= 400 GiB only; None = the 500 MiB/s baseline). Default: None."""
    replica_storage_type: Literal["gp3", "io2"] = "gp3"
    """Storage type of the in-region read replicas (rds mode): storage is set per role, and
    provisioned io2 on every replica is rarely worth its price. Default: "gp3"."""
    replica_iops: int | None = None
    """Provisioned IOPS of the replicas (same rules as ``iops``). Default: None."""
    replica_storage_throughput_mibps: int | None = None
    """gp3 throughput of the replicas. Default: None."""
    db_name: str | None = None
    """Database RDS creates besides the engine's ``postgres`` database (1-63 letters, digits, ``_``,
    starting with a letter). None creates none, as RDS and CDK do: the secrets then name
    ``postgres``. Default: None."""
    master_username: str = "dbadmin"
    """Master user (1-16 letters, digits, ``_``, starting with a letter; not ``postgres``,
    ``rdsadmin``, ``admin``, ``root``...). A neutral name: it carries no product branding.
    Default: "dbadmin"."""
    port: int = 5432
    """Listener port. Default: 5432."""
    manage_master_user_password: bool = False
    """Let RDS manage the master secret (refused with replicas, as AWS refuses them). Default: False."""
    password_rotation_days: int = 30
    """Rotation schedule of the master secret. Default: 30."""
    rotation_lambda_arn: str | None = None
    """Rotation Lambda to use; None deploys AWS's SAR single-user PostgreSQL rotation function
    into the private subnets. Default: None."""
    app_users: Mapping[str, Literal["writer", "reader"]] | None = None
    """Application database users (name -> ``writer`` or ``reader``), each with its own secret
    (``app_secret_arns``), listed in the proxy's auths and rotated with AWS's alternating-users
    function; a bootstrap Lambda creates them once as members of ``<app_role_prefix>_writer`` (DML)
    or ``<app_role_prefix>_reader`` (SELECT). The master stays for administration (migrations).
    Only with our own master secret: None means ``{"app_writer": "writer", "app_reader":
    "reader"}``, or none with ``manage_master_user_password``; ``{}`` creates none. Default: None."""
    app_role_prefix: str = "data"
    """Prefix of the group roles the users join (``data_writer``, ``data_reader``). Default: "data"."""
    app_rotation_lambda_arn: str | None = None
    """Alternating-users rotation Lambda to use; None deploys AWS's SAR multi-user PostgreSQL
    rotation function. Default: None."""
    writer_promoted: bool = False
    """The writer (rds mode) was a read replica promoted in a failover: its create-only inputs
    (:data:`PROMOTED_WRITER_IGNORED`) are not sent to it, it keeps what it replicated. Default: False."""
    master_password_from_secret: str | None = None
    """Name (or ARN) of a secret in this region whose JSON ``password`` is the database's current
    master password: after a failover, the promoted copy of the previous writer's master secret
    (``cdb-<stack>-<old region code>-master``). The master secret this component creates then
    starts from that password instead of the generated one (a promoted database keeps the old
    writer's password, and the user bootstrap signs in with the master secret), and its first
    rotation waits for the schedule, so the promoted copy keeps working too. Read once per run in
    this region (a data-plane call). None: the generated password. Default: None."""
    app_credentials_from_secret_prefix: str | None = None
    """Name prefix of secrets in this region whose JSON ``username``/``password`` are an
    application user's current login: after a failover, the promoted copies of the previous
    writer's application-user secrets (auto-named ``<old region code>-pg-<user>-``; the prefix
    here is ``<old region code>-pg-``, the user's name with ``_`` as ``-`` is appended). Each
    application secret this component creates then starts from that login (the promoted database
    already has those users and passwords, and the bootstrap leaves existing users alone, so a
    generated password would never be valid: the alternating-users rotation function signs in with
    the secret's current login before it changes anything, and would fail). Its first rotation
    then sets a new password on the *other* user of the pair, so the promoted copy the apps still
    use keeps working until the second rotation. Exactly one match per user is required. Read once
    per run in this region (data-plane calls). None: generated passwords. Default: None."""
    lambda_log_retention_days: int = 30
    """Retention of the bootstrap Lambda's log group. Default: 30."""
    endpoint_security_group_id: pulumi.Input[str] | None = None
    """Security group of the Secrets Manager/KMS interface endpoints; the rotation Lambda's HTTPS
    egress goes only there and the component admits the Lambda's group to it. None lets it reach
    443 anywhere (NAT or the VPC's existing endpoints). Default: None."""
    secret_replica_regions: Mapping[str, pulumi.Input[str] | None] = field(default_factory=dict)
    """Replicate the master secret to these regions (region -> CMK ARN there, or None for the AWS
    managed key), so readers and DR there read it locally. Default: {}."""
    publicly_accessible: bool = False
    """Public address on the writer and readers. Only exists so a stack can express it and the
    no-public-database policy can reject it; the tier is private. Default: False."""
    deletion_protection: bool = True
    """Deletion protection and a final snapshot on delete. Default: True."""
    protect: bool = True
    """Pulumi ``protect`` and ``retain_on_delete`` on the instances, the Aurora (global) cluster
    and the master secret: a destroy or a replacement stops instead of deleting data. Default: True."""
    final_snapshot_identifier: str | None = None
    """Final snapshot name (used when deletion_protection is on); unique per account and region.
    None derives ``<identifier_prefix>-final``, or ``<name>-<stack>-final`` without a prefix, so
    two stacks of one program never share it. Default: None."""
    backup_retention_days: int = 7
    """Automated backup retention, 1-35 (> 0 is needed for replicas). Default: 7."""
    backup_window: str = "03:00-04:00"
    """Daily backup window (UTC ``hh:mm-hh:mm``, >= 30 minutes, not overlapping
    ``maintenance_window``). Default: "03:00-04:00"."""
    maintenance_window: str = "sun:04:30-sun:05:30"
    """Weekly maintenance window (UTC ``ddd:hh:mm-ddd:hh:mm``, >= 30 minutes). Default:
    "sun:04:30-sun:05:30"."""
    auto_minor_version_upgrade: bool = True
    """Minor upgrades in the maintenance window. Default: True."""
    performance_insights_retention_days: int = 7
    """Performance Insights retention: 7, month * 31 (31-713) or 731 days. Default: 7."""
    database_insights_mode: Literal["standard", "advanced"] = "standard"
    """Database Insights mode (advanced needs ``performance_insights_retention_days`` >= 465).
    Default: "standard"."""
    monitoring_interval_seconds: int = 60
    """Enhanced monitoring interval; 0 disables (and creates no role). Default: 60."""
    iam_auth: bool = True
    """IAM database authentication. Default: True."""
    parameters: PostgresParameters = field(default_factory=PostgresParameters)
    """Tuned parameters. Default: PostgresParameters() (its documented defaults)."""
    aurora_readers: int = 1
    """Aurora readers besides the writer. Default: 1."""
    aurora_instance_class: str = "db.serverless"
    """Aurora instance class; db.serverless uses Serverless v2. Default: "db.serverless"."""
    aurora_min_capacity_acu: float = 0.5
    """Serverless v2 minimum ACUs. Default: 0.5."""
    aurora_max_capacity_acu: float = 16.0
    """Serverless v2 maximum ACUs. Default: 16."""
    aurora_global: bool = False
    """Aurora only: make the cluster the primary of an Aurora Global Database, so replica regions
    can add :class:`AuroraSecondaryCluster` readers. Default: False."""
    global_cluster_id: pulumi.Input[str] | None = None
    """Aurora only: join this existing Aurora Global Database instead of creating one (a stack
    keeps its global cluster outside any region's component, so a failover never moves it).
    Default: None."""
    monitoring_role_arn: pulumi.Input[str] | None = None
    """Existing enhanced-monitoring role (IAM is global; a stack creates one for all regions so
    that a failover needs no IAM change). None creates one here. Default: None."""
    parameter_group_name: pulumi.Input[str] | None = None
    """Bring your own: an existing DB parameter group (Aurora: DB *cluster* parameter group) of
    the engine's family. Given, the component creates none and ``parameters`` is not applied, so
    the group must set ``rds.force_ssl=1`` (TLS required): say so with
    ``parameter_group_enforces_tls=True``, else a ValueError. Default: None (``<name>-params``)."""
    parameter_group_enforces_tls: bool = False
    """Acknowledges that the ``parameter_group_name`` group sets ``rds.force_ssl=1`` (the
    component cannot read a group's parameters to check). Required with ``parameter_group_name``;
    ignored without it. Default: False."""
    db_subnet_group_name: pulumi.Input[str] | None = None
    """Bring your own: an existing DB subnet group (in ``vpc_id``, >= 2 AZs). Given, the component
    creates none; ``subnet_ids`` still place the rotation and bootstrap Lambdas. Default: None
    (``<name>-subnets`` from ``subnet_ids``)."""
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Bring your own: existing security groups for the writer and replicas. Given, the
    component creates none (no ``<name>-sg`` / ``<name>-readers-sg``); :meth:`allow_from` adds its
    ingress rules to the first one (the proxy and rotation Lambda are admitted there too).
    Default: () (the component's own groups)."""
    identifier_prefix: str | None = None
    """Fixed DB identifiers ``<prefix>-1`` (the writer), ``<prefix>-2``... (Aurora also
    ``<prefix>-cluster``), known before the DB exists so that its log groups can be created first
    (see :func:`planned_identifiers`); also names the master secret ``<prefix>-master``. None lets
    Pulumi auto-name (or ``<name>-<stack>`` with ``cloudwatch_logs_retention_days``). Default: None."""
    cloudwatch_logs_retention_days: int | None = None
    """Create the CloudWatch log groups the exported PostgreSQL logs go to (``postgresql`` and
    ``upgrade`` per instance; Aurora: ``postgresql`` per cluster) before the databases, with this
    retention (a CloudWatch Logs value) and ``kms_key_arn``; their names are the
    ``log_group_names`` / ``postgresql_log_group_names`` outputs. Needs fixed identifiers: without
    ``identifier_prefix`` they become ``<name>-<stack>-N``. None creates none, and RDS creates them
    itself on the first export, never expiring and without the CMK (or create them yourself with
    :class:`commerce_db_components.rds_log_groups.RdsLogGroups`, as the project's stacks do).
    Default: None."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Resources the DB resources wait for (e.g. your own RDS log groups). Default: ()."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "parameters", coerce_args(self.parameters, PostgresParameters, field="parameters")
        )
        check_choice("engine_mode", self.engine_mode, ("rds", "aurora"))
        parameter_family(self.engine_mode, self.engine_version)
        check_engine_version(self.engine_version, auto_minor_version_upgrade=self.auto_minor_version_upgrade)
        check_rds_common(self, backup_window=self.backup_window)
        if self.db_name is not None:
            check_postgres_identifier("db_name", self.db_name)
        check_postgres_identifier(
            "master_username", self.master_username, reserved=RESERVED_USERNAMES, max_length=16
        )
        if self.engine_mode == "aurora":
            check_instance_class("aurora_instance_class", self.aurora_instance_class, serverless_ok=True)
            check_aurora_capacity(
                self.aurora_min_capacity_acu, self.aurora_max_capacity_acu, prefix="aurora_"
            )
        else:
            check_instance_class("instance_class", self.instance_class)
            if self.replica_instance_class is not None:
                check_instance_class("replica_instance_class", self.replica_instance_class)
        if not 1 <= self.password_rotation_days <= 1000:
            raise ArgumentError(
                "password_rotation_days", self.password_rotation_days, "allowed: 1-1000 (Secrets Manager)"
            )
        check_log_retention("lambda_log_retention_days", self.lambda_log_retention_days)
        if self.cloudwatch_logs_retention_days is not None:
            check_log_retention("cloudwatch_logs_retention_days", self.cloudwatch_logs_retention_days)
        check_db_identifier("identifier_prefix", self.identifier_prefix, longest_suffix="-cluster")
        if self.parameter_group_name is not None and not self.parameter_group_enforces_tls:
            # A BYO group would otherwise silently drop the rds.force_ssl=1 guarantee (issue 14).
            raise ValueError(
                "parameter_group_name is set without parameter_group_enforces_tls=True; the component "
                "creates no parameter group then, so the given group must set rds.force_ssl=1 (TLS "
                "required): confirm it sets rds.force_ssl=1 and pass parameter_group_enforces_tls=True, "
                "or leave parameter_group_name unset"
            )
        check_snapshot_identifier("final_snapshot_identifier", self.final_snapshot_identifier)
        if self.engine_lifecycle_support not in ENGINE_LIFECYCLE_CHOICES:
            raise ValueError(
                f"engine_lifecycle_support {self.engine_lifecycle_support!r} is invalid; allowed: "
                + ", ".join(ENGINE_LIFECYCLE_CHOICES)
            )
        if self.engine_mode not in ("rds", "aurora"):
            raise ValueError(f"engine_mode {self.engine_mode!r} is invalid; allowed: rds, aurora")
        if self.manage_master_user_password and self.engine_mode == "rds" and self.in_region_replicas:
            raise ValueError(
                "manage_master_user_password is True with in_region_replicas > 0; AWS refuses read "
                "replicas of a source whose master password Secrets Manager manages"
            )
        if not 1 <= self.backup_retention_days <= 35:
            raise ValueError(f"backup_retention_days {self.backup_retention_days} is invalid; allowed: 1-35")
        if (self.aurora_global or self.global_cluster_id is not None) and self.engine_mode != "aurora":
            raise ValueError("aurora_global is True for engine_mode 'rds'; Global Database is Aurora only")
        if self.in_region_replicas < 0 or self.aurora_readers < 0:
            raise ValueError("replica counts must be >= 0")
        if self.app_users is None:
            default_users = {} if self.manage_master_user_password else dict(DEFAULT_APP_USERS)
            object.__setattr__(self, "app_users", default_users)
        assert self.app_users is not None
        for user, role in self.app_users.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", user) or user in (
                self.master_username,
                f"{self.app_role_prefix}_writer",
                f"{self.app_role_prefix}_reader",
            ):
                raise ValueError(
                    f"app_users key {user!r} is invalid; allowed: a lowercase PostgreSQL identifier other "
                    "than the master user and the group roles"
                )
            if role not in ("writer", "reader"):
                raise ValueError(f"app_users[{user!r}] = {role!r} is invalid; allowed: writer, reader")
        if self.app_users and self.manage_master_user_password:
            raise ValueError(
                "app_users is set with manage_master_user_password; the user bootstrap and the "
                "alternating-users rotation need our own master secret (set app_users={})"
            )
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", self.app_role_prefix):
            raise ValueError(
                f"app_role_prefix {self.app_role_prefix!r} is invalid; allowed: [a-z][a-z0-9_]{{0,40}}"
            )
        aurora = self.engine_mode == "aurora"
        check_rds_engine_version(self.engine_version, engine="aurora-postgresql" if aurora else "postgres")
        if aurora:
            check_rds_instance_class(
                self.aurora_instance_class, engine="aurora-postgresql", region=self.region,
                field="aurora_instance_class",
            )  # fmt: skip
            if self.aurora_instance_class != "db.serverless":
                check_class_limits(self.aurora_instance_class, field="aurora_instance_class")
            return
        check_storage(
            self.storage_type,
            self.allocated_storage_gib,
            self.iops,
            self.storage_throughput_mibps,
            max_allocated_gib=self.max_allocated_storage_gib,
        )
        try:
            check_storage(
                self.replica_storage_type,
                self.allocated_storage_gib,
                self.replica_iops,
                self.replica_storage_throughput_mibps,
            )
        except StorageError as exc:
            raise StorageError(f"replica_{exc.field}", exc.value, exc.allowed) from None
        max_connections = self.parameters.max_connections
        for fieldname, cls, stype, iops, thr in (
            (
                "instance_class",
                self.instance_class,
                self.storage_type,
                self.iops,
                self.storage_throughput_mibps,
            ),
            (
                "replica_instance_class",
                self.replica_instance_class or self.instance_class,
                self.replica_storage_type,
                self.replica_iops,
                self.replica_storage_throughput_mibps,
            ),
        ):
            check_rds_instance_class(cls, engine="postgres", region=self.region, field=fieldname)
            prefix = "replica_" if fieldname.startswith("replica") else ""
            # One limit at a time, so the error names the argument that exceeds the class. Only
            # IOPS someone provisioned are checked against the class: gp3's baseline is not.
            for setting, value, limit in (
                (fieldname, cls, {}),
                (f"{prefix}iops", iops, {"iops": iops if stype == "io2" or iops is not None else None}),
                (f"{prefix}storage_throughput_mibps", thr, {"throughput_mibps": thr}),
                ("parameters.max_connections", max_connections, {"max_connections": max_connections}),
            ):
                try:
                    check_class_limits(cls, field=fieldname, performance_insights=not limit, **limit)
                except ValueError as exc:
                    exc.field, exc.value = setting, value  # type: ignore[attr-defined]
                    raise


class PostgresCluster(pulumi.ComponentResource):
    """The primary region's PostgreSQL: RDS primary + replicas, or an Aurora cluster."""

    writer_endpoint: pulumi.Output[str]
    """Writer address (RDS primary address or Aurora cluster endpoint), without port."""
    port: pulumi.Output[int]
    """Listener port."""
    reader_endpoints: pulumi.Output[list[str]]
    """RDS: replica addresses; Aurora: the cluster reader endpoint (if readers exist)."""
    instance_identifiers: pulumi.Output[list[str]]
    """DB instance identifiers, writer first."""
    replica_identifiers: pulumi.Output[list[str]]
    """Read replica (RDS) / reader (Aurora) identifiers."""
    resource_ids: pulumi.Output[list[str]]
    """DbiResourceIds (RDS) or the cluster resource id (Aurora): the ``rds-db:connect`` resources."""
    primary_arn: pulumi.Output[str]
    """ARN of the RDS primary instance or the Aurora cluster (backup selection, replica source)."""
    primary_identifier: pulumi.Output[str]
    """Identifier of the RDS primary instance or the Aurora cluster (proxy target)."""
    secret_arn: pulumi.Output[str]
    """Secrets Manager secret with the master credentials (JSON: engine, host, port, username,
    password, dbname)."""
    security_group_id: pulumi.Output[str]
    """Security group of the writer (and Aurora readers): admits the proxy and rotation Lambda."""
    reader_security_group_id: pulumi.Output[str] | None
    """Security group of the RDS read replicas (None without them): admits app readers."""
    kms_key_arn: pulumi.Output[str]
    """CMK encrypting storage, Performance Insights and the secret."""
    region: pulumi.Output[str]
    """Region of the database (``region`` or the provider's)."""
    monitoring_role_arn: pulumi.Output[str | None]
    """Enhanced monitoring role (IAM is global: cross-region replicas reuse it)."""
    global_cluster_id: pulumi.Output[str] | None
    """Aurora Global Database id (None unless ``aurora_global``)."""
    log_group_names: list[pulumi.Output[str]]
    """CloudWatch log groups created for the exported logs (empty without
    ``cloudwatch_logs_retention_days``)."""
    postgresql_log_group_names: dict[str, pulumi.Output[str]]
    """Label (``db-1``... or ``cluster``) -> the ``postgresql`` log group created here, e.g. for
    ``ObservabilityLayerArgs.postgres_log_groups``."""
    rotation_security_group_id: pulumi.Output[str] | None
    """Security group of the deployed rotation Lambda (None when an ARN was given or RDS manages
    the password)."""

    def __init__(
        self, name: str, args: PostgresClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = coerce_args(args, PostgresClusterArgs)
        super().__init__("commerce:db:PostgresCluster", name, None, opts)
        self._name = name
        self._args = args
        self._port = args.port
        self._labels: dict[str, set[str]] = {"writer": set(), "readers": set()}
        self.is_aurora = args.engine_mode == "aurora"
        self.kms_key_arn = pulumi.Output.from_input(args.kms_key_arn)
        self.port = pulumi.Output.from_input(args.port)
        self.region = (
            pulumi.Output.from_input(args.region)
            if args.region is not None
            else aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        )
        tags = {**args.tags, "component": "PostgresCluster"}
        family = parameter_family(args.engine_mode, args.engine_version)

        self._placement(name, args, tags)
        self._monitoring_role(name, args, tags)
        password = self._master_password(name, args)
        ids = self._identifiers(name, args)
        log_groups = self._log_groups(name, args, ids, tags)
        insights = _insights_and_monitoring(
            args.kms_key_arn,
            args.performance_insights_retention_days,
            args.monitoring_interval_seconds,
            self.monitoring_role_arn if args.monitoring_interval_seconds else None,
        )
        db_opts = stateful(self, args.protect, depends_on=[*args.depends_on, *log_groups])
        build = self._aurora if self.is_aurora else self._rds
        managed_secret = build(
            name,
            args,
            family=family,
            ids=ids,
            password=password,
            insights=insights,
            db_opts=db_opts,
            tags=tags,
        )
        self.instance_identifiers = _collect([i.identifier for i in (*self.instances, *self.replicas)])
        self.replica_identifiers = _collect([r.identifier for r in self.replicas])
        self._credentials(name, args, managed_secret, password, tags)
        self.register_outputs(
            {
                "writer_endpoint": self.writer_endpoint,
                "port": self.port,
                "reader_endpoints": self.reader_endpoints,
                "instance_identifiers": self.instance_identifiers,
                "resource_ids": self.resource_ids,
                "primary_arn": self.primary_arn,
                "secret_arn": self.secret_arn,
                "security_group_id": self.security_group_id,
                "kms_key_arn": self.kms_key_arn,
            }
        )

    # -- the steps of __init__, in order ------------------------------------------------------

    def _placement(self, name: str, args: PostgresClusterArgs, tags: Mapping[str, str]) -> None:
        """Subnet group and security group: the given ones, or ``<name>-subnets`` / ``<name>-sg``."""
        self.instances: list[Any] = []
        self.replicas: list[Any] = []
        self.global_cluster: aws.rds.GlobalCluster | None = None
        self.global_cluster_id: pulumi.Output[str] | None = None
        self._reader_sg_id: pulumi.Input[str] | None = None
        self.reader_security_group_id: pulumi.Output[str] | None = None
        if args.db_subnet_group_name is not None:
            self.subnet_group_name = pulumi.Output.from_input(args.db_subnet_group_name)
        else:
            subnets = _db_subnet_group(name, "commerce-db PostgreSQL", args.subnet_ids, tags, self)
            self.subnet_group_name = subnets.name
        if args.security_group_ids:
            # The team's groups: the instances use them all; allow_from adds rules to the first.
            self._writer_groups: list[pulumi.Input[str]] = list(args.security_group_ids)
            self._sg_id: pulumi.Input[str] = args.security_group_ids[0]
        else:
            sg = _db_security_group(name, args.vpc_id, args.port, tags, self)
            self._writer_groups = [sg.id]
            self._sg_id = sg.id
        self.security_group_id = pulumi.Output.from_input(self._sg_id)
        self._replica_groups: list[pulumi.Input[str]] = self._writer_groups

    def _reader_groups(self, name: str, args: PostgresClusterArgs, tags: Mapping[str, str]) -> None:
        """RDS read replicas get their own group: apps read from them directly (a proxy cannot
        front RDS replicas), while the writer admits only the proxy and the rotation Lambda. With
        the team's own groups, the replicas share them."""
        if args.security_group_ids:
            return
        reader = _db_security_group(f"{name}-readers", args.vpc_id, args.port, tags, self)
        self._reader_sg_id = reader.id
        self._replica_groups = [reader.id]
        self.reader_security_group_id = reader.id

    def _monitoring_role(self, name: str, args: PostgresClusterArgs, tags: Mapping[str, str]) -> None:
        """Enhanced monitoring's role: the given ARN, or ``<name>-monitoring`` (none without an interval)."""
        if args.monitoring_role_arn is not None:
            self.monitoring_role_arn = pulumi.Output.from_input(args.monitoring_role_arn)
        elif args.monitoring_interval_seconds:
            # RDS checks the role's permissions when the instance is created: the ARN resolves
            # only after the policy attachment exists.
            self.monitoring_role_arn = service_role(
                f"{name}-monitoring",
                service="monitoring.rds.amazonaws.com",
                description="RDS enhanced monitoring publishes OS metrics to CloudWatch Logs",
                attachments={f"{name}-monitoring": ENHANCED_MONITORING_POLICY_ARN},
                tags=tags,
                parent=self,
            ).arn
        else:
            self.monitoring_role_arn = pulumi.Output.from_input(None)

    def _master_password(self, name: str, args: PostgresClusterArgs) -> pulumi.Output[str] | None:
        """Our generated master password (None when RDS manages it)."""
        if args.manage_master_user_password:
            return None
        # RDS refuses / " @ and spaces in master passwords.
        return random.RandomPassword(
            f"{name}-master-password",
            length=40,
            special=True,
            override_special=MASTER_PASSWORD_SPECIALS,
            min_lower=2,
            min_upper=2,
            min_numeric=2,
            min_special=2,
            opts=pulumi.ResourceOptions(parent=self),
        ).result

    def _identifiers(self, name: str, args: PostgresClusterArgs) -> dict[str, str]:
        """Label -> fixed DB identifier (empty: auto-named). Log groups with retention need the
        identifiers before the databases exist, so they fix them too."""
        prefix = args.identifier_prefix or (
            _default_identifier_prefix(name) if args.cloudwatch_logs_retention_days else None
        )
        if not prefix:
            return {}
        return planned_identifiers(
            prefix,
            engine_mode=args.engine_mode,
            replicas=args.in_region_replicas,
            aurora_readers=args.aurora_readers,
        )

    def _parameter_group_name(
        self, name: str, args: PostgresClusterArgs, family: str, tags: Mapping[str, str]
    ) -> pulumi.Input[str]:
        """The given (cluster) parameter group, or ``<name>-params`` tuned from ``args.parameters``."""
        if args.parameter_group_name is not None:
            return args.parameter_group_name
        params = tuned_parameters(args.parameters, aurora=self.is_aurora)
        group = _parameter_group(name, family, f"commerce-db tuned {family}", params, tags, self)
        if not self.is_aurora:
            self.parameter_group = group
        return group.name

    def _aurora(
        self,
        name: str,
        args: PostgresClusterArgs,
        *,
        family: str,
        ids: Mapping[str, str],
        password: pulumi.Output[str] | None,
        insights: Mapping[str, Any],
        db_opts: pulumi.ResourceOptions,
        tags: Mapping[str, str],
    ) -> Any:
        """Aurora: (global cluster,) cluster and its instances. Returns RDS's managed secret, if any."""
        managed = args.manage_master_user_password
        params_name = self._parameter_group_name(name, args, family, tags)
        serverless = args.aurora_instance_class == "db.serverless"
        if args.global_cluster_id is not None:
            self.global_cluster_id = pulumi.Output.from_input(args.global_cluster_id)
        elif args.aurora_global:
            # Created first and joined by the primary (the source_db_cluster_identifier route
            # makes the provider fight the cluster over its global_cluster_identifier).
            self.global_cluster = aws.rds.GlobalCluster(
                f"{name}-global",
                global_cluster_identifier=f"{args.identifier_prefix}-global"
                if args.identifier_prefix
                else None,
                engine="aurora-postgresql",
                engine_version=args.engine_version,
                engine_lifecycle_support=args.engine_lifecycle_support,
                database_name=args.db_name,
                storage_encrypted=True,
                deletion_protection=args.deletion_protection,
                opts=stateful(self, args.protect),
            )
            self.global_cluster_id = self.global_cluster.id
        cluster = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=ids.get("cluster"),
            global_cluster_identifier=self.global_cluster_id,
            engine="aurora-postgresql",
            engine_mode="provisioned",
            engine_version=args.engine_version,
            engine_lifecycle_support=args.engine_lifecycle_support,
            database_name=args.db_name,
            master_username=args.master_username,
            master_password=password,
            manage_master_user_password=True if managed else None,
            master_user_secret_kms_key_id=args.kms_key_arn if managed else None,
            port=args.port,
            db_subnet_group_name=self.subnet_group_name,
            vpc_security_group_ids=self._writer_groups,
            db_cluster_parameter_group_name=params_name,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            iam_database_authentication_enabled=args.iam_auth,
            backup_retention_period=args.backup_retention_days,
            preferred_backup_window=args.backup_window,
            preferred_maintenance_window=args.maintenance_window,
            enabled_cloudwatch_logs_exports=list(AURORA_LOG_EXPORTS),
            database_insights_mode=args.database_insights_mode,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=args.kms_key_arn,
            performance_insights_retention_period=args.performance_insights_retention_days,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.deletion_protection,
            final_snapshot_identifier=(
                args.final_snapshot_identifier or _final_snapshot_id(name, args.identifier_prefix)
            )
            if args.deletion_protection
            else None,
            copy_tags_to_snapshot=True,
            serverlessv2_scaling_configuration=aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
                min_capacity=args.aurora_min_capacity_acu, max_capacity=args.aurora_max_capacity_acu
            )
            if serverless
            else None,
            apply_immediately=True,  # a failover's or resize's changes must not wait for the window
            tags=tags,
            opts=pulumi.ResourceOptions.merge(
                db_opts, pulumi.ResourceOptions(ignore_changes=list(AURORA_ROLE_SWITCH_IGNORED))
            ),
        )
        in_cluster = pulumi.ResourceOptions(parent=cluster)
        for i in range(args.aurora_readers + 1):
            inst = aws.rds.ClusterInstance(
                f"{name}-{i + 1}",  # a slot, not a role: Aurora moves the writer role between them
                identifier=ids.get(f"db-{i + 1}"),
                cluster_identifier=cluster.id,
                engine=cluster.engine,
                engine_version=cluster.engine_version,
                instance_class=args.aurora_instance_class,
                db_subnet_group_name=self.subnet_group_name,
                publicly_accessible=args.publicly_accessible,
                auto_minor_version_upgrade=args.auto_minor_version_upgrade,
                preferred_maintenance_window=args.maintenance_window,
                ca_cert_identifier=CA_CERT_IDENTIFIER,
                copy_tags_to_snapshot=True,
                promotion_tier=0 if i == 0 else 1,
                apply_immediately=True,
                **insights,
                tags={**tags, "db-role": "writer" if i == 0 else "reader"},
                opts=in_cluster,
            )
            (self.instances if i == 0 else self.replicas).append(inst)
        self.cluster = cluster
        self.primary = cluster
        self.writer_endpoint = cluster.endpoint
        self.primary_arn = cluster.arn
        self.primary_identifier = cluster.id
        self.reader_endpoints = (
            cluster.reader_endpoint.apply(lambda e: [e]) if self.replicas else pulumi.Output.from_input([])
        )
        self.resource_ids = cluster.cluster_resource_id.apply(lambda r: [r])
        return cluster.master_user_secrets if managed else None

    def _rds(
        self,
        name: str,
        args: PostgresClusterArgs,
        *,
        family: str,
        ids: Mapping[str, str],
        password: pulumi.Output[str] | None,
        insights: Mapping[str, Any],
        db_opts: pulumi.ResourceOptions,
        tags: Mapping[str, str],
    ) -> Any:
        """RDS: the primary and the in-region read replicas. Returns RDS's managed secret, if any."""
        managed = args.manage_master_user_password
        params_name = self._parameter_group_name(name, args, family, tags)
        iops, throughput = storage_performance(
            args.storage_type, args.allocated_storage_gib, args.iops, args.storage_throughput_mibps
        )
        common = {
            "vpc_security_group_ids": self._writer_groups,
            "parameter_group_name": params_name,
            "publicly_accessible": args.publicly_accessible,
            "storage_type": args.storage_type,
            "iops": iops,
            "storage_throughput": throughput,
            "max_allocated_storage": args.max_allocated_storage_gib or None,
            "enabled_cloudwatch_logs_exports": list(RDS_LOG_EXPORTS),
            "iam_database_authentication_enabled": args.iam_auth,
            "auto_minor_version_upgrade": args.auto_minor_version_upgrade,
            "maintenance_window": args.maintenance_window,
            "copy_tags_to_snapshot": True,
            "ca_cert_identifier": CA_CERT_IDENTIFIER,
            "database_insights_mode": args.database_insights_mode,
            "port": args.port,
            **insights,
        }
        primary = aws.rds.Instance(
            f"{name}-1",  # slot 1: the writer here, the promotable replica in a replica region
            identifier=ids.get("db-1"),
            engine="postgres",
            engine_version=args.engine_version,
            engine_lifecycle_support=args.engine_lifecycle_support,
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gib,
            db_name=args.db_name,
            username=args.master_username,
            password=password,
            manage_master_user_password=True if managed else None,
            master_user_secret_kms_key_id=args.kms_key_arn if managed else None,
            db_subnet_group_name=self.subnet_group_name,
            multi_az=args.multi_az,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            backup_retention_period=args.backup_retention_days,
            backup_window=args.backup_window,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.deletion_protection,
            final_snapshot_identifier=(
                args.final_snapshot_identifier or _final_snapshot_id(name, args.identifier_prefix)
            )
            if args.deletion_protection
            else None,
            delete_automated_backups=not args.deletion_protection,
            apply_immediately=True,  # Multi-AZ/class/backup changes after a promotion apply now
            **common,
            tags={**tags, "db-role": "primary"},
            opts=pulumi.ResourceOptions.merge(
                db_opts,
                pulumi.ResourceOptions(
                    **{
                        **WRITER_INSTANCE_OPTIONS,
                        "ignore_changes": [
                            *WRITER_INSTANCE_OPTIONS["ignore_changes"],
                            *(PROMOTED_WRITER_IGNORED if args.writer_promoted else ()),
                        ],
                    }
                ),
            ),
        )
        self.instances.append(primary)
        if args.in_region_replicas:
            self._reader_groups(name, args, tags)
            replica_iops, replica_throughput = storage_performance(
                args.replica_storage_type,
                args.allocated_storage_gib,
                args.replica_iops,
                args.replica_storage_throughput_mibps,
            )
            # Storage per role: replicas serve reads; they get their own type and IOPS.
            common = {
                **common,
                "vpc_security_group_ids": self._replica_groups,
                "storage_type": args.replica_storage_type,
                "iops": replica_iops,
                "storage_throughput": replica_throughput,
            }
        for i in range(1, args.in_region_replicas + 1):
            # Same region: the source may be named by identifier. Engine, credentials, db name,
            # allocated storage, encryption key and backups come from the source.
            replica = aws.rds.Instance(
                f"{name}-{i + 1}",
                identifier=ids.get(f"db-{i + 1}"),
                replicate_source_db=primary.identifier,
                instance_class=args.replica_instance_class or args.instance_class,
                multi_az=False,
                # Inherited from the source (the API takes no flag for replicas); stated so the
                # plan and scanners read it, and matching what AWS reports after create.
                storage_encrypted=True,
                skip_final_snapshot=True,  # AWS takes no final snapshot of a read replica
                deletion_protection=args.deletion_protection,
                apply_immediately=True,
                **common,
                tags={**tags, "db-role": "replica"},
                opts=pulumi.ResourceOptions.merge(
                    db_opts, pulumi.ResourceOptions(**REPLICA_INSTANCE_OPTIONS)
                ),
            )
            self.replicas.append(replica)
        self.primary = primary
        self.writer_endpoint = primary.address
        self.primary_arn = primary.arn
        self.primary_identifier = primary.identifier
        self.reader_endpoints = _collect([r.address for r in self.replicas])
        self.resource_ids = _collect([i.resource_id for i in (*self.instances, *self.replicas)])
        return primary.master_user_secrets if managed else None

    def _credentials(
        self,
        name: str,
        args: PostgresClusterArgs,
        managed_secret: Any,
        password: pulumi.Output[str] | None,
        tags: Mapping[str, str],
    ) -> None:
        """The master secret (RDS's, or ours with rotation) and the application users."""
        self.rotation_security_group_id = None
        self.app_secret_arns: dict[str, pulumi.Output[str]] = {}
        self.db_bootstrap: aws.lambda_.Invocation | None = None
        if managed_secret is not None:
            # RDS owns the secret (and rotates it every 7 days by default).
            self.secret_arn = managed_secret.apply(_first_secret_arn)
        else:
            assert password is not None
            self.secret_arn = self._master_secret(name, args, self.writer_endpoint, password, tags)

    def _log_groups(
        self, name: str, args: PostgresClusterArgs, ids: Mapping[str, str], tags: Mapping[str, str]
    ) -> list[aws.cloudwatch.LogGroup]:
        """``<name>-logs``: with ``cloudwatch_logs_retention_days``, the groups RDS exports into,
        created first with that retention and the CMK (RDS would create them never-expiring and
        unencrypted). Aurora exports per cluster, RDS per instance."""
        self.log_group_names: list[pulumi.Output[str]] = []
        self.postgresql_log_group_names: dict[str, pulumi.Output[str]] = {}
        if not args.cloudwatch_logs_retention_days:
            return []
        aurora = args.engine_mode == "aurora"
        logs = RdsLogGroups(
            f"{name}-logs",
            RdsLogGroupsArgs(
                identifiers={"cluster": ids["cluster"]} if aurora else dict(ids),
                kind="cluster" if aurora else "instance",
                exports=AURORA_LOG_EXPORTS if aurora else RDS_LOG_EXPORTS,
                retention_days=args.cloudwatch_logs_retention_days,
                kms_key_arn=args.kms_key_arn,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.log_group_names = logs.log_group_names
        self.postgresql_log_group_names = logs.postgresql_log_group_names
        return logs.log_groups

    def _master_secret(
        self,
        name: str,
        args: PostgresClusterArgs,
        host: pulumi.Output[str],
        password: pulumi.Output[str],
        tags: Mapping[str, str],
    ) -> pulumi.Output[str]:
        """Our own KMS-encrypted master secret (the rotation Lambda's JSON shape) and its rotation."""
        secret = aws.secretsmanager.Secret(
            f"{name}-master",
            # A fixed name per region (a runbook can address the copy in another region by it).
            name=f"{args.identifier_prefix}-master" if args.identifier_prefix else None,
            description="commerce-db PostgreSQL master credentials (rotated)",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=30 if args.deletion_protection else 7,
            replicas=self._secret_replicas(args),
            tags=tags,
            opts=stateful(self, args.protect),
        )
        seeded = args.master_password_from_secret is not None
        if seeded:
            # The promoted database's master password: the promoted copy of the old writer's secret.
            current = aws.secretsmanager.get_secret_version_output(
                secret_id=args.master_password_from_secret, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            password = pulumi.Output.secret(current.secret_string.apply(lambda s: json.loads(s)["password"]))
        value = pulumi.Output.all(host, password).apply(
            lambda hp: json.dumps(
                {
                    "engine": "postgres",
                    "host": hp[0],
                    "port": args.port,
                    "username": args.master_username,
                    "password": hp[1],
                    "dbname": args.db_name or DEFAULT_DATABASE,
                }
            )
        )
        version = aws.secretsmanager.SecretVersion(
            f"{name}-master",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(cast(Any, value)),
            # After the first rotation the secret holds the live password; re-applying the
            # generated one would lock clients out.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]),
        )
        self._rotation_path: list[pulumi.Resource] = []
        lambda_arn = args.rotation_lambda_arn or self._rotation_function(name, args, tags)
        if args.app_users:
            self._app_users(name, args, secret, version, host, tags)
        # The user bootstrap signs in with the master's first password: the master's first
        # rotation (which changes that password) starts only after the bootstrap has finished.
        bootstrap = [self.db_bootstrap] if self.db_bootstrap is not None else []
        self.master_secret_rotation = aws.secretsmanager.SecretRotation(
            f"{name}-master",
            secret_id=secret.id,
            rotation_lambda_arn=lambda_arn,
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                automatically_after_days=args.password_rotation_days
            ),
            # Started from a promoted copy: the first rotation waits for the schedule (or the update
            # that ends the failover), so that copy stays valid through the failover.
            rotate_immediately=False if seeded else None,
            # rotate_immediately (the default) runs the Lambda as soon as this exists: it must find
            # the secret's first version, the database available and its network path open
            # (database ingress, Lambda egress, the interface endpoints), or the first rotation fails.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[version, *self.instances, *self._rotation_path, *bootstrap]
            ),
        )
        return secret.arn

    def _lambda_network(
        self, name: str, args: PostgresClusterArgs, tags: Mapping[str, str]
    ) -> pulumi.Output[str]:
        """Security group of the tier's Lambdas (rotation, user bootstrap) with their network path:
        PostgreSQL to the database, HTTPS to Secrets Manager / KMS. Created once."""
        if self.rotation_security_group_id is not None:
            return self.rotation_security_group_id
        child = pulumi.ResourceOptions(parent=self)
        sg = security_group(
            f"{name}-rotation-sg",
            "Secrets Manager rotation and user-bootstrap Lambdas: PostgreSQL and HTTPS egress only",
            args.vpc_id,
            tags,
            self,
        )
        to_db = egress_to(
            f"{name}-rotation-to-db",
            security_group_id=sg.id,
            destination_security_group_id=self._sg_id,
            port=args.port,
            description="PostgreSQL to the database",
            parent=self,
        )
        https: dict[str, Any] = (
            {"referenced_security_group_id": args.endpoint_security_group_id}
            if args.endpoint_security_group_id is not None
            else {"cidr_ipv4": "0.0.0.0/0"}  # egress only: Secrets Manager via NAT or existing endpoints
        )
        to_https = aws.vpc.SecurityGroupEgressRule(
            f"{name}-rotation-to-https",
            security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to Secrets Manager / KMS",
            **https,
            opts=child,
        )
        self._rotation_path += [to_db, to_https, self.allow_from("rotation", sg.id)]
        if args.endpoint_security_group_id is not None:
            # The interface endpoints admit only named security groups: this one among them.
            self._rotation_path.append(
                ingress_from(
                    f"{name}-endpoints-from-rotation",
                    security_group_id=args.endpoint_security_group_id,
                    source_security_group_id=sg.id,
                    port=443,
                    description="HTTPS from the PostgreSQL rotation Lambda",
                    parent=self,
                )
            )
        self.rotation_security_group_id = sg.id
        return sg.id

    def _rotation_function(
        self,
        name: str,
        args: PostgresClusterArgs,
        tags: Mapping[str, str],
        *,
        multi_user: bool = False,
        master_secret_arn: pulumi.Input[str] | None = None,
    ) -> pulumi.Output[str]:
        """AWS's single-user (master) or alternating-users (applications) rotation Lambda from the
        Serverless Application Repository, in the VPC."""
        sg_id = self._lambda_network(name, args, tags)
        subnets = pulumi.Output.from_input(args.subnet_ids).apply(lambda ids: ",".join(str(i) for i in ids))
        parameters: dict[str, pulumi.Input[str]] = {
            "endpoint": self.region.apply(lambda r: f"https://secretsmanager.{r}.amazonaws.com"),
            # Unique per stack and region: Lambda names are account-wide per region.
            "functionName": f"{_physical_base(name, args.identifier_prefix)}-pg-rotation"
            + ("-multi" if multi_user else ""),
            "vpcSubnetIds": subnets,
            "vpcSecurityGroupIds": sg_id,
            "kmsKeyArn": args.kms_key_arn,
        }
        if multi_user:
            # The alternating-users function signs in as the master to create the clone user.
            assert master_secret_arn is not None
            parameters["masterSecretArn"] = master_secret_arn
            parameters["masterSecretKmsKeyArn"] = args.kms_key_arn
        app = aws.serverlessrepository.CloudFormationStack(
            f"{name}-rotation{'-multi' if multi_user else ''}",
            application_id=ROTATION_MULTI_USER_APP_ID if multi_user else ROTATION_APP_ID,
            capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
            parameters=parameters,
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return app.outputs.apply(lambda o: str((o or {}).get("RotationLambdaARN", "")))

    def _app_users(
        self,
        name: str,
        args: PostgresClusterArgs,
        master: aws.secretsmanager.Secret,
        master_version: aws.secretsmanager.SecretVersion,
        host: pulumi.Output[str],
        tags: Mapping[str, str],
    ) -> None:
        """Per-application users with their own secrets, created once by the bootstrap Lambda and
        rotated with the alternating-users strategy (the master stays for administration)."""
        child = pulumi.ResourceOptions(parent=self)
        secrets: dict[str, aws.secretsmanager.Secret] = {}
        versions: list[pulumi.Resource] = []
        users = dict(args.app_users or {})
        for user, role in sorted(users.items()):
            pw = random.RandomPassword(
                f"{name}-{user}-password".replace("_", "-"),
                length=40,
                special=True,
                override_special=MASTER_PASSWORD_SPECIALS,
                min_lower=2,
                min_upper=2,
                min_numeric=2,
                min_special=2,
                opts=child,
            )
            secret = aws.secretsmanager.Secret(
                f"{name}-{user}".replace("_", "-"),
                description=f"PostgreSQL {role} application user {user} (alternating-users rotation)",
                kms_key_id=args.kms_key_arn,
                recovery_window_in_days=30 if args.deletion_protection else 7,
                replicas=self._secret_replicas(args),
                tags={**tags, "db-user-role": role},
                opts=stateful(self, args.protect),
            )
            login: pulumi.Output[Any] = pulumi.Output.all(user, pw.result)
            if args.app_credentials_from_secret_prefix is not None:
                login = self._promoted_login(
                    f"{args.app_credentials_from_secret_prefix}{user}-".replace("_", "-")
                )
            value = pulumi.Output.all(host, login, master.arn).apply(
                functools.partial(_app_secret_json, args=args)
            )
            versions.append(
                aws.secretsmanager.SecretVersion(
                    f"{name}-{user}".replace("_", "-"),
                    secret_id=secret.id,
                    secret_string=pulumi.Output.secret(cast(Any, value)),
                    # Rotation owns the value after the first run.
                    opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]),
                )
            )
            secrets[user] = secret
        self.app_secret_arns = {user: s.arn for user, s in secrets.items()}

        sg_id = self._lambda_network(name, args, tags)
        # A VPC function is refused unless its role may already create network interfaces: the
        # role's ARN resolves only after the VPC-access attachment exists.
        bootstrap_role = service_role(
            f"{name}-db-bootstrap",
            service="lambda.amazonaws.com",
            description="Creates the application database users once",
            attachments={f"{name}-db-bootstrap-vpc": LAMBDA_VPC_POLICY_ARN},
            tags=tags,
            parent=self,
        )
        read = aws.iam.RolePolicy(
            f"{name}-db-bootstrap-secrets",
            role=bootstrap_role.role.name,
            policy=pulumi.Output.all(
                self.region,
                master.arn,
                pulumi.Output.from_input(args.kms_key_arn),
                *(s.arn for s in secrets.values()),
            ).apply(lambda a: json.dumps(secret_reader_policy([*a[3:], a[1]], a[2], a[0]))),
            opts=child,
        )
        function_name = f"{_physical_base(name, args.identifier_prefix)}-db-bootstrap"
        logs = aws.cloudwatch.LogGroup(
            f"{name}-db-bootstrap",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=args.lambda_log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=tags,
            opts=child,
        )
        subnets = pulumi.Output.from_input(args.subnet_ids).apply(lambda ids: [str(i) for i in ids])
        fn = aws.lambda_.Function(
            f"{name}-db-bootstrap",
            name=function_name,
            runtime="python3.12",
            handler="index.handler",
            code=pulumi.AssetArchive({"index.py": pulumi.FileAsset(str(BOOTSTRAP_SOURCE))}),
            role=bootstrap_role.arn,
            timeout=120,
            # Runs once per change of the user list: never more than one at a time.
            reserved_concurrent_executions=1,
            kms_key_arn=args.kms_key_arn,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(subnet_ids=subnets, security_group_ids=[sg_id]),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={"AWS_STS_REGIONAL_ENDPOINTS": "regional"}
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, read, *bootstrap_role.attachments]),
        )
        event = pulumi.Output.all(master.arn, *(s.arn for s in secrets.values())).apply(
            lambda a: json.dumps(
                {
                    "master_secret_arn": a[0],
                    "group_prefix": args.app_role_prefix,
                    "users": [
                        {"secret_arn": arn, "role": users[user]}
                        for user, arn in zip(secrets, a[1:], strict=True)
                    ],
                }
            )
        )
        bootstrap = aws.lambda_.Invocation(
            f"{name}-db-bootstrap",
            function_name=fn.name,
            input=event,
            # Runs again only when the set of users changes (existing users are left alone).
            triggers={"users": ",".join(f"{u}:{r}" for u, r in sorted(users.items()))},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[master_version, *versions, *self.instances, *self._rotation_path],
            ),
        )
        self.db_bootstrap = bootstrap
        lambda_arn = args.app_rotation_lambda_arn or self._rotation_function(
            name, args, tags, multi_user=True, master_secret_arn=master.arn
        )
        for user, secret in secrets.items():
            aws.secretsmanager.SecretRotation(
                f"{name}-{user}".replace("_", "-"),
                secret_id=secret.id,
                rotation_lambda_arn=lambda_arn,
                rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                    automatically_after_days=args.password_rotation_days
                ),
                # The first rotation signs in as the user: the bootstrap must have created it.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[bootstrap, *self._rotation_path]),
            )

    def _promoted_login(self, prefix: str) -> pulumi.Output[list[str]]:
        """``[username, password]`` of the one secret named ``prefix*`` in this region (secret)."""
        arn = secret_arn_by_name_prefix(
            prefix, pulumi.InvokeOutputOptions(parent=self), where="in this region (a promoted copy)"
        )
        current = aws.secretsmanager.get_secret_version_output(
            secret_id=arn, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        return pulumi.Output.secret(
            current.secret_string.apply(
                lambda text: [json.loads(text)["username"], json.loads(text)["password"]]
            )
        )

    def _secret_replicas(
        self, args: PostgresClusterArgs
    ) -> list[aws.secretsmanager.SecretReplicaArgs] | None:
        return [
            aws.secretsmanager.SecretReplicaArgs(region=region, kms_key_id=key)
            for region, key in sorted(args.secret_replica_regions.items())
        ] or None

    def allow_from(self, label: str, source_sg_id: pulumi.Input[str]) -> aws.vpc.SecurityGroupIngressRule:
        """Admit ``source_sg_id`` to the database port (security-group reference, never a CIDR).

        ``label`` (1-40 lowercase letters, digits, hyphens; unique per component) names the rule
        ``<name>-from-<label>``; a label used twice is refused (two rules would share a name).
        """
        check_unique_label(label, self._labels["writer"], owner=self._name)
        return _ingress_from(self._name, label, self._sg_id, source_sg_id, self._port, self)

    def allow_readers_from(
        self, label: str, source_sg_id: pulumi.Input[str]
    ) -> aws.vpc.SecurityGroupIngressRule | None:
        """Admit ``source_sg_id`` to the in-region read replicas' port.

        No-op (None) without replicas, for Aurora, whose readers are reached through the proxy's
        READ_ONLY endpoint, and with ``security_group_ids`` (the replicas share your groups, which
        :meth:`allow_from` admits to).
        """
        if self._reader_sg_id is None:
            return None
        check_unique_label(label, self._labels["readers"], owner=f"{self._name} (readers)")
        return _ingress_from(
            f"{self._name}-readers", label, self._reader_sg_id, source_sg_id, self._port, self
        )

    def grant_connect(
        self, role: aws.iam.Role | str, db_user: str, *, label: str | None = None
    ) -> aws.iam.RolePolicy:
        """Let ``role`` (an ``aws.iam.Role`` or role name) connect as ``db_user`` with an IAM auth token.

        Produces an inline role policy with ``rds-db:connect`` on
        ``arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/db_user`` for every instance (or the Aurora
        cluster) of this component. The database user still needs ``GRANT rds_iam TO db_user``.
        """
        if not self._args.iam_auth:
            raise ValueError("grant_connect needs iam_auth=True (IAM database authentication is off)")
        return _grant_connect(self, self._name, self.region, self.resource_ids, role, db_user, label)


def _first_secret_arn(secrets: Any) -> str | None:
    if not secrets:
        return None
    first = secrets[0]
    return first.get("secret_arn") if isinstance(first, dict) else getattr(first, "secret_arn", None)


@dataclass(frozen=True, kw_only=True)
class CrossRegionReplicasArgs:
    """Inputs of :class:`CrossRegionReplicas` (all resources land in this component's region)."""

    region: str
    """Destination region. Required."""
    source_region: str
    """Region of the source primary (must differ). Required."""
    source_arn: pulumi.Input[str]
    """ARN of the source DB instance: cross-region replicas must name it by ARN. Required."""
    vpc_id: pulumi.Input[str]
    """Destination VPC. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Destination private subnets (>= 2 AZs). Required."""
    kms_key_arn: pulumi.Input[str]
    """CMK **in the destination region** (an encrypted source needs one). Required."""
    engine_version: str = "16"
    """Source engine version (picks the parameter family of the destination group). Default: "16"."""
    count: int = 1
    """Replicas in this region. Default: 1."""
    instance_class: str = "db.r7g.large"
    """Replica class. Default: "db.r7g.large"."""
    storage_type: Literal["gp3", "io2"] = "gp3"
    """Storage type of the replicas (storage is set per role, not copied from the primary).
    Default: "gp3"."""
    iops: int | None = None
    """Provisioned IOPS (io2; gp3 from 400 GiB, None = baseline). Default: None."""
    storage_throughput_mibps: int | None = None
    """gp3 throughput (None = baseline). Default: None."""
    allocated_storage_gib: int | None = None
    """The source's allocated storage, which replicas inherit: with it the storage rules are
    checked and gp3's baseline IOPS/throughput applied from 400 GiB. None sends ``iops`` and
    ``storage_throughput_mibps`` as given. Default: None."""
    promotable_instance_class: str | None = None
    """Class of slot 1 (``<prefix>-1``), the replica a failover promotes to this region's writer;
    set, slot 1 also takes the ``promotable_*`` storage settings. Give it the writer's class and
    storage: a promotion then leaves a writer as large as the one lost (and the replica keeps up
    with the writer's write rate before), and the update that follows a failover changes neither
    class nor storage on the only writer (a class change on a single-AZ instance is downtime; a
    storage change blocks further storage changes for about 6 hours). Allocated size needs nothing:
    a replica inherits the source's. None: slot 1 is sized like the other replicas. Default: None."""
    promotable_storage_type: Literal["gp3", "io2"] = "gp3"
    """Storage type of slot 1 (with ``promotable_instance_class`` only). Default: "gp3"."""
    promotable_iops: int | None = None
    """Provisioned IOPS of slot 1 (with ``promotable_instance_class`` only; rules as ``iops``).
    Default: None."""
    promotable_storage_throughput_mibps: int | None = None
    """gp3 throughput of slot 1 (with ``promotable_instance_class`` only). Default: None."""
    max_allocated_storage_gib: int = 1000
    """Autoscaling ceiling; 0 disables. Default: 1000."""
    port: int = 5432
    """Listener port. Default: 5432."""
    parameters: PostgresParameters = field(default_factory=PostgresParameters)
    """Same tuned parameters as the primary (a hot standby needs max_connections >= the primary's).
    Default: PostgresParameters()."""
    monitoring_interval_seconds: int = 60
    """Enhanced monitoring interval. Default: 60."""
    monitoring_role_arn: pulumi.Input[str] | None = None
    """Enhanced monitoring role (IAM is global; reuse the primary's). Default: None."""
    performance_insights_retention_days: int = 7
    """PI retention. Default: 7."""
    database_insights_mode: Literal["standard", "advanced"] = "standard"
    """Database Insights mode. Default: "standard"."""
    iam_auth: bool = True
    """IAM database authentication. Default: True."""
    maintenance_window: str = "sun:04:30-sun:05:30"
    """Weekly maintenance window (UTC). Default: "sun:04:30-sun:05:30"."""
    auto_minor_version_upgrade: bool = True
    """Minor upgrades in the window. Default: True."""
    deletion_protection: bool = True
    """Deletion protection on the replicas. Default: True."""
    protect: bool = True
    """Pulumi ``protect`` and ``retain_on_delete`` on the replicas (one may be promoted to be the
    primary). Default: True."""
    identifier_prefix: str | None = None
    """Fixed identifiers ``<prefix>-N`` (see :func:`planned_replica_identifiers`); None auto-names.
    Default: None."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Resources the replicas wait for (their RDS log groups). Default: ()."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        if self.region == self.source_region:
            raise ValueError(f"region {self.region!r} equals source_region; use in-region replicas instead")
        check_rds_common(self)
        check_instance_class("instance_class", self.instance_class)
        check_db_identifier("identifier_prefix", self.identifier_prefix, longest_suffix="-99")
        if self.count < 1:
            raise ValueError(f"count {self.count} is invalid; allowed: >= 1")
        parameter_family("rds", self.engine_version)
        sizes = [("", self.instance_class, self.storage_type, self.iops, self.storage_throughput_mibps)]
        if self.promotable_instance_class is not None:
            check_instance_class("promotable_instance_class", self.promotable_instance_class)
            sizes.append(
                (
                    "promotable_",
                    self.promotable_instance_class,
                    self.promotable_storage_type,
                    self.promotable_iops,
                    self.promotable_storage_throughput_mibps,
                )
            )
        for prefix, cls, stype, iops, thr in sizes:
            if self.allocated_storage_gib is not None:
                try:
                    check_storage(stype, self.allocated_storage_gib, iops, thr)
                except StorageError as exc:
                    if not prefix:
                        raise
                    raise StorageError(f"{prefix}{exc.field}", exc.value, exc.allowed) from None
            check_rds_instance_class(
                cls, engine="postgres", region=self.region, field=f"{prefix}instance_class"
            )
            check_class_limits(
                cls,
                field=f"{prefix}instance_class",
                iops=iops if stype == "io2" or iops is not None else None,
                throughput_mibps=thr,
                max_connections=self.parameters.max_connections,
            )


def planned_replica_identifiers(prefix: str, count: int) -> dict[str, str]:
    """Label -> identifier of :class:`CrossRegionReplicas` with ``identifier_prefix=prefix``.

    The same slot names as :func:`planned_identifiers` (``db-N`` -> ``<prefix>-N``): the replica
    in slot 1 keeps its name when it is promoted to the region's writer.
    """
    return {f"db-{i}": f"{prefix}-{i}" for i in range(1, count + 1)}


class CrossRegionReplicas(pulumi.ComponentResource):
    """Read replicas of a primary in another region, with this region's groups and CMK."""

    reader_endpoints: pulumi.Output[list[str]]
    """Replica addresses (without port)."""
    instance_identifiers: pulumi.Output[list[str]]
    """Replica identifiers."""
    resource_ids: pulumi.Output[list[str]]
    """DbiResourceIds (``rds-db:connect`` resources)."""
    security_group_id: pulumi.Output[str]
    """Security group of the replicas."""

    def __init__(
        self, name: str, args: CrossRegionReplicasArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("commerce:db:CrossRegionReplicas", name, None, opts)
        self._name = name
        self._args = args
        tags = {**args.tags, "component": "CrossRegionReplicas"}
        family = parameter_family("rds", args.engine_version)
        subnets = _db_subnet_group(name, "commerce-db PostgreSQL replicas", args.subnet_ids, tags, self)
        self._sg = _db_security_group(name, args.vpc_id, args.port, tags, self)
        self.security_group_id = self._sg.id
        params = _parameter_group(
            name,
            family,
            f"commerce-db tuned {family}",  # ForceNew: the same text in every role
            tuned_parameters(args.parameters),
            tags,
            self,
        )
        ids = (
            planned_replica_identifiers(args.identifier_prefix, args.count) if args.identifier_prefix else {}
        )
        db_opts = stateful(self, args.protect, depends_on=list(args.depends_on))
        base_perf = (
            storage_performance(
                args.storage_type, args.allocated_storage_gib, args.iops, args.storage_throughput_mibps
            )
            if args.allocated_storage_gib is not None
            else (args.iops, args.storage_throughput_mibps)
        )
        replicas = []
        for i in range(1, args.count + 1):
            # Slot 1 is promoted in a failover: sized like the writer it becomes, when given.
            promotable = i == 1 and args.promotable_instance_class is not None
            stype = args.promotable_storage_type if promotable else args.storage_type
            if promotable:
                iops_thr = (args.promotable_iops, args.promotable_storage_throughput_mibps)
                perf = (
                    storage_performance(stype, args.allocated_storage_gib, *iops_thr)
                    if args.allocated_storage_gib is not None
                    else iops_thr
                )
            else:
                perf = base_perf
            replicas.append(
                aws.rds.Instance(
                    f"{name}-{i}",
                    identifier=ids.get(f"db-{i}"),
                    replicate_source_db=args.source_arn,  # cross-region: must be the ARN
                    kms_key_id=args.kms_key_arn,  # a key of THIS region re-encrypts the copy
                    storage_encrypted=True,  # implied by kms_key_id for a cross-region replica
                    instance_class=args.promotable_instance_class if promotable else args.instance_class,
                    db_subnet_group_name=subnets.name,
                    vpc_security_group_ids=[self._sg.id],
                    parameter_group_name=params.name,
                    publicly_accessible=False,
                    multi_az=False,
                    storage_type=stype,
                    iops=perf[0],
                    storage_throughput=perf[1],
                    max_allocated_storage=args.max_allocated_storage_gib or None,
                    enabled_cloudwatch_logs_exports=list(RDS_LOG_EXPORTS),
                    iam_database_authentication_enabled=args.iam_auth,
                    auto_minor_version_upgrade=args.auto_minor_version_upgrade,
                    maintenance_window=args.maintenance_window,
                    copy_tags_to_snapshot=True,
                    ca_cert_identifier=CA_CERT_IDENTIFIER,
                    database_insights_mode=args.database_insights_mode,
                    **_insights_and_monitoring(
                        args.kms_key_arn,
                        args.performance_insights_retention_days,
                        args.monitoring_interval_seconds,
                        args.monitoring_role_arn,
                    ),
                    port=args.port,
                    deletion_protection=args.deletion_protection,
                    skip_final_snapshot=True,  # AWS takes no final snapshot of a read replica
                    apply_immediately=True,
                    tags={**tags, "db-role": "cross-region-replica", "source-region": args.source_region},
                    opts=pulumi.ResourceOptions.merge(
                        db_opts, pulumi.ResourceOptions(**REPLICA_INSTANCE_OPTIONS)
                    ),
                )
            )
        self.replicas = replicas
        self.parameter_group = params
        self.reader_endpoints = _collect([r.address for r in replicas])
        self.instance_identifiers = _collect([r.identifier for r in replicas])
        self.resource_ids = _collect([r.resource_id for r in replicas])
        self.register_outputs(
            {
                "reader_endpoints": self.reader_endpoints,
                "instance_identifiers": self.instance_identifiers,
                "security_group_id": self.security_group_id,
            }
        )

    def allow_from(self, label: str, source_sg_id: pulumi.Input[str]) -> aws.vpc.SecurityGroupIngressRule:
        """Admit ``source_sg_id`` to the replicas' port (security-group reference, never a CIDR)."""
        return _ingress_from(self._name, label, self._sg.id, source_sg_id, self._args.port, self)

    def grant_connect(
        self, role: aws.iam.Role | str, db_user: str, *, label: str | None = None
    ) -> aws.iam.RolePolicy:
        """Let ``role`` connect to these replicas as ``db_user`` via IAM auth (see PostgresCluster)."""
        return _grant_connect(self, self._name, self._args.region, self.resource_ids, role, db_user, label)


@dataclass(frozen=True, kw_only=True)
class AuroraSecondaryClusterArgs:
    """Inputs of :class:`AuroraSecondaryCluster` (all resources land in this component's region)."""

    region: str
    """Secondary region. Required."""
    source_region: str
    """Region of the primary cluster (must differ). Required."""
    global_cluster_id: pulumi.Input[str]
    """Aurora Global Database to join (``PostgresCluster.global_cluster_id``). Required."""
    vpc_id: pulumi.Input[str]
    """Secondary VPC. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Secondary private subnets (>= 2 AZs). Required."""
    kms_key_arn: pulumi.Input[str]
    """CMK **in this region** encrypting the secondary's storage and PI. Required."""
    engine_version: str = "16"
    """The global cluster's engine version (see :func:`check_engine_version`). Default: "16"."""
    engine_lifecycle_support: EngineLifecycleSupport = "open-source-rds-extended-support-disabled"
    """RDS Extended Support of the secondary, the same as the global cluster's. Default:
    "open-source-rds-extended-support-disabled"."""
    readers: int = 1
    """Reader instances (>= 1, else the secondary serves nothing). Default: 1."""
    backup_retention_days: int = 7
    """Backup retention the secondary keeps once promoted (1-35). Default: 7."""
    backup_window: str = "03:00-04:00"
    """Daily backup window (UTC). Default: "03:00-04:00"."""
    instance_class: str = "db.serverless"
    """Reader class. Default: "db.serverless"."""
    min_capacity_acu: float = 0.5
    """Serverless v2 minimum ACUs. Default: 0.5."""
    max_capacity_acu: float = 16.0
    """Serverless v2 maximum ACUs. Default: 16."""
    port: int = 5432
    """Listener port. Default: 5432."""
    parameters: PostgresParameters = field(default_factory=PostgresParameters)
    """Same tuned parameters as the primary. Default: PostgresParameters()."""
    monitoring_interval_seconds: int = 60
    """Enhanced monitoring interval. Default: 60."""
    monitoring_role_arn: pulumi.Input[str] | None = None
    """Enhanced monitoring role (IAM is global; reuse the primary's). Default: None."""
    performance_insights_retention_days: int = 7
    """PI retention. Default: 7."""
    iam_auth: bool = True
    """IAM database authentication. Default: True."""
    maintenance_window: str = "sun:04:30-sun:05:30"
    """Weekly maintenance window (UTC). Default: "sun:04:30-sun:05:30"."""
    auto_minor_version_upgrade: bool = True
    """Minor upgrades in the window. Default: True."""
    deletion_protection: bool = True
    """Deletion protection, and a final snapshot on delete: a secondary becomes the primary after
    a failover, so it is protected like one. Default: True."""
    final_snapshot_identifier: str | None = None
    """Final snapshot name when deletion_protection is on (None: ``<prefix>-final``, else
    ``commerce-db-secondary-final``). Default: None."""
    protect: bool = True
    """Pulumi ``protect`` and ``retain_on_delete`` on the secondary cluster (it may be promoted).
    Default: True."""
    identifier_prefix: str | None = None
    """Fixed identifiers ``<prefix>-cluster`` / ``<prefix>-N`` (the same names the region's
    :class:`PostgresCluster` uses, so a failover keeps them); None auto-names. Default: None."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Resources to wait for: the primary's writer instance (a secondary can only join a global
    cluster whose primary has an instance) and this region's log groups. Default: ()."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        if self.region == self.source_region:
            raise ValueError(
                f"region {self.region!r} equals source_region; a secondary lives in another region"
            )
        check_rds_common(self, backup_window=self.backup_window)
        check_instance_class("instance_class", self.instance_class, serverless_ok=True)
        if self.instance_class == "db.serverless":
            check_aurora_capacity(self.min_capacity_acu, self.max_capacity_acu)
        check_db_identifier("identifier_prefix", self.identifier_prefix, longest_suffix="-cluster")
        check_snapshot_identifier("final_snapshot_identifier", self.final_snapshot_identifier)
        if self.readers < 1:
            raise ValueError(f"readers {self.readers} is invalid; allowed: >= 1")
        parameter_family("aurora", self.engine_version)
        check_engine_version(self.engine_version, auto_minor_version_upgrade=self.auto_minor_version_upgrade)
        check_rds_engine_version(self.engine_version, engine="aurora-postgresql")
        check_rds_instance_class(
            self.instance_class, engine="aurora-postgresql", region=self.region, field="instance_class"
        )


class AuroraSecondaryCluster(pulumi.ComponentResource):
    """A read-only Aurora Global Database member in another region, with its region's groups and CMK."""

    reader_endpoints: pulumi.Output[list[str]]
    """The secondary cluster's reader endpoint."""
    cluster_identifier: pulumi.Output[str]
    """Secondary cluster identifier."""
    reader_identifiers: pulumi.Output[list[str]]
    """Reader instance identifiers."""
    security_group_id: pulumi.Output[str]
    """Security group of the secondary."""

    def __init__(
        self, name: str, args: AuroraSecondaryClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("commerce:db:AuroraSecondaryCluster", name, None, opts)
        self._name = name
        self._args = args
        tags = {**args.tags, "component": "AuroraSecondaryCluster"}
        family = parameter_family("aurora", args.engine_version)
        subnets = _db_subnet_group(name, "commerce-db Aurora secondary", args.subnet_ids, tags, self)
        self._sg = _db_security_group(name, args.vpc_id, args.port, tags, self)
        self.security_group_id = self._sg.id
        params = _parameter_group(
            name,
            family,
            f"commerce-db tuned {family}",  # ForceNew: the same text in every role
            tuned_parameters(args.parameters, aurora=True),
            tags,
            self,
        )
        prefix = args.identifier_prefix
        cluster = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=f"{prefix}-cluster" if prefix else None,
            engine="aurora-postgresql",
            engine_mode="provisioned",
            engine_version=args.engine_version,
            engine_lifecycle_support=args.engine_lifecycle_support,
            # Joins the global cluster: no credentials or database name (replicated from the primary).
            global_cluster_identifier=args.global_cluster_id,
            port=args.port,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self._sg.id],
            db_cluster_parameter_group_name=params.name,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            iam_database_authentication_enabled=args.iam_auth,
            enabled_cloudwatch_logs_exports=list(AURORA_LOG_EXPORTS),
            preferred_maintenance_window=args.maintenance_window,
            backup_retention_period=args.backup_retention_days,  # applies after a promotion
            preferred_backup_window=args.backup_window,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.deletion_protection,
            final_snapshot_identifier=(
                args.final_snapshot_identifier
                or (f"{prefix}-final" if prefix else "commerce-db-secondary-final")
            )
            if args.deletion_protection
            else None,
            apply_immediately=True,
            copy_tags_to_snapshot=True,
            serverlessv2_scaling_configuration=aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
                min_capacity=args.min_capacity_acu, max_capacity=args.max_capacity_acu
            )
            if args.instance_class == "db.serverless"
            else None,
            tags={**tags, "source-region": args.source_region},
            opts=stateful(
                self,
                args.protect,
                depends_on=list(args.depends_on),
                # AWS sets the replication source on the member (the provider must not clear it);
                # the master password exists only once this cluster is promoted.
                ignore_changes=list(AURORA_ROLE_SWITCH_IGNORED),
            ),
        )
        readers = [
            aws.rds.ClusterInstance(
                f"{name}-{i}",
                identifier=f"{prefix}-{i}" if prefix else None,
                cluster_identifier=cluster.id,
                engine=cluster.engine,
                engine_version=cluster.engine_version,
                instance_class=args.instance_class,
                db_subnet_group_name=subnets.name,
                publicly_accessible=False,
                auto_minor_version_upgrade=args.auto_minor_version_upgrade,
                preferred_maintenance_window=args.maintenance_window,
                ca_cert_identifier=CA_CERT_IDENTIFIER,
                copy_tags_to_snapshot=True,
                **_insights_and_monitoring(
                    args.kms_key_arn,
                    args.performance_insights_retention_days,
                    args.monitoring_interval_seconds,
                    args.monitoring_role_arn,
                ),
                tags={**tags, "db-role": "reader"},
                opts=pulumi.ResourceOptions(parent=cluster),
            )
            for i in range(1, args.readers + 1)
        ]
        self.cluster = cluster
        self.readers = readers
        self.cluster_identifier = cluster.id
        self.reader_endpoints = cluster.reader_endpoint.apply(lambda e: [e])
        self.reader_identifiers = _collect([r.identifier for r in readers])
        self.register_outputs(
            {
                "reader_endpoints": self.reader_endpoints,
                "cluster_identifier": self.cluster_identifier,
                "security_group_id": self.security_group_id,
            }
        )

    def allow_from(self, label: str, source_sg_id: pulumi.Input[str]) -> aws.vpc.SecurityGroupIngressRule:
        """Admit ``source_sg_id`` to the secondary's port (security-group reference, never a CIDR)."""
        return _ingress_from(self._name, label, self._sg.id, source_sg_id, self._args.port, self)
