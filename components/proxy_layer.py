"""ProxyLayer: RDS Proxy in front of the PostgreSQL writer.

The proxy pools connections to the primary instance (or the Aurora cluster): TLS required,
clients authenticate with the master secret's credentials through Secrets Manager (and/or IAM),
and its IAM role may read exactly that secret and decrypt it only via Secrets Manager. It has its
own security group: apps reach it through :meth:`ProxyLayer.allow_from`, and the database admits
the proxy's group only.

AWS facts this encodes: a proxy can only target the writer of an RDS replication setup, never a
read replica, and READ_ONLY proxy endpoints only work with an Aurora cluster target. So an RDS
deployment's readers are the replica endpoints themselves (:attr:`reader_endpoints`), while the
Aurora variant gets a READ_ONLY proxy endpoint. ``session_pinning_filters`` and ``init_query`` are
not set: AWS does not support them for PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from ._iam import service_assume_role_policy
from ._security_groups import egress_to, ingress_from, security_group
from .postgres_cluster import PostgresCluster, rds_connect_policy, secret_reader_policy
from .validation import check_log_retention, check_region, check_unique_label, coerce_args

ENGINE_DEFAULT_PORT = 5432
"""RDS Proxy for PostgreSQL listens on the engine family's default port, whatever the database's."""


def proxy_role_policy(secret_arns: str | Sequence[str], kms_key_arn: str, region: str) -> dict[str, Any]:
    """The proxy role's only permissions: read its secrets, decrypt them only through Secrets Manager."""
    arns = [secret_arns] if isinstance(secret_arns, str) else list(secret_arns)
    return secret_reader_policy(arns, kms_key_arn, region)


def secret_arn_patterns(kms_key_arn: str, region: str, name_patterns: Sequence[str]) -> list[str]:
    """Secrets Manager ARN patterns for secret names in ``region``, in the account (and partition)
    of ``kms_key_arn``: ``arn:<partition>:secretsmanager:<region>:<account>:secret:<pattern>``."""
    parts = kms_key_arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"kms_key_arn {kms_key_arn!r} is not an ARN (the account comes from it)")
    return [f"arn:{parts[1]}:secretsmanager:{region}:{parts[4]}:secret:{p}" for p in name_patterns]


