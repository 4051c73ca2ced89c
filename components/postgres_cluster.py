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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ._iam import service_assume_role_policy
from ._security_groups import egress_to, ingress_from, security_group
from .config import MASTER_PASSWORD_SPECIALS, PostgresParameters

ENHANCED_MONITORING_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
RDS_LOG_EXPORTS: tuple[str, ...] = ("postgresql", "upgrade")
"""RDS PostgreSQL log types exported to CloudWatch Logs."""
AURORA_LOG_EXPORTS: tuple[str, ...] = ("postgresql",)
"""Aurora PostgreSQL log types exported to CloudWatch Logs."""
ROTATION_APP_ID = (
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationSingleUser"
)
"""AWS's single-user PostgreSQL rotation function in the Serverless Application Repository."""
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


AURORA_ROLE_SWITCH_IGNORED = ("replicationSourceIdentifier",)
"""Aurora cluster inputs a Global Database role switch must not touch: AWS sets the replication
source on a secondary. (A promoted secondary does get the master password: the new writer
region's secret holds it, see PostgresCluster._master_secret.)"""

WRITER_INSTANCE_OPTIONS: dict[str, Any] = {}
"""Resource options of the writer instance. No replace_on_changes: replicate_source_db
disappearing is a promotion, which the provider does in place. The password is not ignored: a
promoted replica gets the new writer region's generated password in the same ``up`` that
creates that region's secret holding it (rotation takes over from there)."""

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
    monitoring_role_arn: pulumi.Input[str] | None,
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
    region: str,
    resource_ids: pulumi.Output[list[str]],
    role: aws.iam.Role | str,
    db_user: str,
    label: str | None,
) -> aws.iam.RolePolicy:
    """``<name>-connect-<label>-<db_user>``: an inline policy with ``rds-db:connect`` on ``resource_ids``."""
    tag = label or _role_label(role)
    role_name = role.name if isinstance(role, aws.iam.Role) else role
    identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent))
    policy = pulumi.Output.all(identity.account_id, resource_ids).apply(
        lambda a: json.dumps(rds_connect_policy(region, a[0], a[1], db_user))
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


def _role_label(role: Any) -> str:
    if isinstance(role, aws.iam.Role):
        return str(role._name)  # logical name: stable and unique
    if isinstance(role, str):
        return role
    raise TypeError(
        "grant_connect(role=...) needs an aws.iam.Role or a role name string (pass label= otherwise)"
    )


@dataclass(frozen=True, kw_only=True)
class PostgresClusterArgs:
    """Inputs of :class:`PostgresCluster`. Plain fields drive control flow; ``Input`` fields are wired."""

    region: str
    """Region (used in IAM ``rds-db`` ARNs and the rotation endpoint). Required."""
    vpc_id: pulumi.Input[str]
    """VPC of the database. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets, >= 2 AZs. Required."""
    kms_key_arn: pulumi.Input[str]
    """CMK for storage, Performance Insights, the secret and (Aurora) the cluster. Required."""
    engine_mode: Literal["rds", "aurora"] = "rds"
    """``rds`` (instances) or ``aurora`` (Aurora PostgreSQL cluster). Default: "rds"."""
    engine_version: str = "16.6"
    """PostgreSQL 16.x or 17.x; picks the parameter family. Default: "16.6"."""
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
    """Provisioned IOPS; None where AWS fixes it (gp3 < 400 GiB). Default: None."""
    storage_throughput_mibps: int | None = None
    """gp3 throughput (>= 400 GiB only). Default: None."""
    db_name: str = "commerce"
    """Initial database. Default: "commerce"."""
    master_username: str = "commerce_admin"
    """Master user. Default: "commerce_admin"."""
    port: int = 5432
    """Listener port. Default: 5432."""
    manage_master_user_password: bool = False
    """Let RDS manage the master secret (refused with replicas, as AWS refuses them). Default: False."""
    password_rotation_days: int = 30
    """Rotation schedule of the master secret. Default: 30."""
    rotation_lambda_arn: str | None = None
    """Rotation Lambda to use; None deploys AWS's SAR single-user PostgreSQL rotation function
    into the private subnets. Default: None."""
    endpoint_security_group_id: pulumi.Input[str] | None = None
    """Security group of the Secrets Manager/KMS interface endpoints; the rotation Lambda's HTTPS
    egress goes only there. None lets it reach 443 anywhere (NAT or existing endpoints).
    Default: None."""
    secret_replica_regions: Mapping[str, pulumi.Input[str] | None] = field(default_factory=dict)
    """Replicate the master secret to these regions (region -> CMK ARN there, or None for the AWS
    managed key), so readers and DR there read it locally. Default: {}."""
    publicly_accessible: bool = False
    """Public address on the writer and readers. Only exists so a stack can express it and the
    no-public-database policy can reject it; the tier is private. Default: False."""
    deletion_protection: bool = True
    """Deletion protection and a final snapshot on delete. Default: True."""
    final_snapshot_identifier: str = "commerce-db-final"
    """Final snapshot name (used when deletion_protection is on). Default: "commerce-db-final"."""
    backup_retention_days: int = 7
    """Automated backup retention, 1-35 (> 0 is needed for replicas). Default: 7."""
    backup_window: str = "03:00-04:00"
    """Daily backup window (UTC). Default: "03:00-04:00"."""
    maintenance_window: str = "sun:04:30-sun:05:30"
    """Weekly maintenance window (UTC). Default: "sun:04:30-sun:05:30"."""
    auto_minor_version_upgrade: bool = True
    """Minor upgrades in the maintenance window. Default: True."""
    performance_insights_retention_days: int = 7
    """Performance Insights retention (7 or 31*k). Default: 7."""
    database_insights_mode: Literal["standard", "advanced"] = "standard"
    """Database Insights mode (advanced needs retention >= 465). Default: "standard"."""
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
    identifier_prefix: str | None = None
    """Fixed DB identifiers ``<prefix>-primary``, ``<prefix>-replica-N`` (Aurora: ``<prefix>-cluster``,
    ``<prefix>-writer``, ``<prefix>-reader-N``), known before the DB exists so that its log groups can
    be created first (see :func:`planned_identifiers`). None lets Pulumi auto-name. Default: None."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Resources the DB resources wait for (the RDS log groups). Default: ()."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        parameter_family(self.engine_mode, self.engine_version)
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
    monitoring_role_arn: pulumi.Output[str | None]
    """Enhanced monitoring role (IAM is global: cross-region replicas reuse it)."""
    global_cluster_id: pulumi.Output[str] | None
    """Aurora Global Database id (None unless ``aurora_global``)."""
    rotation_security_group_id: pulumi.Output[str] | None
    """Security group of the deployed rotation Lambda (None when an ARN was given or RDS manages
    the password)."""

    def __init__(
        self, name: str, args: PostgresClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("commerce:db:PostgresCluster", name, None, opts)
        self._name = name
        self._args = args
        self._port = args.port
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "component": "PostgresCluster"}
        self.is_aurora = args.engine_mode == "aurora"
        family = parameter_family(args.engine_mode, args.engine_version)

        subnets = _db_subnet_group(name, "commerce-db PostgreSQL", args.subnet_ids, tags, self)
        self.subnet_group_name = subnets.name
        self._sg = _db_security_group(name, args.vpc_id, args.port, tags, self)
        self.security_group_id = self._sg.id
        self._reader_sg: aws.ec2.SecurityGroup | None = None
        self.global_cluster: aws.rds.GlobalCluster | None = None
        self.global_cluster_id: pulumi.Output[str] | None = None
        self.reader_security_group_id: pulumi.Output[str] | None = None
        self.kms_key_arn = pulumi.Output.from_input(args.kms_key_arn)

        self.monitoring_role_arn = pulumi.Output.from_input(None)
        monitoring_role: aws.iam.Role | None = None
        if args.monitoring_role_arn is not None:
            self.monitoring_role_arn = pulumi.Output.from_input(args.monitoring_role_arn)
        elif args.monitoring_interval_seconds:
            monitoring_role = aws.iam.Role(
                f"{name}-monitoring",
                description="RDS enhanced monitoring publishes OS metrics to CloudWatch Logs",
                assume_role_policy=service_assume_role_policy("monitoring.rds.amazonaws.com"),
                tags=tags,
                opts=child,
            )
            aws.iam.RolePolicyAttachment(
                f"{name}-monitoring",
                role=monitoring_role.name,
                policy_arn=ENHANCED_MONITORING_POLICY_ARN,
                opts=child,
            )
            self.monitoring_role_arn = monitoring_role.arn

        managed = args.manage_master_user_password
        password: pulumi.Output[str] | None = None
        if not managed:
            # RDS refuses / " @ and spaces in master passwords.
            pw = random.RandomPassword(
                f"{name}-master-password",
                length=40,
                special=True,
                override_special=MASTER_PASSWORD_SPECIALS,
                min_lower=2,
                min_upper=2,
                min_numeric=2,
                min_special=2,
                opts=child,
            )
            password = pw.result

        params = tuned_parameters(args.parameters, aurora=args.engine_mode == "aurora")
        insights = _insights_and_monitoring(
            args.kms_key_arn,
            args.performance_insights_retention_days,
            args.monitoring_interval_seconds,
            monitoring_role.arn if monitoring_role else args.monitoring_role_arn,
        )
        ids = (
            planned_identifiers(
                args.identifier_prefix,
                engine_mode=args.engine_mode,
                replicas=args.in_region_replicas,
                aurora_readers=args.aurora_readers,
            )
            if args.identifier_prefix
            else {}
        )
        db_opts = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        instances: list[Any] = []
        replicas: list[Any] = []
        if self.is_aurora:
            cluster_params = _parameter_group(name, family, f"commerce-db tuned {family}", params, tags, self)
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
                    database_name=args.db_name,
                    storage_encrypted=True,
                    deletion_protection=args.deletion_protection,
                    opts=child,
                )
                self.global_cluster_id = self.global_cluster.id
            cluster = aws.rds.Cluster(
                f"{name}-cluster",
                cluster_identifier=ids.get("cluster"),
                global_cluster_identifier=self.global_cluster_id,
                engine="aurora-postgresql",
                engine_mode="provisioned",
                engine_version=args.engine_version,
                database_name=args.db_name,
                master_username=args.master_username,
                master_password=password,
                manage_master_user_password=True if managed else None,
                master_user_secret_kms_key_id=args.kms_key_arn if managed else None,
                port=args.port,
                db_subnet_group_name=subnets.name,
                vpc_security_group_ids=[self._sg.id],
                db_cluster_parameter_group_name=cluster_params.name,
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
                final_snapshot_identifier=args.final_snapshot_identifier
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
                    db_subnet_group_name=subnets.name,
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
                (instances if i == 0 else replicas).append(inst)
            self.cluster = cluster
            self.primary = cluster
            writer_address = cluster.endpoint
            self.primary_arn = cluster.arn
            self.primary_identifier = cluster.id
            self.reader_endpoints = (
                cluster.reader_endpoint.apply(lambda e: [e]) if replicas else pulumi.Output.from_input([])
            )
            self.resource_ids = cluster.cluster_resource_id.apply(lambda r: [r])
            managed_secret = cluster.master_user_secrets if managed else None
        else:
            self.parameter_group = _parameter_group(
                name, family, f"commerce-db tuned {family}", params, tags, self
            )
            common = {
                "vpc_security_group_ids": [self._sg.id],
                "parameter_group_name": self.parameter_group.name,
                "publicly_accessible": args.publicly_accessible,
                "storage_type": args.storage_type,
                "iops": args.iops,
                "storage_throughput": args.storage_throughput_mibps,
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
                instance_class=args.instance_class,
                allocated_storage=args.allocated_storage_gib,
                db_name=args.db_name,
                username=args.master_username,
                password=password,
                manage_master_user_password=True if managed else None,
                master_user_secret_kms_key_id=args.kms_key_arn if managed else None,
                db_subnet_group_name=subnets.name,
                multi_az=args.multi_az,
                storage_encrypted=True,
                kms_key_id=args.kms_key_arn,
                backup_retention_period=args.backup_retention_days,
                backup_window=args.backup_window,
                deletion_protection=args.deletion_protection,
                skip_final_snapshot=not args.deletion_protection,
                final_snapshot_identifier=args.final_snapshot_identifier
                if args.deletion_protection
                else None,
                delete_automated_backups=not args.deletion_protection,
                apply_immediately=True,  # Multi-AZ/class/backup changes after a promotion apply now
                **common,
                tags={**tags, "db-role": "primary"},
                opts=pulumi.ResourceOptions.merge(db_opts, pulumi.ResourceOptions(**WRITER_INSTANCE_OPTIONS)),
            )
            instances.append(primary)
            if args.in_region_replicas:
                # Replicas get their own group: apps read from them directly (a proxy cannot front
                # RDS replicas), while the writer admits only the proxy and the rotation Lambda.
                self._reader_sg = _db_security_group(f"{name}-readers", args.vpc_id, args.port, tags, self)
                self.reader_security_group_id = self._reader_sg.id
                common = {**common, "vpc_security_group_ids": [self._reader_sg.id]}
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
                replicas.append(replica)
            self.primary = primary
            writer_address = primary.address
            self.primary_arn = primary.arn
            self.primary_identifier = primary.identifier
            self.reader_endpoints = _collect([r.address for r in replicas])
            self.resource_ids = _collect([i.resource_id for i in (*instances, *replicas)])
            managed_secret = primary.master_user_secrets if managed else None

        self.instances = instances
        self.replicas = replicas
        self.writer_endpoint = writer_address
        self.port = pulumi.Output.from_input(args.port)
        self.instance_identifiers = _collect([i.identifier for i in (*instances, *replicas)])
        self.replica_identifiers = _collect([r.identifier for r in replicas])

        self.rotation_security_group_id = None
        if managed_secret is not None:
            # RDS owns the secret (and rotates it every 7 days by default).
            self.secret_arn = managed_secret.apply(_first_secret_arn)
        else:
            assert password is not None
            self.secret_arn = self._master_secret(name, args, writer_address, password, tags)
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

    def _master_secret(
        self,
        name: str,
        args: PostgresClusterArgs,
        host: pulumi.Output[str],
        password: pulumi.Output[str],
        tags: Mapping[str, str],
    ) -> pulumi.Output[str]:
        """Our own KMS-encrypted master secret (the rotation Lambda's JSON shape) and its rotation."""
        child = pulumi.ResourceOptions(parent=self)
        secret = aws.secretsmanager.Secret(
            f"{name}-master",
            # A fixed name per region (a runbook can address the copy in another region by it).
            name=f"{args.identifier_prefix}-master" if args.identifier_prefix else None,
            description="commerce-db PostgreSQL master credentials (rotated)",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=30 if args.deletion_protection else 7,
            replicas=[
                aws.secretsmanager.SecretReplicaArgs(region=region, kms_key_id=key)
                for region, key in sorted(args.secret_replica_regions.items())
            ]
            or None,
            tags=tags,
            opts=child,
        )
        value = pulumi.Output.all(host, password).apply(
            lambda hp: json.dumps(
                {
                    "engine": "postgres",
                    "host": hp[0],
                    "port": args.port,
                    "username": args.master_username,
                    "password": hp[1],
                    "dbname": args.db_name,
                }
            )
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-master",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(cast(Any, value)),
            # After the first rotation the secret holds the live password; re-applying the
            # generated one would lock clients out.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]),
        )
        lambda_arn = args.rotation_lambda_arn or self._rotation_function(name, args, secret, tags)
        aws.secretsmanager.SecretRotation(
            f"{name}-master",
            secret_id=secret.id,
            rotation_lambda_arn=lambda_arn,
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                automatically_after_days=args.password_rotation_days
            ),
            opts=child,
        )
        return secret.arn

    def _rotation_function(
        self, name: str, args: PostgresClusterArgs, secret: aws.secretsmanager.Secret, tags: Mapping[str, str]
    ) -> pulumi.Output[str]:
        """AWS's single-user rotation Lambda from the Serverless Application Repository, in the VPC."""
        child = pulumi.ResourceOptions(parent=self)
        sg = security_group(
            f"{name}-rotation-sg",
            "Secrets Manager rotation Lambda: PostgreSQL and HTTPS egress only",
            args.vpc_id,
            tags,
            self,
        )
        egress_to(
            f"{name}-rotation-to-db",
            security_group_id=sg.id,
            destination_security_group_id=self._sg.id,
            port=args.port,
            description="PostgreSQL to the database",
            parent=self,
        )
        https: dict[str, Any] = (
            {"referenced_security_group_id": args.endpoint_security_group_id}
            if args.endpoint_security_group_id is not None
            else {"cidr_ipv4": "0.0.0.0/0"}  # egress only: Secrets Manager via NAT or existing endpoints
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-rotation-to-https",
            security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to Secrets Manager / KMS",
            **https,
            opts=child,
        )
        self.allow_from("rotation", sg.id)
        self.rotation_security_group_id = sg.id
        subnets = pulumi.Output.from_input(args.subnet_ids).apply(lambda ids: ",".join(str(i) for i in ids))
        app = aws.serverlessrepository.CloudFormationStack(
            f"{name}-rotation",
            application_id=ROTATION_APP_ID,
            capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
            parameters={
                "endpoint": f"https://secretsmanager.{args.region}.amazonaws.com",
                # Unique per stack and region: Lambda names are account-wide per region.
                "functionName": f"{args.identifier_prefix or name}-pg-rotation",
                "vpcSubnetIds": subnets,
                "vpcSecurityGroupIds": sg.id,
                "kmsKeyArn": args.kms_key_arn,
            },
            tags=dict(tags),
            opts=child,
        )
        return app.outputs.apply(lambda o: str((o or {}).get("RotationLambdaARN", "")))

    def allow_from(self, label: str, source_sg_id: pulumi.Input[str]) -> aws.vpc.SecurityGroupIngressRule:
        """Admit ``source_sg_id`` to the database port (security-group reference, never a CIDR)."""
        return _ingress_from(self._name, label, self._sg.id, source_sg_id, self._port, self)

    def allow_readers_from(
        self, label: str, source_sg_id: pulumi.Input[str]
    ) -> aws.vpc.SecurityGroupIngressRule | None:
        """Admit ``source_sg_id`` to the in-region read replicas' port.

        No-op (None) without replicas and for Aurora, whose readers are reached through the
        proxy's READ_ONLY endpoint.
        """
        if self._reader_sg is None:
            return None
        return _ingress_from(
            f"{self._name}-readers", label, self._reader_sg.id, source_sg_id, self._port, self
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
        return _grant_connect(self, self._name, self._args.region, self.resource_ids, role, db_user, label)


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
    engine_version: str = "16.6"
    """Source engine version (picks the parameter family of the destination group). Default: "16.6"."""
    count: int = 1
    """Replicas in this region. Default: 1."""
    instance_class: str = "db.r7g.large"
    """Replica class. Default: "db.r7g.large"."""
    storage_type: Literal["gp3", "io2"] = "gp3"
    """Storage type (same I/O capacity as the primary). Default: "gp3"."""
    iops: int | None = None
    """Provisioned IOPS. Default: None."""
    storage_throughput_mibps: int | None = None
    """gp3 throughput. Default: None."""
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
        if self.count < 1:
            raise ValueError(f"count {self.count} is invalid; allowed: >= 1")
        parameter_family("rds", self.engine_version)


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
        db_opts = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        replicas = []
        for i in range(1, args.count + 1):
            replicas.append(
                aws.rds.Instance(
                    f"{name}-{i}",
                    identifier=ids.get(f"db-{i}"),
                    replicate_source_db=args.source_arn,  # cross-region: must be the ARN
                    kms_key_id=args.kms_key_arn,  # a key of THIS region re-encrypts the copy
                    storage_encrypted=True,  # implied by kms_key_id for a cross-region replica
                    instance_class=args.instance_class,
                    db_subnet_group_name=subnets.name,
                    vpc_security_group_ids=[self._sg.id],
                    parameter_group_name=params.name,
                    publicly_accessible=False,
                    multi_az=False,
                    storage_type=args.storage_type,
                    iops=args.iops,
                    storage_throughput=args.storage_throughput_mibps,
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
    engine_version: str = "16.6"
    """The global cluster's engine version. Default: "16.6"."""
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
        if self.readers < 1:
            raise ValueError(f"readers {self.readers} is invalid; allowed: >= 1")
        parameter_family("aurora", self.engine_version)


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
            opts=pulumi.ResourceOptions(
                parent=self,
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
