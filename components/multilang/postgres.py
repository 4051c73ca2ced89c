"""Multi-language ``PostgresCluster``: TypedDict inputs in front of the frozen PostgresClusterArgs.

Field names equal the Args' field names, so a field passes through by name; only what other
languages cannot express differs: enums instead of ``Literal``, a nested ``PostgresParameters``
object, and the capability methods as inputs (``allowed_security_groups`` -> ``allow_from``,
``reader_allowed_security_groups`` -> ``allow_readers_from``, ``connect_grants`` ->
``grant_connect``). The real component is the wrapper's child, so its ``commerce:db:*`` type and
child names are the same as in a Python program.
"""

from typing import Any, NotRequired, TypedDict

import pulumi

from ..config import PostgresParameters as _PostgresParameters
from ..postgres_cluster import PostgresCluster as _PostgresCluster
from ..postgres_cluster import PostgresClusterArgs as _PostgresClusterArgs
from ._convert import coerce_args
from ._outputs import outputs_of, publish
from .enums import DatabaseInsightsMode, EngineMode, StorageType


class PostgresParameters(TypedDict):
    """Tuned PostgreSQL parameters of the cluster's parameter group (unset fields keep their defaults)."""

    log_min_duration_statement_ms: NotRequired[int]
    """Log statements slower than this (ms); -1 disables. Default: 500."""
    work_mem_kb: NotRequired[int]
    """work_mem per sort/hash node (kB). Default: 16384."""
    maintenance_work_mem_kb: NotRequired[int]
    """maintenance_work_mem (kB). Default: 524288."""
    wal_buffers_pages: NotRequired[int]
    """wal_buffers in 8 kB pages (static: applied at reboot). Default: 2048."""
    max_connections: NotRequired[int]
    """max_connections (static). Default: unset (AWS's formula from the instance memory)."""
    random_page_cost: NotRequired[float]
    """random_page_cost (SSD storage). Default: 1.1."""
    idle_in_transaction_timeout_ms: NotRequired[int]
    """idle_in_transaction_session_timeout (ms); 0 disables. Default: 60000."""
    extra: NotRequired[dict[str, str]]
    """Further parameters, name -> value (pending-reboot); rds.force_ssl and
    shared_preload_libraries cannot be overridden. Default: {}."""


class ConnectGrant(TypedDict):
    """An IAM role allowed to connect as a database user with an IAM auth token."""

    role_name: str
    """Name of the IAM role that gets the rds-db:connect policy."""
    db_user: str
    """Database user the role may connect as (it needs GRANT rds_iam)."""


