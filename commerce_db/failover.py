"""Failover runbook as code: promote a cross-region replica region to primary for a stack.

:func:`plan_failover` computes the config change for ``Pulumi.<stack>.yaml`` (new
``primaryRegion``; the old primary demoted to a replica region, or dropped; ``drRegion`` moved
off the new primary; ``aws:region`` following the primary; the Global Datastore primary follows
``primaryRegion`` in the program), validates it with the program's own config loader, renders
the YAML diff (comments preserved), and builds the ordered operator steps with the real
identifiers taken from mocked plans of the stack before and after the change.
:func:`write_failover` writes the new file, keeping a ``.bak`` copy. Nothing here calls AWS.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from commerce_db.automation.errors import SettingsError
from commerce_db.automation.settings import PROJECT, StackSettings, read_stack_yaml, stack_file
from commerce_db.automation.validate import check_stack_config

# Config keys (INFRA-A's names in components/config.py, qualified with the project namespace).
PRIMARY_KEY = f"{PROJECT}:primaryRegion"
REPLICAS_KEY = f"{PROJECT}:replicaRegions"
DR_KEY = f"{PROJECT}:drRegion"
HOME_KEY = f"{PROJECT}:homeRegion"
UNREACHABLE_KEY = f"{PROJECT}:unreachableRegions"
PROMOTED_KEY = f"{PROJECT}:promotedFrom"
CACHE_KEY = f"{PROJECT}:cache"
AWS_REGION_KEY = "aws:region"

_RDS_INSTANCE = "aws:rds/instance:Instance"
_REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
_GLOBAL_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
_SECRET = "aws:secretsmanager/secret:Secret"
_PROXY = "aws:rds/proxy:Proxy"
_PROXY_TARGET = "aws:rds/proxyTarget:ProxyTarget"
_RDS_CLUSTER = "aws:rds/cluster:Cluster"


class FailoverError(ValueError):
    """The requested failover is not possible; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class ConfigChange:
    """One stack-file key that changes: ``old`` (None = absent) -> ``new``."""

    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class RunbookStep:
    """One operator step: what to do, the exact commands, and why."""

    title: str
    commands: tuple[str, ...] = ()
    detail: str = ""
    phase: str = "outage"
    """``outage`` (works without the old primary region), ``after-recovery`` or ``planned``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "commands": list(self.commands),
            "detail": self.detail,
            "phase": self.phase,
        }


@dataclass(frozen=True)
class FailoverPlan:
    """Everything ``commerce-db failover promote`` shows (and writes with ``--write``)."""

    stack: str
    path: Path
    old_primary: str
    new_primary: str
    old_primary_kept: bool
    """True: the old primary becomes a replica region; False: it is dropped from the stack."""
    planned: bool
    """True: the data-loss-free switchover (all regions healthy); False: the outage path."""
    global_datastore: bool
    changes: tuple[ConfigChange, ...]
    old_text: str
    new_text: str
    comments_preserved: bool
    identifiers: FailoverIdentifiers
    steps: tuple[RunbookStep, ...] = field(default=())

    @property
    def diff(self) -> str:
        """Unified diff of ``Pulumi.<stack>.yaml``."""
        name = self.path.name
        return "".join(
            difflib.unified_diff(
                self.old_text.splitlines(keepends=True),
                self.new_text.splitlines(keepends=True),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "file": str(self.path),
            "oldPrimary": self.old_primary,
            "newPrimary": self.new_primary,
            "oldPrimaryKept": self.old_primary_kept,
            "planned": self.planned,
            "globalDatastore": self.global_datastore,
            "changes": [{"key": c.key, "old": c.old, "new": c.new} for c in self.changes],
            "diff": self.diff,
            "commentsPreserved": self.comments_preserved,
            "identifiers": self.identifiers.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
        }


# --------------------------------------------------------------------------- config transformation


def _regions(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # the CLI may hand structured config over as JSON text
        value = yaml.safe_load(value)
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise FailoverError(f"{key} must be a list of region names, got {value!r}")
    return list(value)


def compute_failover_config(
    config: Mapping[str, Any],
    new_primary: str,
    *,
    keep_old_primary: bool = True,
    dr_region: str | None = None,
    old_primary_reachable: bool = False,
) -> tuple[dict[str, Any], tuple[ConfigChange, ...]]:
    """The stack config after promoting ``new_primary``, and the keys that change.

    ``config`` maps fully qualified keys (as in ``Pulumi.<stack>.yaml``) to values.
    ``keep_old_primary`` (default True) puts the old primary where the promoted region was in
    ``replicaRegions`` (so replicas are re-created there); False drops it (regional outage).
    ``dr_region`` (default: keep the current one unless it is the new primary, then the first
    replica region that is not the old primary, else the old primary) sets ``drRegion``.
    ``homeRegion`` is pinned to the old primary if unset. ``old_primary_reachable`` (default False:
    an outage) False adds the old primary to ``unreachableRegions``; the new primary always leaves it.
    :raises FailoverError: ``new_primary`` is not a current replica region, or no DR region is left.
    """
    old_primary = config.get(PRIMARY_KEY) or config.get(AWS_REGION_KEY)
    if not isinstance(old_primary, str) or not old_primary:
        raise FailoverError(
            f"{PRIMARY_KEY} (or {AWS_REGION_KEY}) is not set; cannot tell the current primary"
        )
    replicas = _regions(config.get(REPLICAS_KEY), REPLICAS_KEY)
    if new_primary == old_primary:
        raise FailoverError(f"{new_primary} is already the primary region of this stack")
    if new_primary not in replicas:
        allowed = ", ".join(replicas) or "none (the stack has no replica regions)"
        raise FailoverError(
            f"--region {new_primary!r} is not a current replica region of this stack; "
            f"{REPLICAS_KEY} is: {allowed}"
        )
    if keep_old_primary:
        new_replicas = [old_primary if r == new_primary else r for r in replicas]
    else:
        new_replicas = [r for r in replicas if r != new_primary]

    current_dr = config.get(DR_KEY) or (replicas[0] if replicas else "")
    if dr_region is not None:
        if dr_region == new_primary:
            raise FailoverError(f"--dr-region {dr_region!r} must differ from the new primary region")
        new_dr = dr_region
    elif current_dr and current_dr != new_primary:
        new_dr = current_dr
    else:
        # Prefer a region that is neither the new primary nor the (possibly failed) old one.
        healthy = [r for r in new_replicas if r != old_primary]
        candidates = healthy or ([old_primary] if keep_old_primary else [])
        if not candidates:
            raise FailoverError(
                f"no region is left for {DR_KEY} (it must differ from the new primary {new_primary}); "
                "pass --dr-region REGION"
            )
        new_dr = candidates[0]

    new_config = dict(config)
    # The stack-wide resources (IAM, global cluster / datastore) stay under the provider they were
    # created with: pin their home to the region that was primary until now, unless already set.
    new_config[HOME_KEY] = config.get(HOME_KEY) or old_primary
    new_config[PRIMARY_KEY] = new_primary
    # An outage: the old primary's endpoints are down; its provider (still needed for the home
    # region's stack-wide resources, or its replica-region stack) must configure without them.
    unreachable = [r for r in _regions(config.get(UNREACHABLE_KEY), UNREACHABLE_KEY) if r != new_primary]
    if not old_primary_reachable and old_primary not in unreachable:
        unreachable.append(old_primary)
    if unreachable or UNREACHABLE_KEY in config:
        new_config[UNREACHABLE_KEY] = unreachable
    # Until the failover is complete: the new writer region's master secret starts from the promoted
    # copy of this region's, and the proxies keep the promoted logins.
    new_config[PROMOTED_KEY] = old_primary
    new_config[REPLICAS_KEY] = new_replicas
    new_config[DR_KEY] = new_dr
    if config.get(AWS_REGION_KEY) == old_primary:
        new_config[AWS_REGION_KEY] = new_primary  # default provider follows the writer
    changes = tuple(
        ConfigChange(key, config.get(key), new_config[key])
        for key in (
            AWS_REGION_KEY,
            PRIMARY_KEY,
            REPLICAS_KEY,
            DR_KEY,
            HOME_KEY,
            UNREACHABLE_KEY,
            PROMOTED_KEY,
        )
        if key in new_config and config.get(key) != new_config[key]
    )
    return new_config, changes


def validate_failover_config(stack: str, new_config: Mapping[str, Any]) -> Any:
    """Load ``new_config`` with the program's ``load_stack_config``; :class:`FailoverError` if it fails."""
    try:
        return check_stack_config(StackSettings(stack=stack, config=new_config))
    except SettingsError as exc:
        raise FailoverError(f"the promoted config would not load: {exc}") from None


# --------------------------------------------------------------------------- YAML rewrite


_KEY_LINE = re.compile(
    r"^(?P<indent>[ \t]+)(?P<quote>['\"]?)(?P<key>[^'\":#]+:[^'\":#\s]+)(?P=quote):(?P<rest>.*)$"
)


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _render(key: str, value: Any, indent: str, item_indent: str | None, flow: bool) -> list[str]:
    if isinstance(value, list) and value and not flow:
        items = item_indent if item_indent is not None else indent + "  "
        return [f"{indent}{key}:\n", *(f"{items}- {_scalar(v)}\n" for v in value)]
    return [f"{indent}{key}: {_scalar(value)}\n"]


