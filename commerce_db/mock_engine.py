"""Run a Pulumi program under Pulumi's mock engine and record what it registers.

This is the offline half of the project: no cloud account and no Pulumi CLI are
needed. ``run_program`` executes a program (a zero-argument callable, usually the
project's ``__main__``) with stack config, and returns every registered resource
with its type, logical name, parent, provider and inputs.  The plan command, the
policy checks and the unit tests all read the same :class:`RegisteredResource` list.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as _mocks
from pulumi.runtime import settings as _settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

# Attribute values the mocks hand back so that downstream wiring (ARNs, endpoints)
# resolves to something readable in the plan instead of ``None``.
_ACCOUNT = "123456789012"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"


@dataclass(frozen=True)
class SecretValue:
    """A registered input the program marked secret; ``repr`` never shows the value."""

    value: Any = field(repr=False)

    def __str__(self) -> str:
        return "[secret]"

    def reveal(self) -> Any:
        """The plain value, for assertions in tests only."""
        return self.value


def _wrap_secrets(value: Any) -> Any:
    """Replace Pulumi's serialized secret envelopes with :class:`SecretValue`, and assets and
    archives (e.g. a Lambda's code) with plain descriptions that JSON and policy tools can read."""
    if isinstance(value, pulumi.asset.Archive):
        if isinstance(value, pulumi.asset.AssetArchive):
            return {"archive": {k: _wrap_secrets(v) for k, v in sorted(value.assets.items())}}
        return {"archive": str(getattr(value, "path", None) or getattr(value, "uri", ""))}
    if isinstance(value, pulumi.asset.Asset):
        if isinstance(value, pulumi.asset.StringAsset):
            return {"asset": "text", "length": len(value.text)}
        return {"asset": str(getattr(value, "path", None) or getattr(value, "uri", ""))}
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _SECRET_SIG_VALUE:
            return SecretValue(_wrap_secrets(value.get("value")))
        return {k: _wrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrap_secrets(v) for v in value]
    return value


@dataclass(frozen=True)
class RegisteredResource:
    """One resource the program registered with the (mock) engine."""

    urn: str
    type: str
    name: str
    parent_urn: str | None
    custom: bool
    provider: str | None
    inputs: Mapping[str, Any]
    """Registered inputs (camelCase keys); secret inputs are :class:`SecretValue`."""
    region: str | None = None
    """Own ``region`` input, else the explicit provider's region, else ``aws:region``."""
    state: Mapping[str, Any] = field(default_factory=dict, repr=False)
    engine_urn: str = ""
    """The URN the Pulumi engine gives this resource (full parent type chain); the mock URN
    only prefixes the immediate parent's type."""
    alias_urns: tuple[str, ...] = ()
    """Engine-style URNs this resource answers to in an older state: its own ``aliases`` plus
    those inherited from its parents' aliases (as the engine computes them)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Resource options that decide how a change is applied: ``protect``, ``retainOnDelete``,
    ``deleteBeforeReplace``, ``replaceOnChanges``, ``ignoreChanges`` (camelCase property names)."""
    protect: bool = False
    """``ResourceOptions.protect`` as registered."""
    retain_on_delete: bool = False
    """``ResourceOptions.retain_on_delete`` as registered."""
    dependencies: tuple[str, ...] = ()
    """URNs this resource waits for: explicit ``depends_on`` (components expanded to their
    resources, as the SDK does) plus the resources its input values came from."""
    ignore_changes: tuple[str, ...] = ()
    """``ResourceOptions.ignore_changes`` as registered."""
    replace_on_changes: tuple[str, ...] = ()
    """``ResourceOptions.replace_on_changes`` as registered."""

    @property
    def parent_type(self) -> str | None:
        """Type token of the parent resource (``pulumi:pulumi:Stack`` at top level)."""
        if not self.parent_urn:
            return None
        return self.parent_urn.split("::")[2].split("$")[-1]

    @property
    def parent_name(self) -> str | None:
        """Logical name of the parent resource."""
        return self.parent_urn.split("::")[-1] if self.parent_urn else None


@dataclass(frozen=True)
class ProgramRun:
    """Everything one mocked run produced."""

    resources: tuple[RegisteredResource, ...]
    outputs: Mapping[str, Any]

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        """Resources whose type token equals ``type_token``."""
        return [r for r in self.resources if r.type == type_token]

    def waits_for(self, resource: RegisteredResource, dependency: RegisteredResource) -> bool:
        """True when ``resource`` is created only after ``dependency`` (directly or transitively)."""
        by_urn = {r.urn: r for r in self.resources}
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn == dependency.urn:
                return True
            if urn in seen or urn not in by_urn:
                continue
            seen.add(urn)
            todo.extend(by_urn[urn].dependencies)
        return False

    def by_name(self, name: str) -> RegisteredResource:
        """The resource with logical name ``name`` (KeyError if none)."""
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)