class PostgresClusterInputs(TypedDict):
    """Inputs of the PostgresCluster component."""

    region: NotRequired[str]
    """Region of the database (IAM rds-db ARNs, the rotation endpoint). Default: the provider's."""
    vpc_id: pulumi.Input[str]
    """VPC of the database. Required."""
    subnet_ids: pulumi.Input[list[pulumi.Input[str]]]
    """Private subnets in at least 2 AZs. Required."""
    kms_key_arn: pulumi.Input[str]
    """CMK for storage, Performance Insights and the master secret. Required."""
    engine_mode: NotRequired[EngineMode]
    """rds (instances) or aurora (Aurora PostgreSQL cluster). Default: rds."""
    engine_version: NotRequired[str]
    """PostgreSQL 16.x or 17.x; picks the parameter family. Default: 16.6."""
    instance_class: NotRequired[str]
    """Primary instance class (rds mode). Default: db.r7g.large."""
    replica_instance_class: NotRequired[str]
    """Read replica class (rds mode). Default: the primary's class."""
    in_region_replicas: NotRequired[int]
    """Read replicas in this region (rds mode). Default: 1."""
    multi_az: NotRequired[bool]
    """Multi-AZ primary (rds mode). Default: true."""
    storage_type: NotRequired[StorageType]
    """Storage type (rds mode). Default: gp3."""
    allocated_storage_gib: NotRequired[int]
    """Initial storage in GiB (rds mode). Default: 100."""
    max_allocated_storage_gib: NotRequired[int]
    """Storage autoscaling ceiling in GiB; 0 disables. Default: 1000."""
    iops: NotRequired[int]
    """Provisioned IOPS (io2, or gp3 from 400 GiB). Default: unset."""
    storage_throughput_mibps: NotRequired[int]
    """gp3 throughput in MiB/s (from 400 GiB). Default: unset."""
    db_name: NotRequired[str]
    """Initial database name. Default: the component's default."""
    master_username: NotRequired[str]
    """Master user name. Default: the component's default."""
    port: NotRequired[int]
    """Listener port. Default: 5432."""
    manage_master_user_password: NotRequired[bool]
    """Let RDS manage the master secret (refused with read replicas, as AWS refuses them). Default: false."""
    password_rotation_days: NotRequired[int]
    """Rotation schedule of the master secret in days. Default: 30."""
    rotation_lambda_arn: NotRequired[str]
    """Existing rotation Lambda; unset deploys AWS's single-user rotation function. Default: unset."""
    endpoint_security_group_id: NotRequired[pulumi.Input[str]]
    """Security group of the Secrets Manager/KMS endpoints the rotation Lambda uses. Default: unset."""
    deletion_protection: NotRequired[bool]
    """Deletion protection and a final snapshot on delete. Default: true."""
    final_snapshot_identifier: NotRequired[str]
    """Final snapshot name (with deletion protection). Default: the component's default."""
    backup_retention_days: NotRequired[int]
    """Automated backup retention, 1-35 days. Default: 7."""
    backup_window: NotRequired[str]
    """Daily backup window (UTC, hh:mm-hh:mm). Default: 03:00-04:00."""
    maintenance_window: NotRequired[str]
    """Weekly maintenance window (UTC, ddd:hh:mm-ddd:hh:mm). Default: sun:04:30-sun:05:30."""
    auto_minor_version_upgrade: NotRequired[bool]
    """Minor engine upgrades in the maintenance window. Default: true."""
    performance_insights_retention_days: NotRequired[int]
    """Performance Insights retention (7 or a multiple of 31, up to 731). Default: 7."""
    database_insights_mode: NotRequired[DatabaseInsightsMode]
    """Database Insights mode. Default: standard."""
    monitoring_interval_seconds: NotRequired[int]
    """Enhanced monitoring interval; 0 disables it. Default: 60."""
    iam_auth: NotRequired[bool]
    """IAM database authentication. Default: true."""
    parameters: NotRequired[PostgresParameters]
    """Tuned parameters of the parameter group. Default: the documented defaults."""
    aurora_readers: NotRequired[int]
    """Aurora readers besides the writer. Default: 1."""
    aurora_instance_class: NotRequired[str]
    """Aurora instance class; db.serverless uses Serverless v2. Default: db.serverless."""
    aurora_min_capacity_acu: NotRequired[float]
    """Serverless v2 minimum ACUs. Default: 0.5."""
    aurora_max_capacity_acu: NotRequired[float]
    """Serverless v2 maximum ACUs. Default: 16."""
    identifier_prefix: NotRequired[str]
    """Fixed DB identifiers <prefix>-1 (writer), <prefix>-2...; unset: auto-named. Default: unset."""
    cloudwatch_logs_retention_days: NotRequired[int]
    """Create the exported logs' CloudWatch log groups first, encrypted, with this retention.
    Default: unset (RDS creates them, never expiring)."""
    parameter_group_name: NotRequired[pulumi.Input[str]]
    """Existing (cluster) parameter group to use instead of creating one; it must set
    rds.force_ssl=1 and needs parameter_group_enforces_tls=true. Default: unset."""
    parameter_group_enforces_tls: NotRequired[bool]
    """Acknowledges that parameter_group_name's group sets rds.force_ssl=1; required with it.
    Default: false."""
    db_subnet_group_name: NotRequired[pulumi.Input[str]]
    """Existing DB subnet group to use instead of creating one. Default: unset."""
    security_group_ids: NotRequired[list[pulumi.Input[str]]]
    """Existing security groups to use instead of creating them. Default: []."""
    tags: NotRequired[dict[str, str]]
    """Tags on every taggable child. Default: {}."""
    allowed_security_groups: NotRequired[dict[str, pulumi.Input[str]]]
    """Label -> security group admitted to the writer's port (the allow_from capability). Default: {}."""
    reader_allowed_security_groups: NotRequired[dict[str, pulumi.Input[str]]]
    """Label -> security group admitted to the read replicas' port (allow_readers_from). Default: {}."""
    connect_grants: NotRequired[list[ConnectGrant]]
    """IAM roles that may connect as a database user with IAM auth tokens (grant_connect). Default: []."""