def rewrite_config_keys(text: str, updates: Mapping[str, Any]) -> str:
    """``text`` (a stack file) with top-level ``config:`` keys set to ``updates``; other lines untouched.

    Keeps comments and formatting of everything not updated; a key that is absent is appended
    at the end of the ``config:`` block. Raises :class:`FailoverError` if there is no ``config:``.
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    try:
        start = next(i for i, line in enumerate(lines) if re.match(r"^config:\s*(#.*)?$", line))
    except StopIteration:
        raise FailoverError("the stack file has no top-level 'config:' block") from None

    def block_end() -> int:
        for j in range(start + 1, len(lines)):
            line = lines[j]
            if line.strip() and not line.startswith((" ", "\t")) and not line.lstrip().startswith("#"):
                return j
        return len(lines)

    child_indent: str | None = None
    for key, value in updates.items():
        end = block_end()
        found = None
        for i in range(start + 1, end):
            m = _KEY_LINE.match(lines[i].rstrip("\n"))
            if m:
                child_indent = child_indent or m.group("indent")
                if m.group("key") == key and m.group("indent") == child_indent:
                    found = (i, m)
                    break
        indent = child_indent or "  "
        if found is None:
            insert_at = end
            while insert_at > start + 1 and not lines[insert_at - 1].strip():
                insert_at -= 1
            lines[insert_at:insert_at] = _render(key, value, indent, None, flow=False)
            continue
        i, m = found
        rest = m.group("rest").split("#", 1)[0].strip()
        j = i + 1
        item_indent = None
        while j < end:
            line = lines[j]
            stripped = line.strip()
            deeper = _indent_of(line) > len(indent)
            same_level_item = _indent_of(line) == len(indent) and stripped.startswith("- ")
            if stripped and not (deeper or same_level_item):
                break
            if (
                not stripped
                and j + 1 < end
                and not (_indent_of(lines[j + 1]) > len(indent) or lines[j + 1].strip().startswith("- "))
            ):
                break
            if stripped.startswith("- ") and item_indent is None:
                item_indent = line[: _indent_of(line)]
            j += 1
        flow = rest.startswith("[")
        lines[i:j] = _render(key, value, indent, item_indent, flow=flow)
    return "".join(lines)


def render_failover_yaml(
    text: str, new_config: Mapping[str, Any], changes: Sequence[ConfigChange]
) -> tuple[str, bool]:
    """New file text and whether comments/formatting were preserved.

    The line-level rewrite is checked by re-parsing; if the result does not parse back to
    exactly ``new_config`` (an exotic layout), the file is re-dumped whole instead.
    """
    doc = yaml.safe_load(text) or {}
    try:
        new_text = rewrite_config_keys(text, {c.key: c.new for c in changes})
        if (yaml.safe_load(new_text) or {}).get("config") == dict(new_config):
            return new_text, True
    except (FailoverError, yaml.YAMLError):
        pass
    doc["config"] = dict(new_config)
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False), False


# --------------------------------------------------------------------------- identifiers from mocked plans


def _program_run(stack: str, config: Mapping[str, Any]) -> Any:
    from commerce_db_components.program import run

    from commerce_db.mock_engine import run_program

    return run_program(run, stack=stack, config=dict(config))


def engine_urns(resources: Sequence[Any]) -> dict[str, str]:
    """Mock URN -> the URN the Pulumi engine gives the same resource.

    The engine qualifies a type with the parent's whole type chain
    (``RegionStack$CrossRegionReplicas$aws:rds/instance:Instance``); the SDK's mock monitor only
    prefixes the immediate parent's type. ``pulumi state`` commands and ``--target`` need the real one.
    """
    by_urn = {r.urn: r for r in resources}
    qualified: dict[str, str] = {}

    def chain(res: Any) -> str:
        if res.urn not in qualified:
            parent = by_urn.get(res.parent_urn or "")  # the Stack itself is not recorded: top level
            qualified[res.urn] = f"{chain(parent)}${res.type}" if parent is not None else res.type
        return qualified[res.urn]

    out = {}
    for res in resources:
        head = res.urn.split("::")[0:2]  # urn:pulumi:<stack>, <project>
        out[res.urn] = "::".join([*head, chain(res), res.name])
    return out


@dataclass(frozen=True)
class Rebuild:
    """A replica the stack change rebuilds on purpose (re-sourced to the new writer)."""

    identifier: str
    region: str
    urn: str
    """Engine URN in the current state (``pulumi state unprotect`` takes it)."""
    deletion_protection: bool
    retained: bool = False
    """``retain_on_delete``: Pulumi's delete only forgets it; AWS keeps it (and its identifier)
    until it is deleted explicitly."""
    protected: bool = False
    """``protect``: Pulumi refuses to delete or replace it until ``pulumi state unprotect``."""
    type: str = ""
    """Pulumi type token."""


def _rebuild(ch: Any, urn: str) -> Rebuild:
    """A :class:`Rebuild` for a deleted or replaced resource of a mocked diff (``ch.old`` set)."""
    inputs, options = ch.old.inputs, ch.old.options
    ident = (
        inputs.get("identifier")
        or inputs.get("clusterIdentifier")
        or inputs.get("replicationGroupId")
        or (inputs.get("name") if ch.type == _SECRET else None)
    )
    return Rebuild(
        identifier=str(ident or ch.name),
        region=str(ch.region),
        urn=urn,
        deletion_protection=bool(inputs.get("deletionProtection")),
        retained=bool(options.get("retainOnDelete")),
        protected=bool(options.get("protect")),
        type=ch.type,
    )


@dataclass(frozen=True)
class FailoverIdentifiers:
    """Names the runbook commands use: fixed by the program (role-independent), plus what the
    mocked plans before and after the change say will happen."""

    source: str
    """``"mocked plan"``, or ``"names only: <why>"`` when the program could not be built offline."""
    engine_mode: str
    old_writer: str
    """RDS: the old writer instance; Aurora: the old primary cluster."""
    new_writer: str
    """RDS: the replica promoted in place (it keeps its identifier); Aurora: the secondary cluster."""
    old_writer_sgs: tuple[str, ...]
    """``Name`` tags of the old writer's (and its replicas') security groups: the fence."""
    global_cluster: str | None = None
    cache_global_suffix: str | None = None
    new_secret: str | None = None
    new_vault: str = ""
    targets: tuple[str, ...] = ()
    """Engine URNs for ``pulumi up --target ... --target-dependents``: the surviving regions, the
    stack-wide component and their providers (nothing in the old primary region)."""
    old_region_stack: str = ""
    promoted_urn: str = ""
    """URN (in the current state) of the database promoted by AWS: refreshed alone before the up,
    so Pulumi records the promotion instead of asking the provider to promote it again."""
    old_region_databases: tuple[str, ...] = ()
    """Identifiers of the old primary region's RDS instances (Aurora: its cluster)."""
    old_region_database_urns: tuple[str, ...] = ()
    rebuilds: tuple[Rebuild, ...] = ()
    retired: tuple[Rebuild, ...] = ()
    old_region_cleanup: tuple[Rebuild, ...] = ()
    """Protected or retained resources of the old primary region that the after-recovery update
    deletes or replaces (unprotected first; retained databases and caches deleted explicitly)."""
    """Read replicas the change deletes (replicas of the old writer in its region)."""
    expected: Mapping[str, int] = field(default_factory=dict)
    """Counts of the targeted plan (create/update/replace/delete/same) from the mocked diff."""
    expected_all: Mapping[str, int] = field(default_factory=dict)
    """Counts of the untargeted plan (every region reachable)."""
    violations: tuple[str, ...] = ()
    """What the mocked diff says would lose data (empty: nothing)."""
    new_proxy: str | None = None
    """The new writer region's RDS Proxy (pre-created there while it was a replica region)."""
    old_proxy: str | None = None
    """The old writer region's RDS Proxy (RDS: its target is deregistered in a fence)."""
    proxy_target_import: tuple[str, str, str, str] | None = None
    """RDS: (logical name, import id, parent ProxyLayer URN, provider URN) of the proxy target the
    runbook registers by CLI and then imports, so the ``up`` adopts it instead of registering again."""
    writer_name: str | None = None
    """``writerName`` (``writerDns: arc``): the apps' writer name; a failover switches ARC controls."""
    old_secret_names: tuple[str, ...] = ()
    """Name prefixes of the old primary's secrets (master, application users) replicated into the new
    primary region: the runbook makes those replicas standalone there."""
    old_provider_urn: str = ""
    """Engine URN of the old primary region's provider: updated alone first, so that its no-AWS-call
    settings (``unreachableRegions``) are in the state before any refresh configures it."""
    global_group_urn: str = ""
    """Engine URN of the Global Datastore (``StackShared``), for re-forming it after a disassociation."""
    home_provider_urn: str = ""
    """Engine URN of the home region's provider (the Global Datastore's)."""
    cache_members: tuple[tuple[str, str, bool], ...] = ()
    """(region, engine URN, protected) of every Global Datastore member the stack declares after
    the change, the new primary's first."""
    global_group_name: str = ""
    """Logical name of the Global Datastore and the engine URN of its parent (``StackShared``)."""
    global_group_parent: str = ""
    new_writer_region: str = ""
    new_writer_code: str = ""
    """Region and region code of the new writer (its subnet group, cache and secrets)."""
    new_key_alias: str = ""
    """Alias of the stack's CMK in every region (``alias/commerce-db-<stack>``)."""

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["rebuilds"] = [r.__dict__ for r in self.rebuilds]
        out["retired"] = [r.__dict__ for r in self.retired]
        out["old_region_cleanup"] = [r.__dict__ for r in self.old_region_cleanup]
        out["expected"] = dict(self.expected)
        out["expected_all"] = dict(self.expected_all)
        return out