# ARN shapes of the resource types whose ARNs end up in policy documents, so that an IAM linter
# reading the plan sees the formats AWS uses (resource type and separator per service).
_ARN_FORMATS: dict[str, str] = {
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{name}",
    "aws:kms/key:Key": "arn:aws:kms:{region}:{account}:key/{name}-key-id",
    "aws:secretsmanager/secret:Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    "aws:iam/role:Role": "arn:aws:iam::{account}:role/{name}",
    "aws:iam/policy:Policy": "arn:aws:iam::{account}:policy/{name}",
    "aws:sns/topic:Topic": "arn:aws:sns:{region}:{account}:{name}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": (
        "arn:aws:firehose:{region}:{account}:deliverystream/{name}"
    ),
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws:rds/instance:Instance": "arn:aws:rds:{region}:{account}:db:{name}",
    "aws:rds/cluster:Cluster": "arn:aws:rds:{region}:{account}:cluster:{name}",
    "aws:rds/proxy:Proxy": "arn:aws:rds:{region}:{account}:db-proxy:prx-{name}",
    "aws:lambda/function:Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "aws:backup/vault:Vault": "arn:aws:backup:{region}:{account}:backup-vault:{name}",
    "aws:cloudtrail/trail:Trail": "arn:aws:cloudtrail:{region}:{account}:trail/{name}",
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "arn:aws:elasticache:{region}:{account}:replicationgroup:{name}"
    ),
}


def _arn(type_token: str, service: str, region: str, name: str) -> str:
    fmt = _ARN_FORMATS.get(type_token, "arn:aws:{service}:{region}:{account}:{name}")
    return fmt.format(service=service, region=region, account=_ACCOUNT, name=name)


