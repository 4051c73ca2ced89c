"""Find the Pulumi project, read a stack's config the way the Pulumi CLI stores it, apply overrides.

``Pulumi.<stack>.yaml`` holds ``config:`` with fully qualified keys (``commerce-db:postgres``,
``aws:region``) whose values may be structured (maps/lists). ``Pulumi.yaml`` may declare
project-level ``config:`` with defaults; they apply when the stack file does not set the key.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_FILE = "Pulumi.yaml"
DEFAULT_NAMESPACE = "commerce-db"


class StackFileError(ValueError):
    """A stack cannot be loaded or an override is malformed; the message says which and why."""


@dataclass(frozen=True)
class StackConfigFile:
    """A stack's effective config, ready for ``mock_engine.run_program(config=...)``."""

    project: str
    stack: str
    project_dir: Path
    config: dict[str, Any]
    """Fully qualified key -> value (structured values stay dicts/lists)."""
    secret_keys: frozenset[str] = frozenset()
    """Fully qualified keys the stack file stores encrypted (set with ``--secret``)."""


def find_project_dir(explicit: str | Path | None = None, cwd: Path | None = None) -> Path:
    """The project directory: ``explicit`` if given, else CWD when it holds ``Pulumi.yaml``,
    else the repository root next to the installed ``components`` package."""
    if explicit is not None:
        path = Path(explicit).resolve()
        if not (path / PROJECT_FILE).is_file():
            raise StackFileError(f"--dir {path}: no {PROJECT_FILE} there")
        return path
    here = (cwd or Path.cwd()).resolve()
    if (here / PROJECT_FILE).is_file():
        return here
    try:
        import commerce_db_components  # the installed (editable) package sits in the repo root
    except ImportError as exc:  # pragma: no cover - broken install
        raise StackFileError(
            f"no {PROJECT_FILE} in {here} and the components package is not importable"
        ) from exc
    root = Path(commerce_db_components.__file__).resolve().parent.parent
    if (root / PROJECT_FILE).is_file():
        return root
    raise StackFileError(f"no {PROJECT_FILE} in {here} or {root}; pass --dir PROJECT_DIR")


def available_stacks(project_dir: Path) -> list[str]:
    """Stack names that have a ``Pulumi.<stack>.yaml`` next to ``Pulumi.yaml``."""
    names = []
    for p in project_dir.glob("Pulumi.*.yaml"):
        name = p.name[len("Pulumi.") : -len(".yaml")]
        if name and "." not in name:
            names.append(name)
    return sorted(names)


def yaml_error_message(path: Path, text: str, exc: yaml.YAMLError) -> str:
    """``Pulumi.prod.yaml:12:5: <problem>`` plus the offending line and a caret under the column."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    if mark is None:
        return f"{path}: not valid YAML: {problem}"
    line, col = mark.line + 1, mark.column + 1
    lines = text.splitlines()
    shown = lines[mark.line] if mark.line < len(lines) else ""
    context = getattr(exc, "context", None)
    where = f" ({context})" if context else ""
    return f"{path}:{line}:{col}: not valid YAML: {problem}{where}\n    {shown}\n    {' ' * mark.column}^"


def _read_yaml(path: Path) -> dict[str, Any]:
    text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(yaml_error_message(path, text, exc)) from None
    if not isinstance(data, dict):
        raise StackFileError(f"{path.name}: expected a mapping at the top level")
    return data


def _qualify(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


OFFLINE_SECRET = "https://offline-placeholder.invalid/secret"
"""What the offline plan runs with in place of an encrypted (``secure:``) value."""


def _unwrap(value: Any) -> Any:
    """Stack files may write ``key: {value: ...}`` for structured values, as ``pulumi config`` can."""
    if isinstance(value, dict) and set(value) == {"value"}:
        return value["value"]
    if is_encrypted(value):
        # Encrypted with the stack's secrets provider: not decryptable offline; a placeholder
        # keeps the program running and is never printed (the key is handed to the program as a
        # secret). It is shaped like an https URL so a key that must be one (pagerEndpoint) passes.
        return OFFLINE_SECRET
    return value


def is_encrypted(value: Any) -> bool:
    """``{secure: ...}``: a value ``pulumi config set --secret`` stored encrypted."""
    return isinstance(value, dict) and "secure" in value and len(value) == 1


def load_stack(stack: str, project_dir: Path) -> StackConfigFile:
    """Read ``Pulumi.yaml`` defaults and ``Pulumi.<stack>.yaml`` into one fully qualified config map.

    Raises :class:`StackFileError` naming the available stacks when ``stack`` has no file.
    """
    project_data = _read_yaml(project_dir / PROJECT_FILE)
    project = str(project_data.get("name") or DEFAULT_NAMESPACE)
    stack_path = project_dir / f"Pulumi.{stack}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", stack) or not stack_path.is_file():
        avail = ", ".join(available_stacks(project_dir)) or "none"
        raise StackFileError(f"unknown stack {stack!r} in {project_dir}; available stacks: {avail}")
    config: dict[str, Any] = {}
    declared = project_data.get("config") or {}
    if isinstance(declared, dict):
        for key, decl in declared.items():
            if isinstance(decl, dict) and ("default" in decl or "value" in decl):
                config[_qualify(str(key), project)] = decl.get("value", decl.get("default"))
            elif not isinstance(decl, dict) and decl is not None:
                config[_qualify(str(key), project)] = decl
    stack_cfg = _read_yaml(stack_path).get("config") or {}
    if not isinstance(stack_cfg, dict):
        raise StackFileError(f"{stack_path.name}: 'config' must be a mapping")
    secret_keys: set[str] = set()
    for key, value in stack_cfg.items():
        config[_qualify(str(key), project)] = _unwrap(value)
        if is_encrypted(value):
            secret_keys.add(_qualify(str(key), project))
    return StackConfigFile(
        project=project,
        stack=stack,
        project_dir=project_dir,
        config=config,
        secret_keys=frozenset(secret_keys),
    )


_INDEX = re.compile(r"^(.*)\[(\d+)\]$")


def _parse_value(raw: str) -> Any:
    """JSON when it parses (numbers, booleans, objects, lists), else the plain string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _coerce(existing: Any, raw: str, parsed: Any, leaf: str) -> Any:
    """Keep strings strings: ``engineVersion=17.2`` must not become the float 17.2."""
    if isinstance(parsed, str):
        return parsed
    if isinstance(existing, str) or leaf.lower().endswith("version"):
        return raw
    return parsed