def discover_identifiers(
    stack: str,
    old_config: Mapping[str, Any],
    new_config: Mapping[str, Any],
    old_primary: str,
    new_primary: str,
    *,
    engine_mode: str,
    global_datastore: bool,
    old_primary_kept: bool,
    runner: Callable[[str, Mapping[str, Any]], Any] = _program_run,
) -> FailoverIdentifiers:
    """The runbook's names and the mocked before/after diff of the stack change.

    Database, secret and vault names are fixed per region and slot by the program, so they are
    known without AWS; the URNs to target and the replicas to rebuild come from diffing mocked
    plans of ``old_config`` and ``new_config`` (:mod:`commerce_db.plan_diff`).
    """
    from commerce_db_components.region_stack import identifier_prefix, region_code

    from commerce_db import plan_diff

    old_prefix, new_prefix = identifier_prefix(stack, old_primary), identifier_prefix(stack, new_primary)
    aurora = engine_mode == "aurora"
    slug = identifier_prefix(stack, old_primary).removeprefix("cdb-").rsplit("-", 1)[0]
    old_code = region_code(old_primary)
    base = FailoverIdentifiers(
        source="names only",
        engine_mode=engine_mode,
        old_writer=f"{old_prefix}-cluster" if aurora else f"{old_prefix}-1",
        new_writer=f"{new_prefix}-cluster" if aurora else f"{new_prefix}-1",
        # The database's groups and the proxy's: a revoke there stops apps reaching the proxy too.
        old_writer_sgs=(f"{old_code}-pg-sg", f"{old_code}-proxy-sg")
        if aurora
        else (f"{old_code}-pg-sg", f"{old_code}-pg-readers-sg", f"{old_code}-proxy-sg"),
        global_cluster=f"cdb-{slug}-global" if aurora else None,
        cache_global_suffix=f"cdb-{slug}" if global_datastore else None,
        new_secret=f"{new_prefix}-master",
        new_vault=new_prefix,
        new_proxy=f"{new_prefix}-proxy",
        old_proxy=None if aurora else f"{old_prefix}-proxy",
        old_secret_names=(f"{old_prefix}-master", f"{old_code}-pg-"),
        new_writer_region=new_primary,
        new_writer_code=region_code(new_primary),
        new_key_alias="alias/commerce-db-" + re.sub(r"[^A-Za-z0-9/_-]", "-", stack),
    )
    try:
        before = runner(stack, old_config)
        after = runner(stack, new_config)
    except Exception as exc:  # the runbook must still print when the program cannot build
        return replace(base, source=f"names only: {type(exc).__name__}: {exc}")

    changes = plan_diff.diff_runs(before, after)
    regions = [new_config[PRIMARY_KEY], *_regions(new_config.get(REPLICAS_KEY), REPLICAS_KEY)]
    surviving = [r for r in regions if r != old_primary]
    violations = plan_diff.failover_violations(
        changes, surviving_regions=surviving, old_primary=old_primary, old_primary_kept=old_primary_kept
    )
    codes = {region_code(r) for r in surviving}
    home = new_config.get(HOME_KEY) or old_primary
    # The stack-wide resources do not change in a failover; while their home is the region that
    # is down, leave them (and that region's provider, whose configuration calls its STS) out.
    shared = home != old_primary
    providers = {f"aws-{x}" for x in (*surviving, *((home,) if shared else ()))}
    targets = [
        r.engine_urn
        for r in after.resources
        if (r.type == "commerce:db:RegionStack" and r.name in codes)
        or (r.type == "commerce:db:StackShared" and shared)
        or (r.type == "pulumi:providers:aws" and r.name in providers)
    ]
    old_stack = next(
        (
            r.engine_urn
            for r in before.resources
            if r.type == "commerce:db:RegionStack" and r.name == old_code
        ),
        "",
    )
    rebuilds = tuple(
        _rebuild(ch, ch.old_urn or ch.urn)
        for ch in changes
        if ch.op == "replace" and ch.explicit and ch.old is not None
    )
    retired = tuple(
        _rebuild(ch, ch.urn)
        for ch in changes
        if ch.op == "delete" and ch.type == plan_diff.RDS_INSTANCE and ch.old is not None
    )
    # What the after-recovery update deletes or replaces in the old region and that Pulumi guards:
    # protected (the update refuses until unprotected) or retained (AWS keeps it, identifier included).
    old_cleanup = tuple(
        _rebuild(ch, ch.old_urn or ch.urn)
        for ch in changes
        if ch.op in ("delete", "replace")
        and ch.old is not None
        and ch.region == old_primary
        and (ch.old.options.get("protect") or ch.old.options.get("retainOnDelete"))
    )
    # The targeted update leaves the old primary region's tree (its RegionStack and everything
    # named after it) alone; the counts it shows are those of the rest.
    # The writer name's ARC resources sit under their own provider, outside the targets; its
    # records for the surviving regions are dependents but do not change.
    in_targets = [
        ch
        for ch in changes
        if not (ch.region == old_primary and ch.type.startswith("aws:"))
        and not (ch.op == "delete" and (ch.name == old_code or ch.name.startswith(f"{old_code}-")))
        and not (ch.name.startswith("writer-dns") and ch.op != "same")
    ]
    db_type = plan_diff.RDS_CLUSTER if aurora else plan_diff.RDS_INSTANCE
    old_dbs = [r for r in before.resources if r.type == db_type and r.region == old_primary]
    new_code = region_code(new_primary)
    promoted = next(
        (
            ch.old_urn or ""
            for ch in changes
            if ch.type == db_type and ch.name == (f"{new_code}-pg-cluster" if aurora else f"{new_code}-pg-1")
        ),
        "",
    )
    proxy = next((r for r in after.resources if r.type == _PROXY and r.name == f"{new_code}-proxy"), None)
    layer = next(
        (r for r in after.resources if r.type == "commerce:db:ProxyLayer" and r.name == f"{new_code}-proxy"),
        None,
    )
    provider = next(
        (r for r in after.resources if r.type == "pulumi:providers:aws" and r.name == f"aws-{new_primary}"),
        None,
    )
    target_created = any(
        ch.op == "create" and ch.type == _PROXY_TARGET and ch.name == f"{new_code}-proxy-target"
        for ch in changes
    )
    proxy_import = (
        (
            f"{new_code}-proxy-target",
            f"{proxy.inputs.get('name') or base.new_proxy}/default/RDS_INSTANCE/{base.new_writer}",
            layer.engine_urn,
            provider.engine_urn,
        )
        if target_created and proxy is not None and layer is not None and provider is not None and not aurora
        else None
    )
    writer_name = after.outputs.get("writerName")
    urn_of = {(r.type, r.name): r.engine_urn for r in after.resources}
    members = sorted(
        (
            (str(r.region), r.engine_urn, bool(r.options.get("protect")))
            for r in after.resources
            if r.type == _REPLICATION_GROUP and r.region in (new_primary, *surviving, old_primary)
        ),
        key=lambda m: m[0] != new_primary,
    )
    global_group = next((r for r in after.resources if r.type == _GLOBAL_GROUP), None)
    return replace(
        base,
        source="mocked plan",
        new_proxy=str(proxy.inputs.get("name") or base.new_proxy) if proxy is not None else None,
        proxy_target_import=proxy_import,
        writer_name=str(writer_name) if writer_name else None,
        targets=tuple(targets),
        old_region_stack=old_stack,
        promoted_urn=promoted,
        old_region_databases=tuple(
            str(r.inputs.get("clusterIdentifier" if aurora else "identifier") or r.name) for r in old_dbs
        ),
        old_region_database_urns=tuple(r.engine_urn for r in old_dbs),
        rebuilds=rebuilds,
        retired=retired,
        old_region_cleanup=old_cleanup,
        expected=plan_diff.summary(in_targets),
        expected_all=plan_diff.summary(changes),
        violations=tuple(violations),
        old_provider_urn=urn_of.get(("pulumi:providers:aws", f"aws-{old_primary}"), ""),
        global_group_urn=global_group.engine_urn if global_group is not None else "",
        home_provider_urn=urn_of.get(("pulumi:providers:aws", f"aws-{home}"), ""),
        cache_members=tuple(members) if global_datastore else (),
        global_group_name=global_group.name if global_group is not None else "",
        global_group_parent=next(
            (
                r.engine_urn
                for r in after.resources
                if global_group is not None and r.urn == global_group.parent_urn
            ),
            "",
        ),
    )


def _global_datastore(config: Mapping[str, Any]) -> bool:
    cache = config.get(CACHE_KEY)
    if isinstance(cache, str):
        cache = yaml.safe_load(cache)
    if isinstance(cache, Mapping) and "globalDatastore" in cache:
        return cache["globalDatastore"] in (True, "true")
    return config.get(f"{PROJECT}:environment", "") == "prod"  # the loader's per-environment default


# --------------------------------------------------------------------------- runbook

OUTAGE = "outage"
"""Steps that work with the old primary region unreachable (its API included)."""
AFTER_RECOVERY = "after-recovery"
"""Steps for when the old primary region answers again (never needed to restore service)."""
PLANNED = "planned"
"""The planned switchover (every region healthy, no data loss)."""

_ACCOUNT = "$(aws sts get-caller-identity --query Account --output text --region {region})"

_PROMOTED_AT = "failover-promoted-at.txt"
_RECORD_PROMOTION = f"date -u +%FT%TZ | tee {_PROMOTED_AT}   # the promotion time: reconcile --since"


def _targets(ids: FailoverIdentifiers) -> str:
    return " ".join(f"--target '{urn}'" for urn in ids.targets) + " --target-dependents"


_WRITER_USERS = ("app_writer", "app_writer_clone")
"""The users a database fence takes LOGIN from: only the writers. NOLOGIN is a catalog change that
replicates physically to every replica, so fencing the reader users too would lock reads out in
every region until each copy is unfenced (second review N4)."""


def _master_env(ids: FailoverIdentifiers, region: str) -> str:
    secret = ids.old_secret_names[0] if ids.old_secret_names else f"{ids.old_writer.rsplit('-', 1)[0]}-master"
    return (
        f"S=$(aws secretsmanager get-secret-value --region {region} --secret-id {secret} "
        "--query SecretString "
        '--output text); export PGUSER="$(echo "$S" | jq -r .username)" PGPASSWORD="$(echo "$S" | jq -r '
        '.password)" PGDATABASE="$(echo "$S" | jq -r .dbname)"; unset S'
    )


def _instance_conninfo(region: str, identifier: str) -> str:
    return (
        f'"host=$(aws rds describe-db-instances --region {region} --db-instance-identifier {identifier} '
        "--query 'DBInstances[0].Endpoint.Address' --output text) sslmode=verify-full\""
    )


def _roles_sql(login: str) -> str:
    users = ",".join(f"'{u}'" for u in _WRITER_USERS)
    return (
        f"DO \\$\\$ DECLARE r text; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname IN ({users}) "
        f"LOOP EXECUTE format('ALTER ROLE %I {login}', r); END LOOP; END \\$\\$"
    )


def _database_sql(action: str) -> str:
    return f"DO \\$\\$ BEGIN EXECUTE format('ALTER DATABASE %I {action}', current_database()); END \\$\\$"


# Terminates every client session that started before this statement, except superusers' (RDS's
# rdsadmin: terminating one raises and would abort the statement) and this one, and waits until
# they are gone. The master user's other sessions end too (found by the fourth independent
# review: a master session opened before the fence could still commit after $LSN; RDS's master
# is not a superuser, so pg_terminate_backend may end its sessions). Sessions that start later
# cannot be a writer's (no LOGIN, committed before) and are read-only by default (committed
# before), so once this returns nothing can commit application writes; pg_stat_activity is a
# per-transaction snapshot, hence pg_stat_clear_snapshot() in the loop.
_TERMINATE_SQL = (
    "DO \\$\\$ DECLARE t timestamptz := clock_timestamp(); BEGIN LOOP "
    "PERFORM pg_stat_clear_snapshot(); "
    "PERFORM pg_terminate_backend(a.pid, 5000) FROM pg_stat_activity a WHERE a.backend_type = "
    "'client backend' AND a.pid <> pg_backend_pid() AND a.backend_start < t AND a.usename <> "
    "'rdsadmin' AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = a.usesysid AND "
    "r.rolsuper); "
    "PERFORM pg_stat_clear_snapshot(); "
    "EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.backend_type = 'client backend' AND "
    "a.pid <> pg_backend_pid() AND a.backend_start < t AND a.usename <> 'rdsadmin' "
    "AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = a.usesysid AND r.rolsuper)); "
    "PERFORM pg_sleep(0.1); END LOOP; END \\$\\$"
)


def _db_fence(ids: FailoverIdentifiers, region: str, *, read_lsn: bool) -> tuple[str, ...]:
    """Fence the old RDS writer inside PostgreSQL; with ``read_lsn`` its last WAL position is read
    afterwards into ``$LSN``. Credentials from its master secret, in the environment only.

    Each statement is its own ``-c`` and so its own transaction, in this order: the writer users
    lose LOGIN (committed), new sessions are read-only by default (committed), then every earlier
    client session except superusers' and this one is terminated (waiting until they are
    gone), and only then, in a separate psql, is ``pg_current_wal_lsn()`` read (``-qAt``: the LSN
    alone). A failed terminate cannot roll the fence back, and nothing commits after the LSN."""
    conn = _instance_conninfo(region, ids.old_writer)
    commands = [
        _master_env(ids, region),
        f'psql {conn} -X -q -v ON_ERROR_STOP=1 -c "{_roles_sql("NOLOGIN")}" '
        f'-c "{_database_sql("SET default_transaction_read_only = on")}" -c "{_TERMINATE_SQL}"',
    ]
    if read_lsn:
        commands.append(
            f"LSN=$(psql {conn} -X -v ON_ERROR_STOP=1 -qAtc 'SELECT pg_current_wal_lsn()'); echo \"$LSN\""
        )
    return tuple(commands)


def _db_unfence(ids: FailoverIdentifiers, region: str) -> tuple[str, ...]:
    """Undo :func:`_db_fence` on the promoted writer (it replayed the fence from the old one). Its
    sessions are read-only by default (the replayed database setting), so this session turns that
    off for itself (``PGOPTIONS``: a client setting wins over the database's) before it gives the
    writer users LOGIN back and resets the database setting."""
    conn = _instance_conninfo(region, ids.new_writer)
    return (
        _master_env(ids, region),
        f"PGOPTIONS='-c default_transaction_read_only=off' psql {conn} -X -q -v ON_ERROR_STOP=1 "
        f'-c "{_roles_sql("LOGIN")}" -c "{_database_sql("RESET default_transaction_read_only")}"',
    )