# Wrapper-only inputs: they call capability methods instead of becoming Args fields.
_CAPABILITY_FIELDS = ("allowed_security_groups", "reader_allowed_security_groups", "connect_grants")

POSTGRES_OUTPUTS = (
    "writer_endpoint",
    "port",
    "reader_endpoints",
    "instance_identifiers",
    "replica_identifiers",
    "resource_ids",
    "primary_arn",
    "primary_identifier",
    "secret_arn",
    "security_group_id",
    "reader_security_group_id",
    "kms_key_arn",
    "monitoring_role_arn",
    "global_cluster_id",
    "rotation_security_group_id",
)


def build_postgres(
    name: str, inputs: dict[str, Any], parent: pulumi.Resource
) -> tuple[_PostgresCluster, _PostgresClusterArgs]:
    """The real :class:`PostgresCluster` (child of ``parent``) from coerced wrapper inputs.

    Building the frozen Args runs their validation, so bad input fails exactly as in Python.
    """
    fields = {k: v for k, v in inputs.items() if k not in _CAPABILITY_FIELDS}
    if "parameters" in fields:
        fields["parameters"] = _PostgresParameters(**fields["parameters"])
    args = _PostgresClusterArgs(**fields)
    db = _PostgresCluster(name, args, opts=pulumi.ResourceOptions(parent=parent))
    for label, sg in (inputs.get("allowed_security_groups") or {}).items():
        db.allow_from(label, sg)
    for label, sg in (inputs.get("reader_allowed_security_groups") or {}).items():
        db.allow_readers_from(label, sg)
    for grant in inputs.get("connect_grants") or []:
        db.grant_connect(grant["role_name"], grant["db_user"])
    return db, args


class PostgresCluster(pulumi.ComponentResource):
    """PostgreSQL for one region: an RDS Multi-AZ primary with read replicas, or an Aurora cluster,
    with KMS encryption, forced TLS, a generated master secret with rotation, Performance Insights,
    enhanced monitoring and a security group that admits only the groups you name."""

    writer_endpoint: pulumi.Output[str]
    """Writer address (RDS primary or Aurora cluster endpoint), without port."""
    port: pulumi.Output[int]
    """Listener port."""
    reader_endpoints: pulumi.Output[list[str]]
    """RDS: the replica addresses; Aurora: the cluster reader endpoint (if readers exist)."""
    instance_identifiers: pulumi.Output[list[str]]
    """DB instance identifiers, writer first."""
    replica_identifiers: pulumi.Output[list[str]]
    """Read replica (RDS) or reader (Aurora) identifiers."""
    resource_ids: pulumi.Output[list[str]]
    """DbiResourceIds (RDS) or the cluster resource id (Aurora): the rds-db:connect resources."""
    primary_arn: pulumi.Output[str]
    """ARN of the RDS primary or the Aurora cluster."""
    primary_identifier: pulumi.Output[str]
    """Identifier of the RDS primary or the Aurora cluster (the proxy target)."""
    secret_arn: pulumi.Output[str]
    """Secrets Manager secret with the master credentials (JSON: engine, host, port, username,
    password, dbname)."""
    security_group_id: pulumi.Output[str]
    """Security group of the writer: admits the proxy, the rotation Lambda and allowed groups."""
    reader_security_group_id: pulumi.Output[str] | None
    """Security group of the RDS read replicas (absent without them)."""
    kms_key_arn: pulumi.Output[str]
    """CMK encrypting storage, Performance Insights and the secret."""
    monitoring_role_arn: pulumi.Output[str] | None
    """Enhanced monitoring role (absent when monitoring is off)."""
    global_cluster_id: pulumi.Output[str] | None
    """Aurora Global Database id (absent unless aurora_global)."""
    rotation_security_group_id: pulumi.Output[str] | None
    """Security group of the deployed rotation Lambda (absent when an ARN was given or RDS manages
    the password)."""

    def __init__(
        self, name: str, args: PostgresClusterInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("commerce:index:PostgresCluster", name, {}, opts)
        db, _ = build_postgres(name, coerce_args(PostgresClusterInputs, args), self)
        publish(self, outputs_of(db, POSTGRES_OUTPUTS), POSTGRES_OUTPUTS)
