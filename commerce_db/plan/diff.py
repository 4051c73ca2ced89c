"""Compare a plan with an earlier ``--json`` plan: what a pull request would change, and what it replaces.

``OLD`` is the document ``commerce-db plan STACK --json`` wrote on another commit or branch. Its
``resources`` list (each registered custom resource's URN, type, name, region, masked inputs and
the URNs it answers to through ``aliases``) is matched with the new run's as Pulumi matches state:
by URN first, then a new resource takes over an unmatched old one whose URN is one of its aliases
(own or inherited from a parent's, as :mod:`commerce_db.plan_diff` resolves them), so a renamed or
re-typed resource is the same resource, not a delete plus a create:

* ``+`` a URN only in the new plan (create), ``-`` only in the old one (delete);
* ``~`` same resource, changed inputs (update, listed by input name; "was ..." when an alias matched);
* ``-/+`` same resource, a changed input that forces replacement (``replacements.FORCE_NEW``).

Inputs that a role change makes appear or disappear while the provider keeps them as computed
values (a promoted read replica's ``username``, a Global Datastore member's engine settings:
``plan_diff.INHERITED``) are not changes.

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
from commerce_db.plan_diff import INHERITED

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
    aliases: tuple[str, ...] = ()
    """URNs (in this document's form) this resource answers to in an older state."""
    replace_on_changes: tuple[str, ...] = ()
    """``replace_on_changes``: inputs whose change replaces it explicitly."""
    ignore_changes: tuple[str, ...] = ()
    """``ignore_changes``: inputs whose new value the engine does not apply (never a change)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "region": self.region,
            "inputs": dict(self.inputs),
        }
        if self.aliases:
            out["aliases"] = list(self.aliases)
        if self.replace_on_changes:
            out["replaceOnChanges"] = list(self.replace_on_changes)
        if self.ignore_changes:
            out["ignoreChanges"] = list(self.ignore_changes)
        return out


def mock_form(engine_urn: str) -> str:
    """An engine URN in the form the mocked plans record (the type qualified by the immediate
    parent's type only): ``...::A$B$C::name`` -> ``...::B$C::name``."""
    parts = engine_urn.split("::")
    if len(parts) < 4:
        return engine_urn
    types = parts[2].split("$")
    return "::".join([*parts[:2], "$".join(types[-2:]), *parts[3:]])


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
    was: str | None = None
    """The old URN when the resource was matched through an alias (it is renamed, not replaced)."""

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
            "was": self.was,
        }


def snapshots(resources: Iterable[RegisteredResource]) -> list[ResourceSnapshot]:
    """The diffable record of a run's exported resources (inputs masked, JSON-safe), sorted by URN:
    some resources register from inside applies, in an order that varies between runs."""
    out = []
    for r in resources:
        if not exported(r):
            continue
        inputs = json.loads(json.dumps(mask(dict(r.inputs)), default=str))
        aliases = tuple(sorted({mock_form(a) for a in r.alias_urns} - {r.urn}))
        explicit = tuple(r.options.get("replaceOnChanges") or ())
        ignored = tuple(r.options.get("ignoreChanges") or ())
        out.append(ResourceSnapshot(r.urn, r.type, r.name, r.region, inputs, aliases, explicit, ignored))
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
            ResourceSnapshot(
                i["urn"], i["type"], i["name"], i.get("region"), i.get("inputs") or {},
                tuple(i.get("aliases") or ()), tuple(i.get("replaceOnChanges") or ()),
                tuple(i.get("ignoreChanges") or ()),
            )
            for i in items
        ]  # fmt: skip
    except (KeyError, TypeError) as exc:
        raise DiffInputError(f"{p}: malformed resource entry ({exc})") from None


def _tf(token: str) -> str:
    return TF_TYPES.get(token, token)


def _absent(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _changed(old: ResourceSnapshot, new: ResourceSnapshot) -> tuple[str, ...]:
    inherited = INHERITED.get(new.type, frozenset())
    out = []
    for key in sorted((set(old.inputs) | set(new.inputs)) - set(new.ignore_changes)):
        before, after = old.inputs.get(key), new.inputs.get(key)
        if before == after or (_absent(before) and _absent(after)):
            continue
        if key in inherited and (_absent(before) or _absent(after)):
            continue  # computed: the provider keeps / reads back what the resource has
        out.append(key)
    return tuple(out)


def diff(old: Iterable[ResourceSnapshot], new: Iterable[ResourceSnapshot]) -> list[ResourceChange]:
    """Changes from ``old`` to ``new``, deletes first, then by type and name.

    Identity as the engine decides it: the same URN, else (for a new resource whose URN the old
    plan lacks) an unmatched old resource whose URN is one of the new one's aliases.
    """
    before = {s.urn: s for s in old}
    after = {s.urn: s for s in new}
    pairs: dict[str, ResourceSnapshot] = {urn: before[urn] for urn in after if urn in before}
    taken = {s.urn for s in pairs.values()}
    for urn, s in after.items():
        if urn in pairs:
            continue
        match = next(
            (before[a] for a in s.aliases if a in before and a not in taken and a not in after), None
        )
        if match is not None:
            pairs[urn] = match
            taken.add(match.urn)
    changes: list[ResourceChange] = []
    for urn, s in before.items():
        if urn not in taken:
            changes.append(
                ResourceChange("delete", s.type, s.name, s.region, stateful=is_stateful(_tf(s.type)))
            )
    for urn, s in after.items():
        stateful = is_stateful(_tf(s.type))
        prev = pairs.get(urn)
        if prev is None:
            changes.append(ResourceChange("create", s.type, s.name, s.region, stateful=stateful))
            continue
        was = prev.urn if prev.urn != urn else None
        changed = _changed(prev, s)
        if not changed:
            if was:
                changes.append(ResourceChange("update", s.type, s.name, s.region, stateful=stateful, was=was))
            continue
        forcing = tuple(
            k
            for k in changed
            if forces_replacement(_tf(s.type), snake(k))
            or k in s.replace_on_changes
            or "*" in s.replace_on_changes
        )
        action: Action = "replace" if forcing else "update"
        changes.append(ResourceChange(action, s.type, s.name, s.region, changed, forcing, stateful, was))
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
        if c.was:
            text += f" (was {c.was.split('::', 2)[-1]}, matched by alias)"
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
