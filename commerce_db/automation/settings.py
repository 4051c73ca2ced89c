"""Typed stack settings: what the Automation API sets as config before an operation.

A :class:`StackSettings` is built from the repo's ``Pulumi.<stack>.yaml`` plus per-run
overrides and secrets, so internal tools drive exactly the config a platform engineer
would get from ``pulumi up`` in the repo, without editing the committed file.
Pure module: no Pulumi CLI, no network.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from commerce_db.automation.errors import SettingsError

PROJECT = "commerce-db"
"""Pulumi project name and config namespace (contract)."""

PROTECTED_ENVIRONMENTS = frozenset({"prod"})
"""Environments whose stacks are protected (see :attr:`StackSettings.protected`)."""


def default_project_dir() -> Path:
    """The Pulumi project: CWD if it holds ``Pulumi.yaml``, else the checkout (as ``commerce-db plan``)."""
    from commerce_db.plan.stackfile import StackFileError, find_project_dir

    try:
        return find_project_dir()
    except StackFileError as exc:
        raise SettingsError(str(exc)) from None


_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def qualify(key: str, project: str = PROJECT) -> str:
    """``"primaryRegion"`` -> ``"commerce-db:primaryRegion"``; qualified keys pass through."""
    key = key.strip()
    if not key or key.startswith(":") or key.endswith(":"):
        raise SettingsError(f"config key {key!r} is empty or malformed; use NAME or NAMESPACE:NAME", key=key)
    return key if ":" in key else f"{project}:{key}"


def encode_config_value(value: Any) -> str:
    """Config values as the Pulumi CLI stores them: strings as-is, everything else JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class StackSettings:
    """Everything an Automation API operation needs to know about one stack.

    ``config`` holds plain values (structured values allowed, keys fully qualified);
    ``secrets`` holds values set as *secret* config (never shown by ``repr``/``describe``).
    """

    stack: str
    config: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    project: str = PROJECT
    overridden: frozenset[str] = frozenset()
    """Keys set by per-run overrides rather than by the committed stack file (plain overrides,
    and secrets for keys the file does not store encrypted). ``up`` refuses them on a protected
    stack: the next ``up`` from the repository would silently revert them."""
    secure_keys: frozenset[str] = frozenset()
    """Keys the committed stack file stores encrypted (``{secure: ...}``): their values come in
    ``secrets`` without counting as overrides."""
    project_dir: Path | None = None
    """Where the stack file was read from (None: :func:`default_project_dir`)."""
    encryption: Mapping[str, str] = field(default_factory=dict)
    """The stack file's secrets-provider settings (``secretsprovider``, ``encryptedkey``,
    ``encryptionsalt``), given to the temporary workspace so the stack keeps its secrets provider."""
    committed_environment: str | None = None
    """The environment the committed stack file declares (None: not loaded from a file, or the
    file sets none). Protection follows it too, so an override cannot unprotect a stack."""

    @property
    def environment(self) -> str:
        """``<project>:environment`` when set, else the stack name (as the program decides)."""
        env = self.config.get(f"{self.project}:environment")
        return env if isinstance(env, str) and env else self.stack

    @property
    def protected(self) -> bool:
        """Protected stacks: ``up`` only from a saved plan and without overrides, ``destroy``
        refused. A stack is protected when its name, its environment, or the environment its
        committed file declares is ``prod``: no per-run override can switch protection off."""
        return bool({self.stack, self.environment, self.committed_environment} & PROTECTED_ENVIRONMENTS)

    def __post_init__(self) -> None:
        if not _STACK_NAME.match(self.stack):
            raise SettingsError(
                f"stack name {self.stack!r} is invalid; use letters, digits, '-', '_' or '.'", key=None
            )
        overlap = sorted(set(self.config) & set(self.secrets))
        if overlap:
            raise SettingsError(
                f"config key {overlap[0]!r} is set both as plain and as secret", key=overlap[0]
            )
        # Freeze the mappings so a settings object can be shared between threads/operations.
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "secrets", MappingProxyType(dict(self.secrets)))
        object.__setattr__(self, "encryption", MappingProxyType(dict(self.encryption)))

    def config_map(self) -> dict[str, tuple[str, bool]]:
        """Fully qualified key -> (encoded value, is_secret), ready for ``set_all_config``."""
        out = {k: (encode_config_value(v), False) for k, v in self.config.items()}
        out.update({k: (v, True) for k, v in self.secrets.items()})
        return out

    def with_overrides(
        self, overrides: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None
    ) -> StackSettings:
        """A copy with ``overrides`` (plain) and ``secrets`` applied; keys may be unqualified."""
        config = dict(self.config)
        secret_map = dict(self.secrets)
        for key, value in (overrides or {}).items():
            qkey = qualify(key, self.project)
            secret_map.pop(qkey, None)
            config[qkey] = value
        for key, value in (secrets or {}).items():
            qkey = qualify(key, self.project)
            if not isinstance(value, str) or not value:
                raise SettingsError(f"secret config {qkey!r} must be a non-empty string", key=qkey)
            config.pop(qkey, None)
            secret_map[qkey] = value
        changed = {qualify(k, self.project) for k in (overrides or {})}
        secret_keys = {qualify(k, self.project) for k in (secrets or {})}
        changed |= secret_keys - self.secure_keys
        return StackSettings(
            stack=self.stack,
            config=config,
            secrets=secret_map,
            project=self.project,
            overridden=self.overridden | frozenset(changed),
            secure_keys=self.secure_keys,
            project_dir=self.project_dir,
            encryption=self.encryption,
            committed_environment=self.committed_environment,
        )

    def describe(self) -> dict[str, Any]:
        """JSON-safe view: plain config in full, secret keys listed with a masked value."""
        return {
            "stack": self.stack,
            "project": self.project,
            "config": dict(self.config),
            "secrets": {k: "[secret]" for k in sorted(self.secrets)},
        }


