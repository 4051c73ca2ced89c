"""Multi-language ``ProxyLayer``: RDS Proxy in front of a database given by its identifiers.

In Python, :class:`ProxyLayerArgs` takes the ``PostgresCluster`` component itself as ``target``.
Components cannot be inputs of other components across languages, so the standalone wrapper takes
the handful of database facts the proxy needs (all of them ``PostgresCluster`` outputs) and
presents them to the real ``ProxyLayer`` as a :class:`DatabaseTarget`. The composite ``Database``
wrapper passes the real component instead.
"""

from typing import Any, NotRequired, TypedDict

import pulumi

from .._security_groups import ingress_from
from ..proxy_layer import ProxyLayer as _ProxyLayer
from ..proxy_layer import ProxyLayerArgs as _ProxyLayerArgs
from ._convert import coerce_args
from ._outputs import outputs_of, publish
from .enums import EngineMode, ProxyDefaultAuthScheme, ProxyIamAuth


class ProxySettings(TypedDict):
    """RDS Proxy settings (the Database component's proxy)."""

    iam_auth: NotRequired[ProxyIamAuth]
    """Client IAM auth for the secret-based login. Default: DISABLED."""
    default_auth_scheme: NotRequired[ProxyDefaultAuthScheme]
    """IAM_AUTH: end-to-end IAM, no secret lookup per connection. Default: NONE."""
    max_connections_percent: NotRequired[int]
    """Share of the database's max_connections the pool may use (1-100). Default: 90."""
    max_idle_connections_percent: NotRequired[int]
    """Idle connections kept, at most max_connections_percent. Default: 50."""
    connection_borrow_timeout_seconds: NotRequired[int]
    """Wait for a pooled connection before failing (0-3600 s). Default: 120."""
    idle_client_timeout_seconds: NotRequired[int]
    """Close client connections idle this long (s). Default: 1800."""
    debug_logging: NotRequired[bool]
    """Log SQL text (sensitive; debugging only). Default: false."""
    read_only_endpoint: NotRequired[bool]
    """Add a READ_ONLY proxy endpoint (Aurora targets only). Default: false."""
    allowed_security_groups: NotRequired[dict[str, pulumi.Input[str]]]
    """Label -> app security group admitted to the proxy (the allow_from capability). Default: {}."""
    tags: NotRequired[dict[str, str]]
    """Tags on every taggable child. Default: {}."""


class ProxyLayerInputs(TypedDict):
    """Inputs of the ProxyLayer component: placement, the target database and the proxy settings."""

    region: str
    """Region of the proxy and the database. Required."""
    vpc_id: pulumi.Input[str]
    """VPC of the proxy (the database's). Required."""
    subnet_ids: pulumi.Input[list[pulumi.Input[str]]]
    """Private subnets, at least 2. Required."""
    target_identifier: pulumi.Input[str]
    """The database's primaryIdentifier (RDS primary instance or Aurora cluster). Required."""
    target_security_group_id: pulumi.Input[str]
    """The database's securityGroupId: it gets a rule admitting the proxy. Required."""
    target_secret_arn: pulumi.Input[str]
    """The database's secretArn: the only secret the proxy role may read. Required."""
    target_kms_key_arn: pulumi.Input[str]
    """The database's kmsKeyArn: the proxy role decrypts the secret with it. Required."""
    target_engine_mode: NotRequired[EngineMode]
    """rds or aurora, as the database was created. Default: rds."""
    target_port: NotRequired[int]
    """The database's listener port. Default: 5432."""
    target_resource_ids: NotRequired[pulumi.Input[list[str]]]
    """The database's resourceIds (needed with default_auth_scheme IAM_AUTH). Default: []."""
    target_reader_endpoints: NotRequired[pulumi.Input[list[str]]]
    """The database's readerEndpoints, passed through as readerEndpoints (RDS). Default: []."""
    iam_auth: NotRequired[ProxyIamAuth]
    """Client IAM auth for the secret-based login. Default: DISABLED."""
    default_auth_scheme: NotRequired[ProxyDefaultAuthScheme]
    """IAM_AUTH: end-to-end IAM, no secret lookup per connection. Default: NONE."""
    max_connections_percent: NotRequired[int]
    """Share of the database's max_connections the pool may use (1-100). Default: 90."""
    max_idle_connections_percent: NotRequired[int]
    """Idle connections kept, at most max_connections_percent. Default: 50."""
    connection_borrow_timeout_seconds: NotRequired[int]
    """Wait for a pooled connection before failing (0-3600 s). Default: 120."""
    idle_client_timeout_seconds: NotRequired[int]
    """Close client connections idle this long (s). Default: 1800."""
    debug_logging: NotRequired[bool]
    """Log SQL text (sensitive; debugging only). Default: false."""
    read_only_endpoint: NotRequired[bool]
    """Add a READ_ONLY proxy endpoint (Aurora targets only). Default: false."""
    allowed_security_groups: NotRequired[dict[str, pulumi.Input[str]]]
    """Label -> app security group admitted to the proxy (the allow_from capability). Default: {}."""
    tags: NotRequired[dict[str, str]]
    """Tags on every taggable child. Default: {}."""


