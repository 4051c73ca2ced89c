"""Write a mocked program run as Terraform plan JSON, so scanners built for Terraform read our stacks.

The document follows Terraform's JSON output format (``terraform show -json``, ``format_version``
1.2): ``planned_values.root_module.resources`` with the planned values, ``resource_changes`` with a
``create`` per resource (``after``, ``after_unknown``, ``after_sensitive``) and a ``configuration``
section whose ``expressions`` carry ``references`` between resources, as Terraform writes them.
checkov (``--framework terraform_plan``), trivy and OPA/conftest policies read these sections.

What is known offline and what is not, as Terraform would see it on a first apply:

* an input equal to an attribute another resource only gets when it is created (an ARN, an id,
  an endpoint, a generated password) is **unknown**: left out of ``after`` and ``true`` in
  ``after_unknown``; the ``configuration`` names the attribute it refers to
  (``aws_kms_key.use1-keys-db.arn``);
* secrets (Pulumi secrets and credential-named keys) never appear: unknown when they are generated
  at apply time, else replaced by ``"(sensitive)"``; ``after_sensitive`` marks them;
* documents that embed an ARN (IAM policies) keep the mock engine's ARN of the same shape, so
  policy scanners can read them.

Only custom resources are exported; components and providers are Pulumi-only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commerce_db.mock_engine import ProgramRun, RegisteredResource, SecretValue
from commerce_db.plan.settings import SECRET_KEYS
from commerce_db.plan.tfschema import (
    Field,
    block_fields,
    has_attribute,
    provider_of,
    resource_fields,
    snake,
    tf_attribute,
    tf_type,
)

FORMAT_VERSION = "1.2"
# Scanners read this field; nothing here runs Terraform. 1.9 writes format 1.2.
TERRAFORM_VERSION = "1.9.8"
MASKED = "(sensitive)"
_MIN_SECRET_MATCH = 8  # computed values shorter than this are too generic to search inside secrets


@dataclass(frozen=True)
class TfAddress:
    """Where a registered resource lives in the exported plan."""

    type: str
    name: str

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"


@dataclass
class _Converted:
    after: Any
    unknown: Any
    sensitive: Any
    expr: Any


@dataclass
class _Context:
    tf_type: str
    computed: Mapping[str, tuple[TfAddress, str]]
    """Value -> (resource, Terraform attribute) for every attribute known only after apply."""
    secret_values: list[str] = field(default_factory=list)


_NAME_OK = re.compile(r"[^A-Za-z0-9_-]")


def tf_name(logical: str) -> str:
    """A Terraform resource name for a Pulumi logical name (letters, digits, ``_``, ``-``)."""
    name = _NAME_OK.sub("_", logical)
    return name if name[:1].isalpha() or name[:1] == "_" else f"r_{name}"


def addresses(resources: Iterable[RegisteredResource]) -> dict[str, TfAddress]:
    """URN -> Terraform address for every exported (custom, non-provider) resource; unique names."""
    out: dict[str, TfAddress] = {}
    taken: set[tuple[str, str]] = set()
    for r in resources:
        if not exported(r):
            continue
        typ = tf_type(r.type)
        base = tf_name(r.name)
        name, n = base, 1
        while (typ, name) in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add((typ, name))
        out[r.urn] = TfAddress(typ, name)
    return out


def exported(r: RegisteredResource) -> bool:
    """Custom resources other than providers are exported."""
    return r.custom and not r.type.startswith("pulumi:")


def _computed_index(
    resources: Iterable[RegisteredResource], addrs: Mapping[str, TfAddress]
) -> dict[str, tuple[TfAddress, str]]:
    """Attribute values the (mock) engine computed rather than echoed from inputs."""
    index: dict[str, tuple[TfAddress, str]] = {}
    for r in resources:
        addr = addrs.get(r.urn)
        if addr is None:
            continue
        for key, value in (r.state or {}).items():
            if key in r.inputs:
                continue
            plain = value.value if isinstance(value, SecretValue) else value
            if isinstance(plain, str) and plain and plain not in index:
                index[plain] = (addr, snake(key))
    return index


def _number(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)  # the mock engine hands numbers over as floats
    return v


def _references(addr: TfAddress, attr: str) -> dict[str, Any]:
    return {"references": [f"{addr.address}.{attr}", addr.address]}


def _contains_computed(text: str, ctx: _Context) -> bool:
    return any(v in text for v in ctx.secret_values)


def _convert_scalar(value: Any, ctx: _Context, secret: bool) -> _Converted:
    if isinstance(value, SecretValue):
        return _convert_scalar(value.value, ctx, secret=True)
    if isinstance(value, str) and value in ctx.computed:
        addr, attr = ctx.computed[value]
        return _Converted(None, True, secret or None, _references(addr, attr))
    if isinstance(value, list):
        parts = [_convert_scalar(v, ctx, secret) for v in value]
        refs = [r for p in parts if isinstance(p.expr, dict) for r in p.expr.get("references", [])]
        return _Converted(
            [p.after for p in parts],
            [bool(p.unknown) for p in parts] if any(p.unknown for p in parts) else None,
            [True] * len(parts) if secret else None,
            {"references": refs} if refs else {"constant_value": [p.after for p in parts]},
        )
    if secret:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if _contains_computed(text, ctx):  # built from a password generated at apply time
            return _Converted(None, True, True, {})
        return _Converted(MASKED, None, True, {})
    if isinstance(value, dict):
        return _Converted({k: _number(v) for k, v in value.items()}, None, None, {"constant_value": value})
    v = _number(value)
    return _Converted(v, None, None, {"constant_value": v})


def _convert_object(
    inputs: Mapping[str, Any], fields: Mapping[str, Field], ctx: _Context, camel: bool
) -> _Converted:
    after: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    sensitive: dict[str, Any] = {}
    expr: dict[str, Any] = {}
    for key, value in inputs.items():
        if value is None:
            continue
        py = snake(key) if camel else key
        spec = fields.get(py, Field("scalar"))
        name = tf_attribute(ctx.tf_type, py)
        secret = key in SECRET_KEYS or py in {snake(k) for k in SECRET_KEYS}
        if isinstance(value, SecretValue) and spec.kind in ("block", "list_block", "map"):
            value, secret = value.value, True
        if spec.kind in ("block", "list_block") and spec.block is not None:
            items = value if isinstance(value, list) else [value]
            sub = block_fields(spec.block)
            parts = [
                _convert_object(item, sub, ctx, camel)
                if isinstance(item, Mapping)
                else _convert_scalar(item, ctx, secret)
                for item in items
            ]
            after[name] = [p.after for p in parts]
            if any(p.unknown for p in parts):
                unknown[name] = [p.unknown or {} for p in parts]
            if any(p.sensitive for p in parts):
                sensitive[name] = [p.sensitive or {} for p in parts]
            expr[name] = [p.expr for p in parts]
            continue
        if spec.kind == "map" and isinstance(value, Mapping) and not secret:
            conv = _convert_scalar(dict(value), ctx, secret=False)
        else:
            conv = _convert_scalar(value, ctx, secret)
        if conv.unknown is True:
            unknown[name] = True
        else:
            after[name] = conv.after
            if conv.unknown:
                unknown[name] = conv.unknown
        if conv.sensitive:
            sensitive[name] = conv.sensitive
        if conv.expr:
            expr[name] = conv.expr
    return _Converted(after, unknown, sensitive, expr)


def resource_values(
    r: RegisteredResource, computed: Mapping[str, tuple[TfAddress, str]], secret_values: list[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(after, after_unknown, after_sensitive, expressions) of one registered resource."""
    ctx = _Context(tf_type(r.type), computed, secret_values)
    conv = _convert_object(r.inputs, resource_fields(r.type), ctx, camel=True)
    after, unknown, sensitive = dict(conv.after), dict(conv.unknown), dict(conv.sensitive)
    fields = resource_fields(r.type)
    name = (r.state or {}).get("name")
    if "name" in fields and "name" not in after and isinstance(name, str):
        after["name"] = name  # Pulumi auto-names at preview: the name is known before apply
    # Attributes the cloud assigns on create (id, arn, endpoints) are unknown.
    for key in sorted(_computed_keys(r) | {"id"}):
        if key not in after and (key == "id" or has_attribute(r.type, key)):
            unknown.setdefault(key, True)
    if tf_type(r.type) == "random_password":
        sensitive["result"] = True
    return after, unknown, sensitive, dict(conv.expr)