def _deregister_proxy_target(ids: FailoverIdentifiers, region: str) -> tuple[str, ...]:
    """Take the old writer out of its region's RDS Proxy (the pool stops reconnecting to it)."""
    if not ids.old_proxy:
        return ()
    return (
        f"aws rds deregister-db-proxy-targets --region {region} --db-proxy-name {ids.old_proxy} "
        f"--target-group-name default --db-instance-identifiers {ids.old_writer}",
    )


def _fence(ids: FailoverIdentifiers, region: str) -> tuple[str, ...]:
    """Revoke every ingress rule of the old writer's security groups (looked up by Name tag)."""
    out = []
    for name in ids.old_writer_sgs:
        sg = (
            f"$(aws ec2 describe-security-groups --region {region} --filters Name=tag:Name,Values={name} "
            "--query 'SecurityGroups[0].GroupId' --output text)"
        )
        out.append(
            f'SG={sg}; aws ec2 revoke-security-group-ingress --region {region} --group-id "$SG" '
            f"--security-group-rule-ids $(aws ec2 describe-security-group-rules --region {region} "
            '--filters Name=group-id,Values="$SG" --query \'SecurityGroupRules[?IsEgress==`false`]'
            ".SecurityGroupRuleId' --output text)"
        )
    return tuple(out)


def _cache_steps(
    ids: FailoverIdentifiers, new_primary: str, *, planned: bool, phase: str
) -> list[RunbookStep]:
    if ids.cache_global_suffix is None:
        return [
            RunbookStep(
                f"Cache: no Global Datastore in this stack; the cache in {new_primary} serves as it is",
                (),
                "Apps fall back to the database on misses (cache-aside); sessions and queues held only in "
                "the "
                "old region's cache are lost with it.",
                phase,
            )
        ]
    group = (
        f"$(aws elasticache describe-global-replication-groups --region {new_primary} --query "
        f"\"GlobalReplicationGroups[?ends_with(GlobalReplicationGroupId, '-{ids.cache_global_suffix}')]"
        '.GlobalReplicationGroupId" --output text)'
    )
    member = (
        f"$(aws elasticache describe-global-replication-groups --region {new_primary} --show-member-info "
        f'--global-replication-group-id "$GRG" --query "GlobalReplicationGroups[0].Members[?'
        f"ReplicationGroupRegion=='{new_primary}'].ReplicationGroupId\" --output text)"
    )
    return [
        RunbookStep(
            f"Cache: make the Global Datastore member in {new_primary} the primary",
            (
                f"GRG={group}",
                f"aws elasticache failover-global-replication-group --region {new_primary} "
                f'--global-replication-group-id "$GRG" --primary-region {new_primary} '
                f"--primary-replication-group-id {member}",
                *(
                    ()
                    if planned
                    else (
                        # Fallback if the failover cannot run without the old primary: leave the
                        # Global Datastore; the member becomes a standalone, writable group.
                        f"aws elasticache describe-global-replication-groups --region {new_primary} "
                        '--global-replication-group-id "$GRG" --show-member-info --query '
                        f"\"GlobalReplicationGroups[0].Members[?ReplicationGroupRegion=='{new_primary}']"
                        '.Role" --output text | grep -qx PRIMARY || aws elasticache '
                        f"disassociate-global-replication-group --region {new_primary} "
                        f'--global-replication-group-id "$GRG" --replication-group-id {member} '
                        f"--replication-group-region {new_primary}",
                    )
                ),
            ),
            "Keeps the cached data, sessions and queues replicated so far."
            + (
                ""
                if planned
                else " If the failover cannot complete without the old primary region (the member here is "
                "not PRIMARY afterwards), the third command disassociates it from the Global Datastore: a "
                "standalone, writable group with the data replicated so far (sessions, queues). The "
                "Global Datastore is re-formed after recovery (open: the stack still declares the group "
                "as its member; check the after-recovery preview)."
            ),
            phase,
        )
    ]