def stack_file(stack: str, project_dir: Path | None = None) -> Path:
    """Path of ``Pulumi.<stack>.yaml`` in ``project_dir`` (default: :func:`default_project_dir`)."""
    return (project_dir or default_project_dir()) / f"Pulumi.{stack}.yaml"


def available_stacks(project_dir: Path | None = None) -> list[str]:
    """Stack names that have a ``Pulumi.<stack>.yaml`` in ``project_dir``."""
    root = project_dir or default_project_dir()
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def read_stack_yaml(stack: str, project_dir: Path | None = None) -> dict[str, Any]:
    """The parsed ``Pulumi.<stack>.yaml`` document (a mapping, possibly without ``config``)."""
    path = stack_file(stack, project_dir)
    if not path.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise SettingsError(f"unknown stack {stack!r}: {path} does not exist (stacks here: {known})")
    try:
        text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        from commerce_db.plan.stackfile import yaml_error_message

        raise SettingsError(yaml_error_message(path, text, exc)) from None
    if not isinstance(doc, dict):
        raise SettingsError(f"{path.name} must be a YAML mapping with a 'config:' section")
    return doc


def _project_defaults(project_dir: Path | None, project: str) -> dict[str, Any]:
    path = (project_dir or default_project_dir()) / "Pulumi.yaml"
    if not path.is_file():
        return {}
    try:
        declared = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {}
    except (yaml.YAMLError, AttributeError):
        raise SettingsError(f"{path} is not a valid Pulumi project file") from None
    defaults: dict[str, Any] = {}
    for key, decl in declared.items() if isinstance(declared, dict) else ():
        if isinstance(decl, dict) and ("default" in decl or "value" in decl):
            defaults[qualify(str(key), project)] = decl.get("value", decl.get("default"))
    return defaults


ENCRYPTION_KEYS = ("secretsprovider", "encryptedkey", "encryptionsalt")
"""Top-level stack-file keys describing the stack's secrets provider (copied to the workspace)."""

_SUPPORTED_TOP_LEVEL = frozenset({"config", *ENCRYPTION_KEYS})


def _stack_file_encryption(stack: str, doc: Mapping[str, Any]) -> dict[str, str]:
    unsupported = sorted(str(k) for k in doc if k not in _SUPPORTED_TOP_LEVEL)
    if unsupported:
        # e.g. an ESC `environment:`: the temporary workspace would silently drop it.
        raise SettingsError(
            f"Pulumi.{stack}.yaml sets {', '.join(unsupported)}, which the Automation API workspace "
            f"does not carry over; supported top-level keys: {', '.join(sorted(_SUPPORTED_TOP_LEVEL))}",
            key=unsupported[0],
        )
    return {k: str(doc[k]) for k in ENCRYPTION_KEYS if doc.get(k)}