def _set_path(container: Any, path: list[str], value: Any, full_key: str, raw: str | None = None) -> Any:
    """Set ``value`` at ``path`` inside a copy of ``container`` (dicts; ``name[2]`` indexes lists)."""
    if not path:
        return value if raw is None else _coerce(container, raw, value, full_key.rsplit(".", 1)[-1])
    head, rest = path[0], path[1:]
    index: int | None = None
    m = _INDEX.match(head)
    if m:
        head, index = m.group(1), int(m.group(2))
    if container is None:
        container = {}
    if isinstance(container, str):  # structured values stored as JSON strings
        try:
            container = json.loads(container)
        except ValueError:
            container = None
    if not isinstance(container, dict):
        raise StackFileError(f"--config {full_key}: cannot set {head!r} inside a non-object value")
    container = dict(container)
    if index is None:
        container[head] = _set_path(container.get(head), rest, value, full_key, raw)
        return container
    seq = container.get(head)
    if not isinstance(seq, list) or index > len(seq):
        raise StackFileError(f"--config {full_key}: {head!r} has no element {index}")
    seq = list(seq)
    if index == len(seq):
        seq.append(None)
    seq[index] = _set_path(seq[index], rest, value, full_key, raw)
    container[head] = seq
    return container


def apply_overrides(
    config: dict[str, Any], overrides: list[str], project: str = DEFAULT_NAMESPACE
) -> dict[str, Any]:
    """Return a copy of ``config`` with ``KEY=VALUE`` overrides applied.

    ``KEY`` may omit the ``<project>:`` prefix; ``a.b.c`` sets a nested field of the structured
    value ``a`` (``a.list[0].x`` indexes lists). ``VALUE`` is parsed as JSON when it parses, except
    that it stays a string where the stack file already holds a string or the key ends in
    ``Version`` (``engineVersion=17.2``); quote it as JSON (``'"7"'``) to force a string elsewhere.
    """
    out = copy.deepcopy(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StackFileError(
                f"--config {item!r}: expected KEY=VALUE (e.g. postgres.instanceClass=db.r7g.xlarge)"
            )
        namespace, colon, rest = key.rpartition(":")
        if not colon:
            namespace, rest = project, key
        top, *path = rest.split(".")
        if not top:
            raise StackFileError(f"--config {item!r}: empty key")
        value = _parse_value(raw)
        m = _INDEX.match(top)
        if m:  # "replicaRegions[1]=..." indexes a top-level list
            full = f"{namespace}:{m.group(1)}"
            wrapped = _set_path({m.group(1): out.get(full)}, [top, *path], value, key, raw)
            out[full] = wrapped[m.group(1)]
            continue
        full = f"{namespace}:{top}"
        out[full] = _set_path(out.get(full), path, value, key, raw)
    return out