POSTGRES_DEFAULT_PORT = 5432

PROXY_OUTPUTS = (
    "writer_endpoint",
    "reader_endpoints",
    "proxy_name",
    "proxy_arn",
    "security_group_id",
    "role_arn",
    "port",
)


class DatabaseTarget:
    """What :class:`ProxyLayer` reads from its ``target``, built from a database's identifiers.

    Duck-types the parts of ``PostgresCluster`` the proxy uses; :meth:`allow_from` adds the
    database-side rule admitting the proxy, parented to the wrapper.
    """

    def __init__(self, name: str, inputs: dict[str, Any], parent: pulumi.Resource) -> None:
        self._name = name
        self._parent = parent
        self._port: int = inputs.get("target_port", 5432)
        self.port = pulumi.Output.from_input(self._port)
        self.is_aurora = inputs.get("target_engine_mode", "rds") == "aurora"
        self.primary_identifier = pulumi.Output.from_input(inputs["target_identifier"])
        self.security_group_id = pulumi.Output.from_input(inputs["target_security_group_id"])
        self.secret_arn = pulumi.Output.from_input(inputs["target_secret_arn"])
        self.kms_key_arn = pulumi.Output.from_input(inputs["target_kms_key_arn"])
        self.resource_ids = pulumi.Output.from_input(inputs.get("target_resource_ids") or [])
        self.reader_endpoints = pulumi.Output.from_input(inputs.get("target_reader_endpoints") or [])

    def allow_from(self, label: str, source_sg_id: pulumi.Input[str]) -> Any:
        """Admit ``source_sg_id`` to the database port (a security-group reference, never a CIDR)."""
        return ingress_from(
            f"{self._name}-db-from-{label}",
            security_group_id=self.security_group_id,
            source_security_group_id=source_sg_id,
            port=self._port,
            description=f"PostgreSQL from {label}",
            parent=self._parent,
        )


def build_proxy(name: str, target: Any, fields: dict[str, Any], parent: pulumi.Resource) -> _ProxyLayer:
    """The real :class:`ProxyLayer` (child of ``parent``) in front of ``target``.

    ``target`` is a ``PostgresCluster`` or a :class:`DatabaseTarget`; ``fields`` are ProxyLayerArgs
    fields by name (validated by the Args).
    """
    args = _ProxyLayerArgs(target=target, **fields)
    return _ProxyLayer(name, args, opts=pulumi.ResourceOptions(parent=parent))


class ProxyLayer(pulumi.ComponentResource):
    """RDS Proxy (writer connection pool) in front of a PostgresCluster: TLS required, logins with
    the master secret through Secrets Manager (optionally IAM), a least-privilege role and its own
    security group."""

    writer_endpoint: pulumi.Output[str]
    """Proxy endpoint for writes (and reads that must see the latest write)."""
    reader_endpoints: pulumi.Output[list[str]]
    """Aurora: the READ_ONLY proxy endpoint; RDS: the targetReaderEndpoints given (not proxied)."""
    proxy_name: pulumi.Output[str]
    """Proxy name (CloudWatch ProxyName dimension)."""
    proxy_arn: pulumi.Output[str]
    """Proxy ARN."""
    security_group_id: pulumi.Output[str]
    """Security group of the proxy."""
    role_arn: pulumi.Output[str]
    """IAM role of the proxy."""
    port: pulumi.Output[int]
    """Port clients connect to (RDS Proxy listens on PostgreSQL's default port, 5432)."""

    def __init__(self, name: str, args: ProxyLayerInputs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("commerce:index:ProxyLayer", name, {}, opts)
        inputs = coerce_args(ProxyLayerInputs, args)
        target = DatabaseTarget(name, inputs, self)
        fields = {k: v for k, v in inputs.items() if not k.startswith("target_")}
        proxy = build_proxy(name, target, fields, self)
        values = outputs_of(proxy, PROXY_OUTPUTS)
        if values["port"] is None:
            # Older ProxyLayer without a port output: RDS Proxy listens on PostgreSQL's default
            # port whatever port the database uses.
            values["port"] = pulumi.Output.from_input(POSTGRES_DEFAULT_PORT)
        publish(self, values, PROXY_OUTPUTS)