def build_steps(
    stack: str,
    old_primary: str,
    new_primary: str,
    *,
    keep_old_primary: bool,
    planned: bool,
    ids: FailoverIdentifiers,
) -> tuple[RunbookStep, ...]:
    """The ordered operator steps with the stack's real names.

    Unplanned (default): every step in phase :data:`OUTAGE` works with ``old_primary`` gone (no
    call to its API, no untargeted ``refresh``/``up``); what needs the old region waits in
    :data:`AFTER_RECOVERY`. ``planned=True``: the data-loss-free switchover (:data:`PLANNED`).
    """
    aurora = ids.engine_mode == "aurora"
    phase = PLANNED if planned else OUTAGE
    write = (
        f"commerce-db failover promote {stack} --region {new_primary}"
        + ("" if keep_old_primary else " --drop-old-primary")
        + " --write"
    )
    account = _ACCOUNT.format(region=new_primary)
    steps: list[RunbookStep] = []
    if planned:
        steps.append(
            RunbookStep("Freeze writes: application maintenance mode (reads continue)", (), "", phase)
        )
        if not aurora:
            # The fence starts inside the database: a security-group revoke does not cut connections
            # that are already established (the proxy's pool), and the LSN is read after it.
            steps.append(
                RunbookStep(
                    f"Fence {ids.old_writer} inside the database, then record its last WAL position",
                    (
                        *_db_fence(ids, old_primary, read_lsn=True),
                        *_deregister_proxy_target(ids, old_primary),
                    ),
                    "From a bastion in an admin security group (master credentials from the master secret "
                    "into PGUSER/PGPASSWORD/PGDATABASE, never on the command line). Each statement commits "
                    "on its own, in order: the writer users (app_writer, app_writer_clone) lose LOGIN; new "
                    "sessions are read-only by default; every earlier client session except superusers' "
                    "(rdsadmin) and the master user's is terminated, and the statement waits until they are "
                    "gone (the proxy's pooled ones included; it cannot reconnect as a writer); only then "
                    "does a separate psql read pg_current_wal_lsn() into $LSN (one value), so nothing can "
                    "commit after it. Reader users keep LOGIN: on replicas every transaction is read-only "
                    "anyway, so the replicated fence leaves reads everywhere untouched. While fenced, the "
                    "rotation function and the bootstrap cannot change roles on this database (expected "
                    "failures until the fence is lifted). The proxy target is deregistered and the "
                    "security groups revoked next.",
                    phase,
                )
            )
        steps.append(
            RunbookStep(
                f"Fence the old writer {ids.old_writer} in {old_primary}: revoke its ingress",
                _fence(ids, old_primary),
                "Nothing can write to it any more (the proxy, the rotation function and apps lose their "
                "path), so "
                "what the new writer has when it takes over is everything that was committed.",
                phase,
            )
        )
    else:
        metric = "AuroraGlobalDBRPOLag" if aurora else "ReplicaLag"
        dim = "DBClusterIdentifier" if aurora else "DBInstanceIdentifier"
        steps.append(
            RunbookStep(
                f"Assess from {new_primary}: how far behind {ids.new_writer} was when {old_primary} went "
                "away",
                (
                    f"aws cloudwatch get-metric-statistics --region {new_primary} --namespace AWS/RDS "
                    f"--metric-name {metric} --dimensions Name={dim},Value={ids.new_writer} --statistics "
                    "Maximum "
                    "--period 60 --start-time $(date -u -d '-30 min' +%FT%TZ) --end-time $(date -u +%FT%TZ)",
                ),
                "The last datapoints before the outage bound the data that will be lost (the RPO actually "
                "incurred): record them. "
                + (
                    "AuroraGlobalDBRPOLag is in milliseconds."
                    if aurora
                    else "ReplicaLag is in seconds and grows on a quiet primary (it measures the age of the "
                    "last "
                    "replayed transaction), so a large value at low traffic overstates the loss."
                ),
                phase,
            )
        )
        fence = (
            f"The fence is the writer name: once ARC moves {ids.writer_name} (below), every app that "
            f"starts or reconnects resolves it to {new_primary}'s proxy (TTL 10 s), whose security groups "
            f"admit only {new_primary}'s apps, so an app in {old_primary} fails instead of writing to the "
            "old writer; connections already pooled are closed within the data layer's maximum "
            "connection lifetime and re-resolved (60 s by default, COMMERCE_DB_WRITER_MAX_CONNECTION_"
            "LIFETIME): no write starts on a connection to the old writer later than the switch + 60 s + "
            "the 10 s TTL. "
            if ids.writer_name
            else "Without a writer name (writerDns: none) scaling to zero is the only fence: apps that "
            f"keep the old writerEndpoint would write to the old writer when {old_primary} returns. "
        )
        steps.append(
            RunbookStep(
                f"Stop writers that could still reach {old_primary}: scale them to zero in your deploy "
                "tooling",
                (),
                f"The old writer cannot be fenced through its API while {old_primary} is down, and that "
                "region's deploy control plane may be down too (the scale-down may not reach it). "
                + fence
                + f"When {old_primary}'s API answers, the after-recovery fence (its security groups) runs "
                "first, before that region's control plane restarts application tasks. Apps in other "
                "regions have no network path to the old writer.",
                phase,
            )
        )
    if aurora:
        arn = f"arn:aws:rds:{new_primary}:{account}:cluster:{ids.new_writer}"
        op = "switchover-global-cluster" if planned else "failover-global-cluster"
        steps.append(
            RunbookStep(
                f"Make {ids.new_writer} the primary of Global Database {ids.global_cluster}",
                (
                    f"aws rds {op} --region {new_primary} --global-cluster-identifier {ids.global_cluster} "
                    f"--target-db-cluster-identifier {arn}" + ("" if planned else " --allow-data-loss"),
                    f"aws rds wait db-cluster-available --region {new_primary} --db-cluster-identifier "
                    f"{ids.new_writer}",
                    f"aws rds describe-global-clusters --region {new_primary} --global-cluster-identifier "
                    f"{ids.global_cluster} --query 'GlobalClusters[0].GlobalClusterMembers[?IsWriter]."
                    "DBClusterArn'",
                    *(() if planned else (_RECORD_PROMOTION,)),
                ),
                (
                    "switchover-global-cluster waits until the secondary has caught up: no data loss."
                    if planned
                    else "--allow-data-loss promotes without the old primary. The other secondaries follow "
                    "the "
                    "new primary by themselves; the cluster, its storage and its readers stay (never "
                    "promote-read-replica / detach: that would leave the Global Database)."
                ),
                phase,
            )
        )
    else:
        if planned:
            steps.append(
                RunbookStep(
                    f"Wait until {ids.new_writer} has replayed everything the fenced writer committed",
                    (
                        f'psql "host=$(aws rds describe-db-instances --region {new_primary} '
                        "--db-instance-identifier "
                        f"{ids.new_writer} --query 'DBInstances[0].Endpoint.Address' --output text) "
                        "sslmode=verify-full "
                        'dbname=commerce" -Atc "select pg_last_wal_replay_lsn() >= \'$LSN\'::pg_lsn"',
                    ),
                    "Repeat until it prints t: the replica has replayed up to the LSN recorded before the "
                    "fence (the fenced writer is unreachable now, by design). From a bastion in an admin "
                    "security group in the new region (credentials via PGPASSWORD, never on the command "
                    "line). ReplicaLag alone is no proof on a quiet primary.",
                    phase,
                )
            )
        steps.append(
            RunbookStep(
                f"Promote {ids.new_writer} in {new_primary} to a standalone writer (it keeps its identifier)",
                (
                    f"aws rds promote-read-replica --region {new_primary} --db-instance-identifier "
                    f"{ids.new_writer} "
                    "--backup-retention-period 35",
                    f"aws rds wait db-instance-available --region {new_primary} --db-instance-identifier "
                    f"{ids.new_writer}",
                    *(() if planned else (_RECORD_PROMOTION,)),
                ),
                "Irreversible; stops replication from the old writer. Its identifier, URN and endpoint do "
                "not "
                "change: the next pulumi up adopts it as the region's writer (in place).",
                phase,
            )
        )
    if planned and not aurora:
        # The fence statements were replicated (the replica replayed up to the LSN read after them).
        steps.append(
            RunbookStep(
                f"Lift the replicated database fence on {ids.new_writer} (before anything connects to it)",
                _db_unfence(ids, new_primary),
                "The fence ran on the old writer before its last WAL position was read, so the promoted "
                "replica replayed it too: its writer users have no LOGIN and new sessions are "
                "read-only (this one too, hence PGOPTIONS) until this step gives both back; the rotation "
                "function and the bootstrap fail on it until then (master credentials: the promoted copy of "
                f"{ids.old_secret_names[0] if ids.old_secret_names else 'the master secret'}).",
                phase,
            )
        )
    steps.append(_secrets_step(ids, old_primary, new_primary, phase))
    steps.extend(_proxy_steps(ids, new_primary, phase))
    steps.extend(_cache_steps(ids, new_primary, planned=planned, phase=phase))
    steps.extend(_writer_name_steps(stack, ids, old_primary, new_primary, phase))
    steps.append(
        RunbookStep(
            "Change the stack config (pins homeRegion) and commit it",
            (
                write,
                f"git add Pulumi.{stack}.yaml && git commit -m 'failover: primary {old_primary} -> "
                f"{new_primary}'",
            ),
            "Pulumi's state backend must be reachable without the old region (Pulumi Cloud, or an S3 backend "
            "replicated to another region).",
            phase,
        )
    )
    # While the old region is down, only the surviving regions' rebuilds happen now.
    rebuilds = [r for r in ids.rebuilds if planned or r.region != old_primary]
    retired = [r for r in ids.retired if planned or r.region != old_primary]
    if rebuilds or retired:
        cmds: list[str] = []
        for rebuild in (*rebuilds, *retired):
            if rebuild.deletion_protection:
                cmds.append(
                    f"aws rds modify-db-instance --region {rebuild.region} --db-instance-identifier "
                    f"{rebuild.identifier} --no-deletion-protection --apply-immediately"
                )
            if rebuild.protected:
                cmds.append(f"pulumi state unprotect '{rebuild.urn}' --yes")
        # Retained instances stay in AWS when Pulumi deletes them, identifier included: free the
        # identifier, or the re-created replica fails (DBInstanceAlreadyExists). In an outage a
        # rebuilt replica may hold WAL the promoted writer never got: rename it, never delete it.
        if planned:
            cmds += _delete_instances([r for r in (*rebuilds, *retired) if r.retained], ids)
        else:
            cmds += _rename_instances([r for r in rebuilds if r.retained])
            cmds += _delete_instances([r for r in retired if r.retained], ids)
        steps.append(
            RunbookStep(
                "Allow the planned rebuilds of re-sourced replicas",
                tuple(cmds),
                "Replicas of the old writer cannot be pointed at the new one; Pulumi retains databases on "
                "delete, so "
                + (
                    "they are deleted here"
                    if planned
                    else "each is renamed to <identifier>-old here (kept, untouched: it may have replayed "
                    "more of the old writer than the promoted one; compare and delete it after recovery)"
                )
                + f" and pulumi up re-creates them, same identifiers, as replicas of {ids.new_writer} "
                "(their data comes from the new writer): "
                + ", ".join(f"{r.identifier} ({r.region})" for r in rebuilds)
                + ". Until a rebuilt replica has copied the data (hours for a large volume), reads in its "
                "region fall back to the writer (the data layer's replica routing) or to the other regions; "
                "the renamed -old instance still serves reads as of the outage, if an app is pointed at it."
                + (
                    " Deleted (replicas of the old writer): " + ", ".join(r.identifier for r in retired) + "."
                    if retired
                    else ""
                ),
                phase,
            )
        )
    counts = ids.expected_all if planned else ids.expected
    expected = ", ".join(f"{n} {op}" for op, n in counts.items() if op != "same") or "see preview"
    if planned or not ids.targets:
        preview, apply_ = "pulumi preview --diff", "pulumi up --yes"
    else:
        # --continue-on-error: what needs IAM's control plane (the new rotation and bootstrap
        # functions' roles) may fail while it is impaired; everything independent still applies.
        preview = f"pulumi preview --diff {_targets(ids)}"
        apply_ = f"pulumi up --yes --continue-on-error {_targets(ids)}"
    # The lost region's provider first, alone: the update writes its unreachableRegions settings
    # (no STS call, no account lookup) into the state; a refresh does not run the program, so it
    # would otherwise configure that provider with the old inputs from the state.
    provider_first: tuple[str, ...] = (
        (f"pulumi up --yes --target '{ids.old_provider_urn}'",)
        if ids.old_provider_urn and not planned
        else ()
    )
    # Record what AWS did (the promotion) in the state of that one resource; otherwise the provider
    # would try to promote an instance that is no longer a replica. --run-program: providers get the
    # program's settings, not the state's (Pulumi CLI >= 3.160; the line above covers older ones).
    refresh: tuple[str, ...] = provider_first + (
        (f"pulumi refresh --yes --run-program --target '{ids.promoted_urn}'",) if ids.promoted_urn else ()
    )
    if ids.proxy_target_import is not None:
        # Registered by CLI above: adopt it, or the up would register it again and fail.
        logical, import_id, parent, provider = ids.proxy_target_import
        refresh += (
            f"pulumi import {_PROXY_TARGET} {logical} '{import_id}' --parent 'proxy={parent}' "
            f"--provider 'aws={provider}' --protect=false --yes",
        )
    replaced = ", ".join(r.identifier for r in rebuilds) or "nothing"
    steps.append(
        RunbookStep(
            "Preview, then apply"
            + ("" if planned else f" to the surviving regions only ({old_primary} is not touched)"),
            (*refresh, preview, apply_),
            (
                f"First, alone, the {old_primary} provider: the update records its unreachableRegions "
                "settings (no AWS call) in the state, so the refresh and the update after it never call "
                f"{old_primary}'s STS (a refresh configures providers from the state). "
                if provider_first
                else ""
            )
            + f"Expected from the mocked plan: {expected}; replaced: {replaced}; no database, cache, vault "
            "or "
            "key deleted in a surviving region, no IAM role or policy of the proxy changed. Stop if the "
            "preview shows anything else. Not needed to serve traffic (the steps above did that); it "
            f"creates the new writer region's in-region replicas, master secret {ids.new_secret} and "
            "application-user secrets (with their rotation: IAM roles for the rotation and bootstrap "
            f"functions, so it needs IAM's control plane), backup plan into vault {ids.new_vault} and "
            "alarms. --continue-on-error (Pulumi CLI >= 3.114): the IAM roles of the rotation and bootstrap "
            "functions (and the SAR rotation stacks) need IAM's control plane, which may be impaired with "
            f"{old_primary}; a failure there does not stop the independent changes (Multi-AZ, replicas, "
            "backup plan, alarms); the command exits non-zero: run it again once IAM answers, until it "
            "succeeds (the promoted copies keep working meanwhile; rotation starts with that success). "
            "Credentials stay valid throughout: the promoted writer keeps its master password "
            f"(the program never re-applies one); {ids.new_secret} starts from the promoted copy "
            f"{ids.old_secret_names[0] if ids.old_secret_names else ''} (promotedFrom) and rotates first on "
            "its schedule, so both work; the new application secrets become valid at their first "
            f"rotation (in this update); proxy {ids.new_proxy} keeps the promoted application logins and "
            "the stack exports those copies until the failover is complete.",
            phase,
        )
    )
    steps.append(
        RunbookStep(
            "Apps: unchanged writer name; credentials from the promoted secrets until after recovery",
            (
                f"commerce-db stack outputs {stack} --json   # writerSecretArn, readerSecretArn, "
                "redisPrimaryEndpoint, redisAuthSecretArn" + ("" if ids.writer_name else ", writerEndpoint"),
            ),
            (
                f"The writer name {ids.writer_name} did not change (ARC moved it). "
                if ids.writer_name
                else "Without writerDns the apps take the new writerEndpoint (the RDS Proxy in the new region"
                + ("; or the Aurora globalWriterEndpoint, which followed by itself" if aurora else "")
                + "). "
            )
            + "Cache: every app writes to the Global Datastore's primary member (secondaries are "
            f"read-only), so all of them switch redis_url to redisEndpointsByRegion.{new_primary}.primary "
            "(writable since the cache step; restart with COMMERCE_DB_REDIS_URL): until then they treat "
            "the cache as down (reads from PostgreSQL, sessions and queues unavailable). "
            f"They keep the secrets replicated into {new_primary} (same names and ARNs as before, "
            "standalone since the secrets step): the proxy accepts those logins until the failover is "
            "complete, and the stack exports them meanwhile (secretArnsByRegion, writerSecretArn, "
            "readerSecretArn); operators and migrations use the promoted master copy or dbSecretArn "
            f"({ids.new_secret}): both hold the promoted writer's password.",
            phase,
        )
    )
    verify = (
        f"aws rds describe-global-clusters --region {new_primary} --global-cluster-identifier "
        f"{ids.global_cluster}"
        if aurora
        else f"aws rds describe-db-instances --region {new_primary} --db-instance-identifier "
        f"{ids.new_writer} "
        "--query 'DBInstances[0].[DBInstanceStatus,ReadReplicaSourceDBInstanceIdentifier,MultiAZ,"
        "BackupRetentionPeriod]'"
    )
    snapshot = (
        f"aws rds create-db-cluster-snapshot --region {new_primary} --db-cluster-identifier {ids.new_writer} "
        f"--db-cluster-snapshot-identifier {ids.new_writer}-after-failover-$(date -u +%Y%m%d%H%M)"
        if aurora
        else f"aws rds create-db-snapshot --region {new_primary} --db-instance-identifier {ids.new_writer} "
        f"--db-snapshot-identifier {ids.new_writer}-after-failover-$(date -u +%Y%m%d%H%M)"
    )
    steps.append(
        RunbookStep(
            "Verify and take a first backup in the new writer region",
            (verify, snapshot, f"aws backup list-backup-plans --region {new_primary}"),
            "Expect: available, no replication source, Multi-AZ, retention 35; a backup plan in the new "
            "region.",
            phase,
        )
    )
    if planned:
        steps.append(
            RunbookStep(
                "Complete the switchover: the new writer region's own credentials",
                _complete_commands(old_primary, new_primary),
                _COMPLETE_DETAIL,
                phase,
            )
        )
        steps.append(_retire_step(old_primary, phase))
    else:
        steps.extend(_after_recovery(stack, old_primary, keep_old_primary, ids))
    return tuple(steps)


_COMPLETE_DETAIL = (
    "Once the update above has run (the new application secrets rotated once, so they are valid): the "
    "proxies accept the new writer region's application secrets besides the promoted copies "
    "(retiringLoginsFrom: distinct users, app_writer and app_writer_clone) and the stack exports the new "
    "ones. Roll the apps so that they reload secretArnsByRegion / writerSecretArn / readerSecretArn; an app "
    "that still holds a promoted copy keeps connecting meanwhile. The master secret rotates in this "
    "update: from then on only dbSecretArn works for operators and migrations."
)


def _rotated_check(new_primary: str, new_code: str) -> str:
    """A command that fails, naming them, unless every application-user secret of the new writer
    region has rotated at least once. The failover's update starts them from the promoted logins
    and rotates them at once, in the background: if that rotation failed (IAM impaired, the update
    run with --continue-on-error), a new secret still holds the promoted copy's user, and the
    completing update would give the proxy two secrets for one user."""
    listed = (
        f"aws secretsmanager list-secrets --region {new_primary} --filters Key=name,Values={new_code}-pg-app-"
    )
    return (
        f"ALL=$({listed} --query 'SecretList[].Name' --output text); "
        f"NOT_ROTATED=$({listed} --query 'SecretList[?LastRotatedDate==null].Name' --output text); "
        'test -n "$ALL" && test -z "$NOT_ROTATED" || { echo "not rotated yet: '
        '${NOT_ROTATED:-no secrets found}; re-run the failover update until rotation succeeds" >&2; false; }'
    )


def _complete_commands(old_primary: str, new_primary: str) -> tuple[str, ...]:
    from commerce_db_components.region_stack import region_code

    return (
        _rotated_check(new_primary, region_code(new_primary)),
        "pulumi config rm commerce-db:promotedFrom",
        f"pulumi config set commerce-db:retiringLoginsFrom {old_primary}",
        f"git commit -am 'failover: {new_primary} uses its own secrets'",
        "pulumi preview --diff",
        "pulumi up --yes",
    )


def _retire_step(old_primary: str, phase: str) -> RunbookStep:
    """After the apps reloaded the exported secrets: the proxies drop the promoted logins."""
    return RunbookStep(
        "When every app runs with the exported secrets: retire the promoted logins",
        (
            "pulumi config rm commerce-db:retiringLoginsFrom",
            f"git commit -am 'failover: promoted logins of {old_primary} retired'",
            "pulumi preview --diff",
            "pulumi up --yes",
        ),
        "The proxies then accept only the new writer region's application secrets. Do it before their "
        "second rotation (passwordRotationDays after the failover's update): that rotation gives app_writer "
        "a new password, and a proxy holding two secrets for one user is not a state to be in.",
        phase,
    )


def _secrets_step(ids: FailoverIdentifiers, old_primary: str, new_primary: str, phase: str) -> RunbookStep:
    """Make the new writer region's replicas of the old primary's secrets standalone."""
    names = ",".join(ids.old_secret_names)
    listing = (
        f"aws secretsmanager list-secrets --region {new_primary} --filters "
        f"Key=primary-region,Values={old_primary} Key=name,Values={names} --query 'SecretList[].ARN' "
        "--output text"
    )
    return RunbookStep(
        f"Secrets: make {new_primary}'s replicas of {old_primary}'s secrets standalone",
        (
            f"for arn in $({listing}); do aws secretsmanager stop-replication-to-replica --region "
            f'{new_primary} --secret-id "$arn"; done',
            listing.replace("SecretList[].ARN", "SecretList[].[Name,ARN,PrimaryRegion]"),
        ),
        "A replica secret is read-only and follows its primary: it cannot be updated or rotated, and "
        "deleting the primary (the old region's database leaves the stack later) removes it. "
        f"stop-replication-to-replica runs in {new_primary} only and keeps name, ARN and value: the apps "
        f"and proxy {ids.new_proxy or ''} in {new_primary} go on reading them (master "
        f"{ids.old_secret_names[0] if ids.old_secret_names else ''}, application users "
        f"{ids.old_secret_names[1] if len(ids.old_secret_names) > 1 else ''}*), now as standalone "
        "secrets. The second command lists them: expect no PrimaryRegion left. Rotation of these "
        "copies waits for the rotation functions the stack update creates (their IAM roles need "
        "IAM's control plane); the passwords in them stay valid meanwhile.",
        phase,
    )


def _proxy_steps(ids: FailoverIdentifiers, new_primary: str, phase: str) -> list[RunbookStep]:
    """The pre-created proxy in the new writer region: register (RDS) or check (Aurora) its target."""
    if not ids.new_proxy:
        return []
    check = (
        f"aws rds describe-db-proxy-targets --region {new_primary} --db-proxy-name {ids.new_proxy} "
        "--query 'Targets[].[RdsResourceId,Role,TargetHealth.State]'"
    )
    if ids.engine_mode == "aurora":
        return [
            RunbookStep(
                f"Proxy: {ids.new_proxy} already targets {ids.new_writer}; check it serves writes",
                (check,),
                "Created with the secondary cluster as its target: since the promotion its read/write "
                "endpoint reaches the new writer (RDS Proxy queues and routes the writes by itself). "
                "Expect a READ_WRITE target AVAILABLE.",
                phase,
            )
        ]
    return [
        RunbookStep(
            f"Proxy: register {ids.new_writer} with the pre-created proxy {ids.new_proxy}",
            (
                f"aws rds register-db-proxy-targets --region {new_primary} --db-proxy-name {ids.new_proxy} "
                f"--target-group-name default --db-instance-identifiers {ids.new_writer}",
                check,
            ),
            "The proxy, its IAM role and policy, security groups and log group exist since the region was "
            "a replica region (AWS accepts no read replica as a proxy target): registering the promoted "
            "instance is the only change, a regional RDS call. Repeat the check until the target is "
            "AVAILABLE (about a minute).",
            phase,
        )
    ]


def _writer_name_steps(
    stack: str, ids: FailoverIdentifiers, old_primary: str, new_primary: str, phase: str
) -> list[RunbookStep]:
    """Switch the writer name through ARC's data plane (no Route 53 or ARC configuration call)."""
    if not ids.writer_name:
        return []
    arns = f"pulumi stack output writerRoutingControlArns --json --stack {stack}"
    endpoints = (
        f"pulumi stack output arcClusterEndpoints --json --stack {stack} | jq -r '.[] | "
        f'select(.region != "{old_primary}") | "\\(.region)=\\(.endpoint)"\''
    )
    return [
        RunbookStep(
            f"Writer name: move {ids.writer_name} to {new_primary} (Route 53 ARC routing controls)",
            (
                f"NEW=$({arns} | jq -r '.\"{new_primary}\"'); OLD=$({arns} | jq -r '.\"{old_primary}\"')",
                f"for ep in $({endpoints}); do aws route53-recovery-cluster update-routing-control-states "
                '--region "${ep%%=*}" --endpoint-url "${ep#*=}" --update-routing-control-state-entries '
                "RoutingControlArn=$NEW,RoutingControlState=On "
                "RoutingControlArn=$OLD,RoutingControlState=Off && break; done",
                f"dig +short {ids.writer_name}   # from an app host: {ids.new_proxy or new_primary} within "
                "the record TTL (10 s)",
            ),
            "One call to any of the ARC cluster's regional endpoints (its data plane; the loop skips the "
            f"old region's and tries the next on failure). Route 53 then answers {ids.writer_name} with "
            f"{new_primary}'s record only: nothing in Route 53's or ARC's configuration changes (those "
            "control planes are in us-east-1 and us-west-2 and are not used). The safety rule refuses a "
            "state with no region On; both changes go in one call. Apps reconnect by name; this is the "
            "moment writes resume.",
            phase,
        )
    ]


def _rename_instances(instances: Sequence[Rebuild]) -> list[str]:
    """Move retained replicas out of the way (``<identifier>-old``), keeping them and their data."""
    cmds = []
    for r in instances:
        cmds += [
            f"aws rds modify-db-instance --region {r.region} --db-instance-identifier {r.identifier} "
            f"--new-db-instance-identifier {r.identifier}-old --apply-immediately",
            f"aws rds wait db-instance-available --region {r.region} --db-instance-identifier "
            f"{r.identifier}-old",
        ]
    return cmds


def _delete_instances(instances: Sequence[Rebuild], ids: FailoverIdentifiers) -> list[str]:
    """Delete RDS instances explicitly, replicas first (a deleted source would promote them), the
    old writer last with its final snapshot (the writes that never replicated)."""
    ordered = sorted(
        (r for r in instances if r.type in ("", _RDS_INSTANCE)), key=lambda r: r.identifier == ids.old_writer
    )
    cmds = []
    for r in ordered:
        snapshot = (
            f"--final-db-snapshot-identifier {identifier_final(r.identifier)}"
            if r.identifier == ids.old_writer
            else "--skip-final-snapshot"  # a read replica: RDS takes no final snapshot of it
        )
        cmds += [
            f"aws rds delete-db-instance --region {r.region} --db-instance-identifier {r.identifier} "
            + snapshot,
            f"aws rds wait db-instance-deleted --region {r.region} --db-instance-identifier {r.identifier}",
        ]
    return cmds


def _after_recovery(
    stack: str, old_primary: str, keep_old_primary: bool, ids: FailoverIdentifiers
) -> list[RunbookStep]:
    """When the old primary region answers again: fence, then bring it back under the stack.

    Everything the update deletes or replaces there that Pulumi guards is handled first: deletion
    protection lifted, ``protect`` removed, and retained databases deleted explicitly (Pulumi's
    delete only forgets a retained resource; AWS would keep it running, identifier included).
    Retained keys, vaults, buckets and secrets stay in AWS on purpose.
    """
    cleanup = ids.old_region_cleanup
    before: list[str] = []
    after: list[str] = []
    for r in cleanup:
        if r.deletion_protection and r.type == _RDS_INSTANCE:
            before.append(
                f"aws rds modify-db-instance --region {r.region} --db-instance-identifier {r.identifier} "
                "--no-deletion-protection --apply-immediately"
            )
        elif r.deletion_protection and r.type == _RDS_CLUSTER:
            before.append(
                f"aws rds modify-db-cluster --region {r.region} --db-cluster-identifier {r.identifier} "
                "--no-deletion-protection --apply-immediately"
            )
    before += [f"pulumi state unprotect '{r.urn}' --yes" for r in cleanup if r.protected]
    before += _delete_instances([r for r in cleanup if r.retained and r.type == _RDS_INSTANCE], ids)
    account = _ACCOUNT.format(region=old_primary)
    for r in cleanup:
        if not r.retained:
            continue
        if r.type == _RDS_CLUSTER:
            # Its instances are deleted by the update; the cluster is retained: leave the Global
            # Database (if Aurora re-added it as a secondary), then delete it with a final snapshot.
            if ids.global_cluster:
                after.append(
                    f"aws rds remove-from-global-cluster --region {old_primary} --global-cluster-identifier "
                    f"{ids.global_cluster} --db-cluster-identifier "
                    f"arn:aws:rds:{old_primary}:{account}:cluster:{r.identifier} || true"
                )
            after.append(
                f"aws rds delete-db-cluster --region {old_primary} --db-cluster-identifier {r.identifier} "
                f"--final-db-snapshot-identifier {identifier_final(r.identifier)}"
            )
        elif r.type == _REPLICATION_GROUP:
            # Auto-named by Pulumi (<logical name>-<random>): looked up by its prefix.
            after.append(
                f"RG=$(aws elasticache describe-replication-groups --region {old_primary} --query "
                f"\"ReplicationGroups[?starts_with(ReplicationGroupId, '{r.identifier}')]"
                '.ReplicationGroupId" --output text)'
            )
            if ids.cache_global_suffix:
                after.append(
                    f"aws elasticache disassociate-global-replication-group --region {old_primary} "
                    f"--global-replication-group-id $(aws elasticache describe-global-replication-groups "
                    f'--region {old_primary} --query "GlobalReplicationGroups[?ends_with('
                    f"GlobalReplicationGroupId, '-{ids.cache_global_suffix}')].GlobalReplicationGroupId\" "
                    f'--output text) --replication-group-id "$RG" --replication-group-region '
                    f"{old_primary} || true"
                )
            after.append(
                f"aws elasticache delete-replication-group --region {old_primary} "
                f'--replication-group-id "$RG" --final-snapshot-identifier '
                f"{identifier_final(ids.old_writer)}-cache"
            )
    for r in ids.rebuilds:
        if r.retained and r.region != old_primary and r.type in ("", _RDS_INSTANCE):
            old = f"{r.identifier}-old"
            # Renamed during the outage: compare what it replayed with the new writer, keep a
            # snapshot (standalone first: RDS takes none of a replica), then delete it.
            after += [
                f"aws rds promote-read-replica --region {r.region} --db-instance-identifier {old}",
                f"aws rds wait db-instance-available --region {r.region} --db-instance-identifier {old}",
                f"aws rds delete-db-instance --region {r.region} --db-instance-identifier {old} "
                f"--final-db-snapshot-identifier {old}-final",
            ]
    kept = sorted(
        {r.identifier for r in cleanup if r.retained and r.type not in (_RDS_INSTANCE, _RDS_CLUSTER,
                                                                          _REPLICATION_GROUP)}
    )  # fmt: skip
    old_stack = ids.old_region_stack or f"<RegionStack URN of {old_primary}>"
    aurora = ids.engine_mode == "aurora"
    steps = [
        RunbookStep(
            f"As soon as {old_primary}'s API answers: fence the old writer {ids.old_writer} before anything "
            "else",
            (
                *(() if aurora else (*_db_fence(ids, old_primary, read_lsn=False),)),
                *_deregister_proxy_target(ids, old_primary),
                *_fence(ids, old_primary),
            ),
            "Writes it accepted after the last replicated one are not in the new writer; they are kept for "
            "reconciliation (below), but nothing may add to them. "
            + (
                ""
                if aurora
                else "Inside the database first (from a bastion in that region's admin security group): the "
                "writer users lose LOGIN, new sessions are read-only, then other client sessions (not "
                "superusers' or the master user's) are terminated, each its own transaction (a "
                "security-group revoke does not cut established connections); then the proxy "
                "target and the security groups. "
            )
            + "Run it before that region's deploy "
            "control plane restarts application tasks: a task that comes back with a pooled connection or "
            "a cached address could still reach the old writer until it is fenced.",
            AFTER_RECOVERY,
        ),
        *(
            [
                RunbookStep(
                    "Keep AWS's point-of-failure snapshot of the old primary cluster (the lost writes)",
                    (
                        f"aws rds describe-db-cluster-snapshots --region {old_primary} --snapshot-type "
                        f'automated --query "DBClusterSnapshots[?starts_with(DBClusterSnapshotIdentifier, '
                        f"'rds:unplanned-global-failover-{ids.old_writer}')].DBClusterSnapshotIdentifier\" "
                        "--output text",
                        f"aws rds copy-db-cluster-snapshot --region {old_primary} "
                        '--source-db-cluster-snapshot-identifier "$(aws rds describe-db-cluster-snapshots '
                        f'--region {old_primary} --snapshot-type automated --query "DBClusterSnapshots[?'
                        f"starts_with(DBClusterSnapshotIdentifier, 'rds:unplanned-global-failover-"
                        f'{ids.old_writer}\')].DBClusterSnapshotIdentifier | [-1]" --output text)" '
                        f"--target-db-cluster-snapshot-identifier {_lost_writes(ids)}",
                        f"aws rds wait db-cluster-snapshot-available --region {old_primary} "
                        f"--db-cluster-snapshot-identifier {_lost_writes(ids)}",
                    ),
                    "After failover-global-cluster --allow-data-loss, AWS re-adds the old primary cluster as "
                    "a secondary with a new volume and first tries to snapshot the old one at the point of "
                    "failure (rds:unplanned-global-failover-...): that snapshot, not the cluster's final "
                    "snapshot, holds the writes that never replicated. It is a system snapshot that expires "
                    "with the cluster's backup retention: copy it to a manual one now. No such snapshot: AWS "
                    "could not take it, and nothing AWS keeps has those writes.",
                    AFTER_RECOVERY,
                )
            ]
            if aurora
            else []
        ),
        *_cache_reform(ids, old_primary, keep_old_primary),
        RunbookStep(
            f"Bring {old_primary} back under the stack and complete the failover",
            (
                # Its provider may call AWS again (STS) now that the region answers.
                _rotated_check(ids.new_writer_region, ids.new_writer_code),
                "pulumi config rm commerce-db:unreachableRegions",
                "pulumi config rm commerce-db:promotedFrom 2>/dev/null || true   # unless removed already",
                f"pulumi config set commerce-db:retiringLoginsFrom {old_primary}",
                f"git commit -am 'failover: {old_primary} reachable again'",
                f"pulumi refresh --yes --run-program --target '{old_stack}' --target-dependents",
                *before,
                "pulumi preview --diff",
                "pulumi up --yes",
                *after,
            ),
            (
                "Aurora rejoins the old primary cluster to the Global Database as a secondary; the refresh "
                "records that, and up keeps it (no replacement). "
                if aurora and keep_old_primary
                else f"The old writer is deleted with a final snapshot ({identifier_final(ids.old_writer)}) "
                "holding any writes that never replicated (explicitly: Pulumi retains databases on delete); "
                + (
                    f"{old_primary} is rebuilt as a replica region of the new writer. "
                    if keep_old_primary
                    else f"{old_primary}'s resources leave the stack. Add it back to "
                    "commerce-db:replicaRegions when wanted. "
                )
            )
            + (
                "Kept in AWS on purpose (retained, no longer managed): " + ", ".join(kept) + ". "
                if kept
                else ""
            )
            + "The after-recovery update also removes the old region's writer-name record and routing "
            "control (drop) and re-creates the ARC safety rule over the remaining regions. Credentials: "
            + _COMPLETE_DETAIL.replace("Once the update above has run", "After the failover's update")
            + f" ({ids.new_secret or 'the master secret'})",
            AFTER_RECOVERY,
        ),
    ]
    steps.append(_retire_step(old_primary, AFTER_RECOVERY))
    steps.append(_reconcile_step(ids, old_primary, aurora))
    return steps


def _lost_writes(ids: FailoverIdentifiers) -> str:
    """Manual snapshot holding the old writer's unreplicated writes (Aurora: AWS's copy)."""
    return ids.old_writer.rsplit("-", 1)[0] + "-lost-writes"


def _reconcile_step(ids: FailoverIdentifiers, old_primary: str, aurora: bool) -> RunbookStep:
    """Restore the old data to a scratch database in the new writer region and re-apply lost orders
    (``commerce-db failover reconcile``; docs/operations.md, "Reconciling writes lost in a failover")."""
    new_region = ids.new_writer_region or ""
    base = ids.old_writer.rsplit("-", 1)[0]
    scratch = f"{base}-reconcile"
    account = _ACCOUNT.format(region=new_region)
    subnets = (
        f'$(aws rds describe-db-subnet-groups --region {new_region} --query "DBSubnetGroups[?starts_with('
        f"DBSubnetGroupName, '{ids.new_writer_code}-pg-subnets')].DBSubnetGroupName | [0]\" --output text)"
    )
    # The scratch database admits only the operator's bastion: a security group of its own.
    admin_sg = (
        ': "${BASTION_SG:?export BASTION_SG=the security group id of your bastion in ' + new_region + '}"',
        f"ADMIN_SG=$(aws ec2 create-security-group --region {new_region} --group-name {scratch} "
        "--description "
        f"'reconcile scratch database: bastion only' --vpc-id $(aws rds describe-db-subnet-groups --region "
        f"{new_region} --db-subnet-group-name {subnets} --query 'DBSubnetGroups[0].VpcId' --output text) "
        "--query GroupId --output text)",
        f'aws ec2 authorize-security-group-ingress --region {new_region} --group-id "$ADMIN_SG" '
        "--protocol tcp "
        '--port 5432 --source-group "$BASTION_SG"',
    )
    drop_sg = f'aws ec2 delete-security-group --region {new_region} --group-id "$ADMIN_SG"'
    restore: tuple[str, ...]
    if aurora:
        snapshot = _lost_writes(ids)
        restore = (
            *admin_sg,
            f"aws rds copy-db-cluster-snapshot --region {new_region} --source-region {old_primary} "
            f"--source-db-cluster-snapshot-identifier arn:aws:rds:{old_primary}:{account}:cluster-snapshot:"
            f"{snapshot} --target-db-cluster-snapshot-identifier {snapshot} --kms-key-id {ids.new_key_alias}",
            f"aws rds wait db-cluster-snapshot-available --region {new_region} "
            f"--db-cluster-snapshot-identifier {snapshot}",
            f"aws rds restore-db-cluster-from-snapshot --region {new_region} --db-cluster-identifier "
            f"{scratch} "
            f"--snapshot-identifier {snapshot} --engine aurora-postgresql --db-subnet-group-name {subnets} "
            '--vpc-security-group-ids "$ADMIN_SG"',
            f"aws rds create-db-instance --region {new_region} --db-cluster-identifier {scratch} "
            f"--db-instance-identifier {scratch}-1 --db-instance-class db.r6g.large "
            "--engine aurora-postgresql",
            f"aws rds wait db-instance-available --region {new_region} --db-instance-identifier {scratch}-1",
            f"aws rds modify-db-cluster --region {new_region} --db-cluster-identifier {scratch} "
            "--manage-master-user-password --apply-immediately",
        )
        cleanup = (
            f"aws rds delete-db-instance --region {new_region} --db-instance-identifier {scratch}-1 && "
            f"aws rds wait db-instance-deleted --region {new_region} --db-instance-identifier {scratch}-1 && "
            f"aws rds delete-db-cluster --region {new_region} --db-cluster-identifier {scratch} "
            f"--skip-final-snapshot && aws rds wait db-cluster-deleted --region {new_region} "
            f"--db-cluster-identifier {scratch} && {drop_sg}"
        )
    else:
        snapshot = identifier_final(ids.old_writer)
        restore = (
            *admin_sg,
            f"aws rds copy-db-snapshot --region {new_region} --source-region {old_primary} "
            f"--source-db-snapshot-identifier arn:aws:rds:{old_primary}:{account}:snapshot:{snapshot} "
            f"--target-db-snapshot-identifier {snapshot} --kms-key-id {ids.new_key_alias}",
            f"aws rds wait db-snapshot-available --region {new_region} --db-snapshot-identifier {snapshot}",
            f"aws rds restore-db-instance-from-db-snapshot --region {new_region} --db-instance-identifier "
            f"{scratch} --db-snapshot-identifier {snapshot} --db-instance-class db.r6g.large --no-multi-az "
            f'--no-publicly-accessible --db-subnet-group-name {subnets} --vpc-security-group-ids "$ADMIN_SG"',
            f"aws rds wait db-instance-available --region {new_region} --db-instance-identifier {scratch}",
            f"aws rds modify-db-instance --region {new_region} --db-instance-identifier {scratch} "
            "--manage-master-user-password --apply-immediately",
        )
        cleanup = (
            f"aws rds delete-db-instance --region {new_region} --db-instance-identifier {scratch} "
            f"--skip-final-snapshot && aws rds wait db-instance-deleted --region {new_region} "
            f"--db-instance-identifier {scratch} && {drop_sg}"
        )
    return RunbookStep(
        "Reconcile the writes the failover lost: restore the old data to a scratch database and re-place "
        "the missing orders",
        (
            *restore,
            f'commerce-db failover reconcile --since "$(cat {_PROMOTED_AT})" --json '
            "> failover-reconcile.json",
            f'commerce-db failover reconcile --since "$(cat {_PROMOTED_AT})" --apply',
            cleanup,
        ),
        f"The lost writes are in {snapshot} ("
        + (
            "AWS's point-of-failure snapshot, kept above"
            if aurora
            else f"the old writer's final snapshot, taken when the previous step deleted {ids.old_writer}"
        )
        + f"). The scratch database gets a security group of its own ({scratch}) that admits only your "
        "bastion's (BASTION_SG), deleted with it. The reconcile "
        "reads the old data from COMMERCE_DB_OLD_WRITER_DSN / COMMERCE_DB_OLD_PASSWORD (the scratch "
        "database and its managed master secret) and writes through the same COMMERCE_DB_* environment as "
        "an application task in the new writer region; the first run is a dry run (keep its JSON with the "
        "incident), --apply re-places the orders that fit through orders.place with their original "
        "idempotency keys (a second run is a no-op); conflicts are left to a human (exit 3). See "
        'docs/operations.md, "Reconciling writes lost in a failover". Keep the snapshot until the '
        "conflicts are settled.",
        AFTER_RECOVERY,
    )


def _cache_reform(ids: FailoverIdentifiers, old_primary: str, keep_old_primary: bool) -> list[RunbookStep]:
    """Only if the outage cache step fell back to disassociating the new primary's member: re-form the
    Global Datastore around it (the stack still declares every region's member)."""
    if not ids.cache_members or not ids.global_group_urn or ids.cache_global_suffix is None:
        return []
    new_region = ids.cache_members[0][0]
    secondaries = [m for m in ids.cache_members[1:] if keep_old_primary or m[0] != old_primary]
    others = [m for m in ids.cache_members[1:] if m[0] != old_primary]
    suffix = ids.cache_global_suffix
    grg = (
        f"$(aws elasticache describe-global-replication-groups --region {old_primary} --query "
        f"\"GlobalReplicationGroups[?ends_with(GlobalReplicationGroupId, '-{suffix}')]"
        '.GlobalReplicationGroupId" '
        "--output text)"
    )

    def member(region: str, group: str = '"$GRG"') -> str:
        return (
            f"$(aws elasticache describe-global-replication-groups --region {region} --show-member-info "
            f'--global-replication-group-id {group} --query "GlobalReplicationGroups[0].Members[?'
            f"ReplicationGroupRegion=='{region}'].ReplicationGroupId\" --output text)"
        )

    new_group = (
        f'$(aws elasticache describe-replication-groups --region {new_region} --query "ReplicationGroups[?'
        f"starts_with(ReplicationGroupId, '{ids.new_writer_code}-cache-rg')].ReplicationGroupId | [0]\" "
        "--output text)"
    )
    cmds = [
        f"GRG={grg}",
        # The check: PRIMARY (the failover worked) -> nothing to do, stop; empty (disassociated) -> go on.
        f"aws elasticache describe-global-replication-groups --region {old_primary} --show-member-info "
        f'--global-replication-group-id "$GRG" --query "GlobalReplicationGroups[0].Members[?'
        f"ReplicationGroupRegion=='{new_region}'].Role\" --output text   # PRIMARY: stop here",
        *(
            f"aws elasticache disassociate-global-replication-group --region {r} "
            "--global-replication-group-id "
            f'"$GRG" --replication-group-id {member(r)} --replication-group-region {r}'
            for r, _, _ in others
        ),
        f"aws elasticache delete-global-replication-group --region {old_primary} "
        "--global-replication-group-id "
        '"$GRG" --retain-primary-replication-group',
        f"aws elasticache create-global-replication-group --region {new_region} "
        f"--global-replication-group-id-suffix {suffix} --primary-replication-group-id {new_group}",
        f"pulumi state unprotect '{ids.global_group_urn}' --yes",
        f"pulumi state delete '{ids.global_group_urn}' --yes",
        f"NEW_GRG=$(aws elasticache describe-global-replication-groups --region {new_region} --query "
        f"\"GlobalReplicationGroups[?ends_with(GlobalReplicationGroupId, '-{suffix}')]."
        'GlobalReplicationGroupId" --output text)',
        f'pulumi import {_GLOBAL_GROUP} {ids.global_group_name} "$NEW_GRG" '
        f"--parent 'shared={ids.global_group_parent}' --provider 'aws={ids.home_provider_urn}' --yes",
        *(f"pulumi state unprotect '{urn}' --yes" for _, urn, protected in secondaries if protected),
    ]
    return [
        RunbookStep(
            "Only if the cache step disassociated the new primary's member: re-form the Global Datastore "
            "(before the update below)",
            tuple(cmds),
            f"The member in {new_region} left the Global Datastore during the outage (a standalone, writable "
            "group, the live cache now); the Global Datastore kept the old primary and the other "
            "secondaries, which the stack still declares. A secondary cannot change its Global Datastore "
            "and an existing group cannot join one as a secondary, so: the other secondaries leave it, it is "
            "deleted keeping its old primary group, a new one is created around the live group in "
            f"{new_region} (AWS's call, in that region: the stack's provider for it is the home region's) "
            "and imported in its place, and the next step's update re-creates the secondaries empty, as "
            "members of the new one (they fill from the primary). Their old groups are retained by Pulumi: "
            "delete them "
            "afterwards with a final snapshot (aws elasticache delete-replication-group ... "
            "--final-snapshot-identifier ...). Not rehearsed against AWS (the mocks cannot disassociate): "
            "rehearse in staging with a Global Datastore.",
            AFTER_RECOVERY,
        )
    ]


def identifier_final(writer: str) -> str:
    """Name of the final snapshot RDS keeps of a deleted writer (``<region prefix>-final``)."""
    return writer.rsplit("-", 1)[0] + "-final"


# --------------------------------------------------------------------------- entry points


def plan_failover(
    stack: str,
    new_primary: str,
    *,
    project_dir: Path | None = None,
    keep_old_primary: bool = True,
    planned: bool = False,
    dr_region: str | None = None,
    with_identifiers: bool = True,
    runner: Callable[[str, Mapping[str, Any]], Any] = _program_run,
) -> FailoverPlan:
    """Compute, validate and describe promoting ``new_primary`` for ``stack`` (writes nothing).

    ``planned`` (default False) gives the data-loss-free switchover instead of the outage path;
    it keeps the old primary. ``with_identifiers`` (default True) builds the program under mocks
    before and after the change (a few seconds) to list the URNs to target and the replicas to
    rebuild; False gives the fixed names only.
    """
    if planned and not keep_old_primary:
        raise FailoverError("--planned keeps the old primary region (it is healthy); drop --drop-old-primary")
    try:
        doc = read_stack_yaml(stack, project_dir)
    except SettingsError as exc:
        raise FailoverError(str(exc)) from None
    path = stack_file(stack, project_dir)
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise FailoverError(f"'config:' in {path.name} must be a mapping")
    old_primary = str(config.get(PRIMARY_KEY) or config.get(AWS_REGION_KEY) or "")
    new_config, changes = compute_failover_config(
        config,
        new_primary,
        keep_old_primary=keep_old_primary,
        dr_region=dr_region,
        old_primary_reachable=planned,
    )
    loaded = validate_failover_config(stack, new_config)
    old_text = path.read_text(encoding="utf-8")
    new_text, preserved = render_failover_yaml(old_text, new_config, changes)
    # The loader resolves per-environment defaults (globalDatastore is on in prod unless set).
    gds = bool(loaded.cache.enabled and loaded.cache.global_datastore)
    ids = discover_identifiers(
        stack, config, new_config, old_primary, new_primary,
        engine_mode=loaded.postgres.engine_mode, global_datastore=gds, old_primary_kept=keep_old_primary,
        runner=runner if with_identifiers else _skip,
    )  # fmt: skip
    if ids.violations:
        raise FailoverError(
            "the stack change would lose data in a surviving region: " + "; ".join(ids.violations)
        )
    steps = build_steps(
        stack, old_primary, new_primary, keep_old_primary=keep_old_primary, planned=planned, ids=ids
    )
    return FailoverPlan(
        stack=stack,
        path=path,
        old_primary=old_primary,
        new_primary=new_primary,
        old_primary_kept=keep_old_primary,
        planned=planned,
        global_datastore=gds,
        changes=changes,
        old_text=old_text,
        new_text=new_text,
        comments_preserved=preserved,
        identifiers=ids,
        steps=steps,
    )


def _skip(_stack: str, _config: Mapping[str, Any]) -> Any:
    raise RuntimeError("mocked plans not requested (--no-plan)")


def write_failover(plan: FailoverPlan) -> Path:
    """Write ``plan.new_text`` to the stack file; returns the backup path (``Pulumi.<stack>.yaml.bak``).

    Refuses if the file changed since the plan was computed (someone else edited it).
    """
    current = plan.path.read_text(encoding="utf-8")
    if current != plan.old_text:
        raise FailoverError(f"{plan.path.name} changed since the failover was planned; run the command again")
    backup = plan.path.with_name(plan.path.name + ".bak")
    backup.write_text(current, encoding="utf-8")
    tmp = plan.path.with_name(plan.path.name + ".tmp")
    tmp.write_text(plan.new_text, encoding="utf-8")
    tmp.replace(plan.path)  # atomic: a crash leaves either the old or the new file
    return backup