def _computed_keys(r: RegisteredResource) -> set[str]:
    return {snake(k) for k in (r.state or {}) if k not in r.inputs}


def build_tfplan(run: ProgramRun) -> dict[str, Any]:
    """The Terraform plan JSON document (as a dict) of a mocked program run."""
    addrs = addresses(run.resources)
    computed = _computed_index(run.resources, addrs)
    # Plain values of generated secrets (passwords): a secret input built from one is unknown.
    secret_values = [
        v for v, (_, attr) in computed.items() if attr == "result" and len(v) >= _MIN_SECRET_MATCH
    ]
    planned: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    config: list[dict[str, Any]] = []
    # Sorted by address: registration order varies between runs (some register inside applies).
    for r in sorted(run.resources, key=lambda r: addrs[r.urn].address if r.urn in addrs else ""):
        addr = addrs.get(r.urn)
        if addr is None:
            continue
        after, unknown, sensitive, expressions = resource_values(r, computed, secret_values)
        provider = provider_of(r.type)
        common = {
            "address": addr.address,
            "mode": "managed",
            "type": addr.type,
            "name": addr.name,
            "provider_name": provider,
        }
        planned.append({**common, "schema_version": 0, "values": after, "sensitive_values": sensitive})
        changes.append(
            {
                **common,
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": after,
                    "after_unknown": unknown,
                    "before_sensitive": False,
                    "after_sensitive": sensitive,
                },
            }
        )
        config.append(
            {
                "address": addr.address,
                "mode": "managed",
                "type": addr.type,
                "name": addr.name,
                "provider_config_key": provider.rsplit("/", 1)[-1],
                "expressions": expressions,
                "schema_version": 0,
            }
        )
    return {
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {
                "aws": {"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws"},
                "random": {"name": "random", "full_name": "registry.terraform.io/hashicorp/random"},
            },
            "root_module": {"resources": config},
        },
    }


def write_tfplan(run: ProgramRun, path: str | Path) -> Path:
    """Write :func:`build_tfplan` of ``run`` to ``path`` (parents created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(build_tfplan(run), indent=1, sort_keys=False) + "\n")
    return out