def _arn_secret(region: str, name: str) -> str:
    return f"arn:aws:secretsmanager:{region}:{_ACCOUNT}:secret:{name}-AbCdEf"


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs back as state and fill in the attributes AWS computes."""

    def __init__(self) -> None:
        self.provider_regions: dict[str, str] = {}
        """Provider reference -> region; filled in by :class:`RecordingMonitor`."""
        self.default_region = "us-east-1"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        state = dict(args.inputs)
        name = args.name
        rid = f"{name}-id"
        region = state.get("region") or self.provider_regions.get(args.provider or "") or self.default_region
        if args.typ == "pulumi:providers:aws":
            return rid, state
        service = args.typ.split(":")[1].split("/")[0] if ":" in args.typ else "svc"
        state.setdefault("arn", _arn(args.typ, service, region, state.get("name") or name))
        state.setdefault("id", rid)
        if args.typ in ("aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance"):
            state.setdefault("address", f"{name}.abc123.{region}.rds.amazonaws.com")
            state.setdefault("endpoint", f"{name}.abc123.{region}.rds.amazonaws.com:5432")
            state.setdefault("port", 5432)
            state.setdefault("identifier", name)
            state.setdefault("resourceId", f"db-{name.upper()}")
        elif args.typ == "aws:rds/cluster:Cluster":
            state.setdefault("endpoint", f"{name}.cluster-abc123.{region}.rds.amazonaws.com")
            state.setdefault("readerEndpoint", f"{name}.cluster-ro-abc123.{region}.rds.amazonaws.com")
            state.setdefault("port", 5432)
            state.setdefault("clusterIdentifier", name)
            state.setdefault("clusterResourceId", f"cluster-{name.upper()}")
        elif args.typ == "aws:rds/globalCluster:GlobalCluster":
            ident = state.get("globalClusterIdentifier") or name
            state.setdefault("endpoint", f"{ident}.global-abc123.global.rds.amazonaws.com")
        elif args.typ in ("aws:rds/proxy:Proxy", "aws:rds/proxyEndpoint:ProxyEndpoint"):
            state.setdefault("endpoint", f"{name}.proxy-abc123.{region}.rds.amazonaws.com")
        elif args.typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            state.setdefault("primaryEndpointAddress", f"master.{name}.abc123.{region}.cache.amazonaws.com")
            state.setdefault("readerEndpointAddress", f"replica.{name}.abc123.{region}.cache.amazonaws.com")
            state.setdefault("port", 6379)
        elif args.typ == "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup":
            state.setdefault("globalReplicationGroupId", f"ldgnf-{name}")
        elif args.typ == "aws:serverlessrepository/cloudFormationStack:CloudFormationStack":
            state.setdefault(
                "outputs",
                {"RotationLambdaARN": f"arn:aws:lambda:{region}:{_ACCOUNT}:function:{name}-rotation"},
            )
        elif args.typ == "aws:kms/key:Key":
            state.setdefault("keyId", f"{name}-key-id")
        elif args.typ == "aws:s3/bucket:Bucket":
            state.setdefault("bucket", state.get("bucket") or f"{name}-bucket")
        elif args.typ == "aws:ec2/vpc:Vpc":
            state.setdefault("cidrBlock", state.get("cidrBlock") or "10.0.0.0/16")
        elif args.typ == "aws:secretsmanager/secret:Secret":
            state.setdefault("name", state.get("name") or name)
        elif args.typ == "random:index/randomPassword:RandomPassword":
            length = int(state.get("length", 32))
            state["result"] = "P" * length  # deterministic, never a real secret
        state.setdefault("name", state.get("name") or name)
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        # Pulumi's MockMonitor iterates the failures list, so it must be a list (not None).
        token = args.token
        region = (
            args.args.get("region")
            or self.provider_regions.get(getattr(args, "provider", None) or "")
            or self.default_region
        )
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": _ACCOUNT, "arn": f"arn:aws:iam::{_ACCOUNT}:user/mock", "userId": "mock"}, []
        if token == "aws:index/getRegion:getRegion":
            region = args.args.get("name") or region
            return {"name": region, "region": region, "id": region}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, []
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{s}" for s in "abc"]
            return {"names": names, "zoneIds": names, "id": region}, []
        if token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            secret = str(args.args.get("secretId") or "secret")
            value = {"username": "mock", "password": "S" * 40, "engine": "postgres"}  # never a real secret
            return {
                "arn": secret if secret.startswith("arn:") else _arn_secret(region, secret),
                "secretId": secret,
                "secretString": json.dumps(value),
                "versionId": "v1",
                "versionStages": ["AWSCURRENT"],
                "id": secret,
            }, []
        if token == "aws:secretsmanager/getSecrets:getSecrets":
            prefixes = [v for f in args.args.get("filters", []) for v in f.get("values", [])]
            names = [f"{p}mock123" for p in prefixes]
            return {"arns": [_arn_secret(region, n) for n in names], "names": names, "id": region}, []
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {
                "json": json.dumps({"Version": "2012-10-17", "Statement": args.args.get("statements", [])})
            }, []
        return {}, []


class RecordingMonitor(_mocks.MockMonitor):
    """MockMonitor that also remembers each registration's parent and custom flag."""

    def __init__(self, mocks: RecordingMocks, default_region: str | None) -> None:
        super().__init__(mocks)
        self.records: list[RegisteredResource] = []
        self.default_region = default_region
        self._engine_urns: dict[str, str] = {}
        self._alias_urns: dict[str, tuple[str, ...]] = {}
        self._provider_regions: dict[str, str] = mocks.provider_regions
        if default_region:
            mocks.default_region = default_region

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC name)
        response = super().RegisterResource(request)
        secret_outputs = list(getattr(request, "additionalSecretOutputs", None) or [])
        if secret_outputs and request.type != "pulumi:pulumi:Stack":
            response = self._mark_secret_outputs(response, secret_outputs)
        if request.type != "pulumi:pulumi:Stack":
            urn = response.urn
            reg = self.resources[urn]
            inputs = _wrap_secrets(pulumi.runtime.rpc.deserialize_properties(request.object))
            provider_ref = request.provider or None
            if request.type.startswith("pulumi:providers:") and isinstance(inputs.get("region"), str):
                self._provider_regions[f"{urn}::{response.id}"] = inputs["region"]
            region = inputs.get("region") if isinstance(inputs.get("region"), str) else None
            if region is None and provider_ref:
                region = self._provider_regions.get(provider_ref)
            if region is None and request.type.startswith("aws:"):
                region = self.default_region
            engine_urn, alias_urns = self._engine_identity(request, urn)
            self.records.append(
                RegisteredResource(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    parent_urn=request.parent or None,
                    custom=bool(request.custom),
                    provider=provider_ref,
                    inputs=inputs,
                    region=region,
                    state=reg.state,
                    engine_urn=engine_urn,
                    alias_urns=alias_urns,
                    options=_options(request),
                    protect=bool(getattr(request, "protect", False)),
                    retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
                    dependencies=_dependencies(request),
                    ignore_changes=tuple(request.ignoreChanges),
                    replace_on_changes=tuple(request.replaceOnChanges),
                )
            )
        return response

    def _engine_identity(self, request: Any, mock_urn: str) -> tuple[str, tuple[str, ...]]:
        """Engine-style URN and alias URNs of a registration (what ``pulumi up`` matches state by).

        Follows the engine: an alias spec defaults name/type/parent to the resource's own; a
        child inherits one alias per alias of its parent, with the parent's old URN and, when the
        child's name starts with the parent's name, the parent's old name as its prefix.
        """
        head = "::".join(mock_urn.split("::")[0:2])
        parent_mock = request.parent or ""
        parent_urn = self._engine_urns.get(parent_mock)  # None: the Stack (top level)

        def make(parent: str | None, type_: str, name: str) -> str:
            qualified = f"{parent.split('::')[2]}${type_}" if parent else type_
            return f"{head}::{qualified}::{name}"

        own = make(parent_urn, request.type, request.name)
        aliases: list[str] = []
        # (type, name) pairs that keep the current parent: each also follows the parent's aliases.
        under_parent = [(request.type, request.name)]
        for alias in request.aliases:
            if alias.urn:
                aliases.append(alias.urn)
                continue
            spec = alias.spec
            type_, name = spec.type or request.type, spec.name or request.name
            if spec.noParent or spec.parentUrn:
                aliases.append(make(None if spec.noParent else spec.parentUrn, type_, name))
            else:
                aliases.append(make(parent_urn, type_, name))
                under_parent.append((type_, name))
        parent_name = parent_mock.split("::")[-1] if parent_mock else ""
        for parent_alias in self._alias_urns.get(parent_mock, ()):
            old_parent_name = parent_alias.split("::")[-1]
            for type_, name in under_parent:
                if parent_name and name.startswith(parent_name):
                    name = old_parent_name + name[len(parent_name) :]
                aliases.append(make(parent_alias, type_, name))
        unique = tuple(dict.fromkeys(a for a in aliases if a != own))
        self._engine_urns[mock_urn] = own
        self._alias_urns[mock_urn] = unique
        return own, unique

    def _mark_secret_outputs(self, response: Any, keys: list[str]) -> Any:
        """Honour ``additional_secret_outputs`` as the real engine does (e.g. RandomPassword.result).

        The stock MockMonitor returns every state value in plain text, so a password generated by
        ``random.RandomPassword`` would look non-secret downstream; wrap those keys as secrets.
        """
        reg = self.resources[response.urn]
        state = {
            k: ({_SECRET_SIG: _SECRET_SIG_VALUE, "value": v} if k in keys and v is not None else v)
            for k, v in reg.state.items()
        }
        obj = _sync_await(pulumi.runtime.rpc.serialize_properties(state, {}))
        return type(response)(urn=response.urn, id=response.id, object=obj)


def _options(request: Any) -> dict[str, Any]:
    return {
        "protect": bool(request.protect),
        "retainOnDelete": bool(request.retainOnDelete),
        "deleteBeforeReplace": bool(request.deleteBeforeReplace),
        "replaceOnChanges": tuple(request.replaceOnChanges),
        "ignoreChanges": tuple(request.ignoreChanges),
    }


def _dependencies(request: Any) -> tuple[str, ...]:
    """Explicit and property dependencies of a registration, without duplicates, in order."""
    urns = list(request.dependencies)
    for deps in request.propertyDependencies.values():
        urns.extend(deps.urns)
    return tuple(dict.fromkeys(u for u in urns if u))


def run_program(
    program: Callable[[], Any],
    *,
    project: str = "commerce-db",
    stack: str = "dev",
    config: Mapping[str, Any] | None = None,
    secret_keys: Iterable[str] = (),
) -> ProgramRun:
    """Run ``program`` under the mock engine and return what it registered.

    ``config`` maps fully qualified keys (``"commerce-db:primaryRegion"``) to values;
    non-string values are JSON-encoded, as the Pulumi CLI does for structured config.
    ``secret_keys`` [none] are the keys set as secrets (``pulumi.Config`` reports them so).
    Exceptions raised by the program (including config validation errors) propagate.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _settings.ROOT.set(None)
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()}
    set_all_config(encoded, sorted(secret_keys))
    mocks = RecordingMocks()
    default_region = (config or {}).get("aws:region")
    monitor = RecordingMonitor(mocks, default_region if isinstance(default_region, str) else None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    settings = _settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()
    exported: dict[str, Any] = {}
    try:
        _sync_await(run_pulumi_func(program))
        root = _settings.get_root_resource()
        for key, value in (getattr(root, "outputs", None) or {}).items():
            exported[key] = _resolve_export(value)
    finally:
        set_all_config({}, [])
    return ProgramRun(resources=tuple(monitor.records), outputs=exported)


def _resolve_export(value: Any) -> Any:
    """Await an exported value; secret exports come back as :class:`SecretValue`."""
    output = pulumi.Output.from_input(value)
    resolved = _sync_await(output.future())
    secret = _sync_await(output.is_secret())
    return SecretValue(resolved) if secret else resolved