def _committed_config(
    stack: str, project_dir: Path | None, project: str
) -> tuple[dict[str, Any], frozenset[str]]:
    """Plain config (Pulumi.yaml defaults + the stack file) and the keys stored encrypted."""
    doc = read_stack_yaml(stack, project_dir)
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise SettingsError(f"'config:' in Pulumi.{stack}.yaml must be a mapping", key="config")
    # Pulumi.yaml defaults apply when the stack file does not set the key (as the CLI does; the
    # inline workspace has no Pulumi.yaml of its own, so they are applied here).
    config: dict[str, Any] = _project_defaults(project_dir, project)
    secure: set[str] = set()
    for key, value in raw.items():
        qkey = qualify(str(key), project)
        if isinstance(value, dict) and set(value) == {"value"}:  # `pulumi config set --path` style
            value = value["value"]
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.add(qkey)
            config.pop(qkey, None)
            continue
        config[qkey] = value
    return config, frozenset(secure)


def load_stack_settings(
    stack: str,
    *,
    project_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    project: str = PROJECT,
) -> StackSettings:
    """Build :class:`StackSettings` from ``Pulumi.<stack>.yaml`` + ``overrides`` + ``secrets``.

    Values the file stores encrypted (``{secure: ...}``) can only be decrypted by the stack's
    secrets provider, so each must be supplied in ``secrets`` (e.g. from a vault); a missing
    one is a :class:`SettingsError` naming the key. ``project_dir`` defaults to
    :func:`default_project_dir`.
    """
    config, secure = _committed_config(stack, project_dir, project)
    encryption = _stack_file_encryption(stack, read_stack_yaml(stack, project_dir))
    supplied = {qualify(k, project) for k in (secrets or {})}
    missing = sorted(secure - supplied)
    if missing:
        raise SettingsError(
            f"config {missing[0]!r} is encrypted in Pulumi.{stack}.yaml; pass its value as a secret "
            "(--secret-env KEY=ENVVAR on the CLI, secrets= in Python)",
            key=missing[0],
        )
    env = config.get(f"{project}:environment")
    base = StackSettings(
        stack=stack,
        config=config,
        project=project,
        secure_keys=secure,
        project_dir=project_dir,
        encryption=encryption,
        committed_environment=env if isinstance(env, str) and env else None,
    )
    return base.with_overrides(overrides, secrets)


def differences_from_committed(settings: StackSettings) -> list[str]:
    """Config keys in which ``settings`` differ from ``Pulumi.<stack>.yaml`` as committed in git
    (HEAD of the project's checkout). A project outside a git checkout, an untracked stack file or
    one with uncommitted edits is itself a difference (named as such). Secret values cannot be
    compared (only the stack's secrets provider decrypts them): exactly the keys the file stores
    encrypted must be supplied as secrets."""
    root = settings.project_dir or default_project_dir()
    name = f"Pulumi.{settings.stack}.yaml"
    committed_text = _git_head_text(root / name)
    if committed_text is None:
        return [f"{name} (not committed in a git checkout)"]
    if (root / name).read_text(encoding="utf-8") != committed_text:
        return [f"{name} (uncommitted edits)"]
    try:
        committed, secure = _committed_config(settings.stack, root, settings.project)
    except SettingsError:
        return [name]
    keys = set(committed) | set(settings.config)
    differing = {k for k in keys if committed.get(k, _MISSING) != settings.config.get(k, _MISSING)}
    differing |= set(settings.secrets) ^ secure
    return sorted(differing)


def committed_environment(settings: StackSettings) -> str | None:
    """The environment ``Pulumi.<stack>.yaml`` in the project declares (None if it has none or
    there is no such file); protection of hand-built settings follows it too."""
    try:
        config, _ = _committed_config(settings.stack, settings.project_dir, settings.project)
    except SettingsError:
        return None
    env = config.get(f"{settings.project}:environment")
    return env if isinstance(env, str) and env else None


def _git_head_text(path: Path) -> str | None:
    """``path`` as committed at HEAD of its git checkout, or None (no git, untracked, no file)."""

    if not path.is_file():
        return None
    try:
        top = subprocess.run(
            ["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        rel = path.resolve().relative_to(Path(top).resolve())
        shown = subprocess.run(
            ["git", "-C", top, "show", f"HEAD:{rel.as_posix()}"], capture_output=True, text=True, check=True
        )
    except (OSError, ValueError, subprocess.CalledProcessError):
        return None
    return shown.stdout


_MISSING = object()


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value); VALUE is parsed as JSON when it is valid JSON, else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SettingsError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed
