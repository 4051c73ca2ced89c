"""Compare a plan with an earlier ``--json`` plan: what a pull request would change, and what it replaces.

``OLD`` is the document ``commerce-db plan STACK --json`` wrote on another commit or branch. Its
``resources`` list (each registered custom resource's URN, type, name, region and masked inputs)
is matched with the new run's by URN, as Pulumi matches state:

* ``+`` a URN only in the new plan (create), ``-`` only in the old one (delete);
* ``~`` same URN, changed inputs (update, listed by input name);
* ``-/+`` same URN, a changed input that forces replacement (``replacements.FORCE_NEW``).

Replacing or deleting a **stateful** resource (database, cache, key, bucket, vault, secret) is
*destructive*: the CLI exits non-zero unless ``--allow-replace`` is given. Secret inputs are
masked on both sides, so a changed secret value shows no difference.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from commerce_db.mock_engine import RegisteredResource
from commerce_db.plan.replacements import forces_replacement, is_stateful
from commerce_db.plan.settings import mask
from commerce_db.plan.tfplan import exported
from commerce_db.plan.tfschema import TF_TYPES, snake

Action = Literal["create", "update", "replace", "delete"]
SYMBOL: dict[str, str] = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}


class DiffInputError(ValueError):
    """OLD is not a ``commerce-db plan --json`` document with a ``resources`` list."""


@dataclass(frozen=True)
class ResourceSnapshot:
    """One resource as a ``--json`` plan records it."""

    urn: str
    type: str
    name: str
    region: str | None
    inputs: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "region": self.region,
            "inputs": dict(self.inputs),
        }


@dataclass(frozen=True)
class ResourceChange:
    """What the new plan does to one resource."""

    action: Action
    type: str
    name: str
    region: str | None
    changed: tuple[str, ...] = ()
    """Changed input names (camelCase, as in Pulumi)."""
    replaced_by: tuple[str, ...] = ()
    """The changed inputs that force replacement."""
    stateful: bool = False

    @property
    def destructive(self) -> bool:
        """A stateful resource is replaced or deleted (its data is lost unless restored)."""
        return self.stateful and self.action in ("replace", "delete")

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "type": self.type,
            "name": self.name,
            "region": self.region,
            "changed": list(self.changed),
            "forces_replacement": list(self.replaced_by),
            "stateful": self.stateful,
            "destructive": self.destructive,
        }


def snapshots(resources: Iterable[RegisteredResource]) -> list[ResourceSnapshot]:
    """The diffable record of a run's exported resources (inputs masked, JSON-safe), sorted by URN:
    some resources register from inside applies, in an order that varies between runs."""
    out = []
    for r in resources:
        if not exported(r):
            continue
        inputs = json.loads(json.dumps(mask(dict(r.inputs)), default=str))
        out.append(ResourceSnapshot(r.urn, r.type, r.name, r.region, inputs))
    return sorted(out, key=lambda s: s.urn)


def load_old(path: str | Path) -> list[ResourceSnapshot]:
    """The resources of an earlier ``--json`` plan (:class:`DiffInputError` if it has none)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise DiffInputError(f"{p}: no such file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DiffInputError(f"{p}: not a JSON document ({exc})") from None
    items = doc.get("resources") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise DiffInputError(
            f"{p}: no 'resources' list; write OLD with 'commerce-db plan STACK --json > OLD.json' "
            "(plans from before schema version 2 lack it)"
        )
    try:
        return [
            ResourceSnapshot(i["urn"], i["type"], i["name"], i.get("region"), i.get("inputs") or {})
            for i in items
        ]
    except (KeyError, TypeError) as exc:
        raise DiffInputError(f"{p}: malformed resource entry ({exc})") from None


def _tf(token: str) -> str:
    return TF_TYPES.get(token, token)


def diff(old: Iterable[ResourceSnapshot], new: Iterable[ResourceSnapshot]) -> list[ResourceChange]:
    """Changes from ``old`` to ``new``, deletes first, then by type and name."""
    before = {s.urn: s for s in old}
    after = {s.urn: s for s in new}
    changes: list[ResourceChange] = []
    for urn, s in before.items():
        if urn not in after:
            changes.append(
                ResourceChange("delete", s.type, s.name, s.region, stateful=is_stateful(_tf(s.type)))
            )
    for urn, s in after.items():
        stateful = is_stateful(_tf(s.type))
        if urn not in before:
            changes.append(ResourceChange("create", s.type, s.name, s.region, stateful=stateful))
            continue
        old_inputs = before[urn].inputs
        keys = sorted(set(old_inputs) | set(s.inputs))
        changed = tuple(k for k in keys if old_inputs.get(k) != s.inputs.get(k))
        if not changed:
            continue
        forcing = tuple(k for k in changed if forces_replacement(_tf(s.type), snake(k)))
        action: Action = "replace" if forcing else "update"
        changes.append(ResourceChange(action, s.type, s.name, s.region, changed, forcing, stateful))
    order = {"delete": 0, "replace": 1, "update": 2, "create": 3}
    return sorted(changes, key=lambda c: (order[c.action], c.type, c.name))


def render_diff(changes: list[ResourceChange], *, old_label: str, stack: str) -> str:
    """Text for a reviewer: one line per changed resource, destructive ones called out."""
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "replace", "delete")}
    lines = [
        f"commerce-db plan {stack} --diff {old_label}: "
        f"{counts['create']} to create, {counts['update']} to update, "
        f"{counts['replace']} to replace, {counts['delete']} to delete"
    ]
    for c in changes:
        where = f" ({c.region})" if c.region else ""
        text = f"{SYMBOL[c.action]:>3} {c.type} {c.name}{where}"
        if c.changed:
            marked = [f"{k} (forces replacement)" if k in c.replaced_by else k for k in c.changed]
            text += ": " + ", ".join(marked)
        lines.append(text)
    destructive = [c for c in changes if c.destructive]
    if destructive:
        lines.append("")
        lines.append(f"DESTRUCTIVE: {len(destructive)} stateful resource(s) replaced or deleted:")
        for c in destructive:
            why = f"replaced because {', '.join(c.replaced_by)} changed" if c.replaced_by else "deleted"
            lines.append(f"  {c.type} {c.name}: {why}; its data is lost unless restored from a backup")
    if not changes:
        lines.append("  no changes")
    return "\n".join(lines) + "\n"