@dataclass(frozen=True, kw_only=True)
class ProxyLayerArgs:
    """Inputs of :class:`ProxyLayer`."""

    target: PostgresCluster
    """The database: its primary instance (RDS) or cluster (Aurora) is the single target, its
    security group admits the proxy, its secret and CMK are what the role may use. Required."""
    vpc_id: pulumi.Input[str]
    """VPC of the proxy (must be the database's). Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets, >= 2 (also for the read-only endpoint). Required."""
    region: str | None = None
    """Region (the ``kms:ViaService`` condition and ``rds-db`` ARNs name it). None takes the
    target's (``PostgresCluster.region``), else the provider's. Default: None."""
    iam_auth: Literal["REQUIRED", "DISABLED"] = "DISABLED"
    """Client IAM auth for the secret-based login (ENABLED is SQL Server only). Default: "DISABLED"."""
    default_auth_scheme: Literal["NONE", "IAM_AUTH"] = "NONE"
    """``IAM_AUTH``: end-to-end IAM, no secret lookup per connection. Default: "NONE"."""
    max_connections_percent: int = 90
    """Share of the DB's max_connections the pool may use. Default: 90."""
    max_idle_connections_percent: int = 50
    """Idle connections kept, <= max_connections_percent. Default: 50."""
    connection_borrow_timeout_seconds: int = 120
    """Wait for a pooled connection before failing. Default: 120."""
    idle_client_timeout_seconds: int = 1800
    """Close client connections idle this long. Default: 1800."""
    debug_logging: bool = False
    """Log SQL text (sensitive; debugging only). Default: False."""
    read_only_endpoint: bool = False
    """Add a READ_ONLY proxy endpoint. Aurora targets only (AWS refuses it for RDS instances).
    Default: False."""
    allowed_security_groups: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """App security groups (label -> id) allowed in, as :meth:`ProxyLayer.allow_from`. Default: {}."""
    proxy_name: str | None = None
    """Proxy name (unique per account and region). Given, the proxy's log group
    ``/aws/rds/proxy/<name>`` is created first with ``log_retention_days`` and ``log_kms_key_arn``;
    None auto-names the proxy and leaves its log group to RDS (no retention, no CMK).
    Default: None."""
    log_retention_days: int = 30
    """Retention of the proxy's log group (a CloudWatch Logs allowed value). Default: 30."""
    log_kms_key_arn: pulumi.Input[str] | None = None
    """CMK of the proxy's log group (its key policy must admit CloudWatch Logs). Default: None."""
    register_target: bool = True
    """Register ``target`` with the proxy's default target group. False pre-creates a proxy whose
    database cannot be a target yet: an RDS read replica in a replica region (AWS accepts only the
    writer of an RDS replication setup); after promotion, ``register-db-proxy-targets`` (a
    regional RDS call) or the next ``up`` adds it. Default: True."""
    secret_name_patterns: Sequence[str] = ()
    """Secret *name* patterns (``*`` wildcards) the proxy role may read in this region, instead of
    the target's secret ARNs. The role's policy then does not depend on which secrets the proxy
    lists, so a replica region's pre-created proxy keeps its role and policy unchanged when its
    region is promoted and the proxy switches to that region's own secrets (no IAM call during a
    failover). Decryption stays limited to the target's CMK. Every secret of the target must match
    a pattern. Default: () (the exact ARNs)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        if not hasattr(self.target, "primary_identifier") or not hasattr(self.target, "allow_from"):
            raise TypeError(
                f"target is a {type(self.target).__name__}; expected the PostgresCluster to front "
                "(ProxyLayerArgs(target=db, ...))"
            )
        if self.region is not None:
            check_region("region", self.region)
        for pattern in self.secret_name_patterns:
            if not re.fullmatch(r"[A-Za-z0-9/_+=.@*-]{1,512}", pattern) or pattern.strip("*") == "":
                raise ValueError(
                    f"secret_name_patterns entry {pattern!r} is invalid; allowed: secret name characters "
                    "(letters, digits, /_+=.@-) with * wildcards, not only wildcards"
                )
        if self.read_only_endpoint and not self.target.is_aurora:
            raise ValueError(
                "read_only_endpoint is True for an RDS instance target; AWS supports READ_ONLY proxy "
                "endpoints only for Aurora clusters (use the replica endpoints for reads)"
            )
        if self.iam_auth not in ("REQUIRED", "DISABLED"):
            raise ValueError(f"iam_auth {self.iam_auth!r} is invalid; allowed: REQUIRED, DISABLED")
        if self.default_auth_scheme not in ("NONE", "IAM_AUTH"):
            raise ValueError(
                f"default_auth_scheme {self.default_auth_scheme!r} is invalid; allowed: NONE, IAM_AUTH"
            )
        if not 1 <= self.max_connections_percent <= 100:
            raise ValueError(
                f"max_connections_percent {self.max_connections_percent} is invalid; allowed: 1-100"
            )
        if not 0 <= self.max_idle_connections_percent <= self.max_connections_percent:
            raise ValueError(
                f"max_idle_connections_percent {self.max_idle_connections_percent} is invalid; "
                f"allowed: 0-{self.max_connections_percent} (max_connections_percent)"
            )
        if self.proxy_name is not None and not re.fullmatch(
            r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,59}(?<!-)", self.proxy_name
        ):
            raise ValueError(
                f"proxy_name {self.proxy_name!r} is invalid; allowed: 1-60 letters, digits and hyphens, "
                "starting with a letter, no double or trailing hyphen"
            )
        check_log_retention("log_retention_days", self.log_retention_days)
        if not 0 <= self.connection_borrow_timeout_seconds <= 3600:
            raise ValueError(
                f"connection_borrow_timeout_seconds {self.connection_borrow_timeout_seconds} is invalid; "
                "allowed: 0-3600"
            )


class ProxyLayer(pulumi.ComponentResource):
    """RDS Proxy (writer pool) with its role, security group, target and optional RO endpoint."""

    writer_endpoint: pulumi.Output[str]
    """Proxy endpoint for writes (and reads that must see the latest write)."""
    reader_endpoints: pulumi.Output[list[str]]
    """Aurora: the READ_ONLY proxy endpoint; RDS: the replica instance endpoints (not proxied)."""
    proxy_name: pulumi.Output[str]
    """Proxy name (CloudWatch ``ProxyName`` dimension)."""
    port: pulumi.Output[int]
    """Port clients connect to: the engine's default (5432), whatever the database's port."""
    proxy_arn: pulumi.Output[str]
    """Proxy ARN."""
    security_group_id: pulumi.Output[str]
    """Proxy security group."""
    role_arn: pulumi.Output[str]
    """Proxy IAM role."""

    def __init__(self, name: str, args: ProxyLayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args = coerce_args(args, ProxyLayerArgs)
        super().__init__("commerce:db:ProxyLayer", name, None, opts)
        self._name = name
        self._labels: set[str] = set()
        db = args.target
        region: pulumi.Output[str] = (
            pulumi.Output.from_input(args.region)
            if args.region is not None
            else getattr(db, "region", None)
            or aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        )
        self._region = region
        # Clients reach the proxy on the engine's default port; the proxy reaches the database on
        # the database's own port.
        self._port = ENGINE_DEFAULT_PORT
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "component": "ProxyLayer"}

        self._sg = security_group(
            f"{name}-sg",
            "RDS Proxy: PostgreSQL from allowed app security groups only",
            args.vpc_id,
            tags,
            self,
        )
        self.security_group_id = self._sg.id
        egress_to(
            f"{name}-to-db",
            security_group_id=self._sg.id,
            destination_security_group_id=db.security_group_id,
            port=db._port,
            description="PostgreSQL to the database",
            parent=self,
        )
        db.allow_from("proxy", self._sg.id)

        # Applications sign in as their own users (their alternating-users rotation keeps one
        # password valid at all times); the master secret only where the database has none.
        secrets: dict[str, pulumi.Output[str]] = dict(getattr(db, "app_secret_arns", None) or {}) or {
            "master": db.secret_arn
        }
        role = aws.iam.Role(
            f"{name}-role",
            description="RDS Proxy reads the database secret",
            assume_role_policy=service_assume_role_policy("rds.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        patterns = tuple(args.secret_name_patterns)
        aws.iam.RolePolicy(
            f"{name}-role-secret",
            role=role.name,
            policy=pulumi.Output.all(region, db.kms_key_arn, *secrets.values()).apply(
                lambda a: json.dumps(
                    proxy_role_policy(
                        secret_arn_patterns(a[1], a[0], patterns) if patterns else list(a[2:]),
                        a[1],
                        a[0],
                    )
                )
            ),
            opts=child,
        )
        if args.default_auth_scheme == "IAM_AUTH":
            # End-to-end IAM: the proxy itself signs in to the database with IAM tokens.
            identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
            aws.iam.RolePolicy(
                f"{name}-role-db-connect",
                role=role.name,
                policy=pulumi.Output.all(region, identity.account_id, db.resource_ids).apply(
                    lambda a: json.dumps(rds_connect_policy(a[0], a[1], a[2], "*"))
                ),
                opts=child,
            )
        self.role_arn = role.arn

        proxy_deps: list[pulumi.Resource] = []
        if args.proxy_name is not None:
            # Created first: RDS would otherwise create it on first log, never expiring, unencrypted.
            proxy_deps.append(
                aws.cloudwatch.LogGroup(
                    f"{name}-logs",
                    name=f"/aws/rds/proxy/{args.proxy_name}",
                    retention_in_days=args.log_retention_days,
                    kms_key_id=args.log_kms_key_arn,
                    tags=tags,
                    opts=child,
                )
            )
        proxy = aws.rds.Proxy(
            f"{name}",
            name=args.proxy_name,
            engine_family="POSTGRESQL",
            require_tls=True,
            role_arn=role.arn,
            vpc_subnet_ids=args.subnet_ids,
            vpc_security_group_ids=[self._sg.id],
            idle_client_timeout=args.idle_client_timeout_seconds,
            debug_logging=args.debug_logging,
            auths=[
                aws.rds.ProxyAuthArgs(
                    auth_scheme="SECRETS",
                    secret_arn=arn,
                    iam_auth=args.iam_auth,
                    client_password_auth_type="POSTGRES_SCRAM_SHA_256",
                    description=f"{user} credentials from Secrets Manager",
                )
                for user, arn in secrets.items()
            ],
            default_auth_scheme=args.default_auth_scheme,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=proxy_deps),
        )
        group = aws.rds.ProxyDefaultTargetGroup(
            f"{name}-default",
            db_proxy_name=proxy.name,
            connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
                max_connections_percent=args.max_connections_percent,
                max_idle_connections_percent=args.max_idle_connections_percent,
                connection_borrow_timeout=args.connection_borrow_timeout_seconds,
            ),
            opts=child,
        )
        # One target per proxy: the writer. RDS read replicas cannot be proxy targets.
        target_kwargs = (
            {"db_cluster_identifier": db.primary_identifier}
            if db.is_aurora
            else {"db_instance_identifier": db.primary_identifier}
        )
        if args.register_target:
            aws.rds.ProxyTarget(
                f"{name}-target",
                db_proxy_name=proxy.name,
                target_group_name=group.name,
                **target_kwargs,
                opts=child,
            )
        self.proxy = proxy
        self.writer_endpoint = proxy.endpoint
        self.proxy_name = proxy.name
        self.proxy_arn = proxy.arn
        self.port = pulumi.Output.from_input(ENGINE_DEFAULT_PORT)
        if args.read_only_endpoint:
            ro = aws.rds.ProxyEndpoint(
                f"{name}-ro",
                db_proxy_name=proxy.name,
                db_proxy_endpoint_name=proxy.name.apply(lambda n: f"{n}-ro"[:63]),
                vpc_subnet_ids=args.subnet_ids,
                vpc_security_group_ids=[self._sg.id],
                target_role="READ_ONLY",
                tags=tags,
                opts=child,
            )
            self.reader_endpoints = ro.endpoint.apply(lambda e: [e])
        else:
            self.reader_endpoints = db.reader_endpoints
        for label, sg_id in args.allowed_security_groups.items():
            self.allow_from(label, sg_id)
        self.register_outputs(
            {
                "writer_endpoint": self.writer_endpoint,
                "reader_endpoints": self.reader_endpoints,
                "proxy_name": self.proxy_name,
                "proxy_arn": self.proxy_arn,
                "port": self.port,
                "security_group_id": self.security_group_id,
            }
        )

    def allow_from(self, label: str, source_sg_id: pulumi.Input[str]) -> aws.vpc.SecurityGroupIngressRule:
        """Admit an app security group to the proxy's port (never a CIDR); ``label`` is unique per proxy."""
        check_unique_label(label, self._labels, owner=self._name)
        return ingress_from(
            f"{self._name}-from-{label}",
            security_group_id=self._sg.id,
            source_security_group_id=source_sg_id,
            port=self._port,
            description=f"PostgreSQL from {label}",
            parent=self,
        )

    def grant_connect(
        self, role: aws.iam.Role | str, db_user: str, *, label: str | None = None
    ) -> aws.iam.RolePolicy:
        """Let ``role`` open IAM-authenticated connections through the proxy as ``db_user``.

        Needed when ``iam_auth`` is ``REQUIRED`` or ``default_auth_scheme`` is ``IAM_AUTH``: the
        policy grants ``rds-db:connect`` on ``arn:aws:rds-db:REGION:ACCOUNT:dbuser:prx-ID/db_user``
        (the proxy's resource id, the last part of its ARN).
        """
        if isinstance(role, aws.iam.Role):
            tag, role_name = label or str(role._name), role.name
        elif isinstance(role, str):
            tag, role_name = label or role, role
        else:
            raise TypeError("grant_connect(role=...) needs an aws.iam.Role or a role name string")
        policy = pulumi.Output.all(self._region, self.proxy_arn).apply(
            lambda a: json.dumps(
                rds_connect_policy(a[0], a[1].split(":")[4], [a[1].rsplit(":", 1)[-1]], db_user)
            )
        )
        return aws.iam.RolePolicy(
            f"{self._name}-connect-{tag}-{db_user}".replace("_", "-"),
            role=role_name,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self),
        )
