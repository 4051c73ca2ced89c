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
CACHE_KEY = f"{PROJECT}:cache"
AWS_REGION_KEY = "aws:region"

_RDS_INSTANCE = "aws:rds/instance:Instance"
_REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
_GLOBAL_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
_SECRET = "aws:secretsmanager/secret:Secret"
_PROXY = "aws:rds/proxy:Proxy"


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

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "commands": list(self.commands), "detail": self.detail}


@dataclass(frozen=True)
class StateMove:
    """A resource whose logical URN changes with the new config (adopt it; never let Pulumi replace it)."""

    what: str
    type: str
    old_urn: str
    new_urn: str
    new_name: str
    new_parent_urn: str | None
    import_id: str
    provider_urn: str | None = None
    """Explicit provider (region) the program gives the resource; ``import --provider`` needs it."""


@dataclass(frozen=True)
class FailoverIdentifiers:
    """Names the runbook commands use; from mocked plans of the stack, else ``<placeholders>``."""

    source: str
    """``"mocked plan"`` or ``"placeholders: <why>"``."""
    replica_instance: str
    """Identifier of the cross-region replica that gets promoted (in the new primary region)."""
    old_primary_instance: str
    new_primary_instance: str | None = None
    """Identifier the new config gives the writer in the new region (None: same as the replica's)."""
    old_region_replicas: tuple[str, ...] = ()
    """In-region read replicas of the old primary (re-created by ``pulumi up``)."""
    global_group_id: str | None = None
    """Global Datastore id (None when the stack has none)."""
    new_primary_replication_group: str | None = None
    db_secret: str = "<db-master-secret-name>"
    new_proxy: str = "<proxy-in-new-primary-region>"
    state_moves: tuple[StateMove, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "replicaInstance": self.replica_instance,
            "oldPrimaryInstance": self.old_primary_instance,
            "newPrimaryInstance": self.new_primary_instance,
            "oldRegionReplicas": list(self.old_region_replicas),
            "globalGroupId": self.global_group_id,
            "newPrimaryReplicationGroup": self.new_primary_replication_group,
            "dbSecret": self.db_secret,
            "newProxy": self.new_proxy,
            "stateMoves": [m.__dict__ for m in self.state_moves],
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
) -> tuple[dict[str, Any], tuple[ConfigChange, ...]]:
    """The stack config after promoting ``new_primary``, and the keys that change.

    ``config`` maps fully qualified keys (as in ``Pulumi.<stack>.yaml``) to values.
    ``keep_old_primary`` (default True) puts the old primary where the promoted region was in
    ``replicaRegions`` (so replicas are re-created there); False drops it (regional outage).
    ``dr_region`` (default: keep the current one unless it is the new primary, then the first
    replica region that is not the old primary, else the old primary) sets ``drRegion``.
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
    new_config[PRIMARY_KEY] = new_primary
    new_config[REPLICAS_KEY] = new_replicas
    new_config[DR_KEY] = new_dr
    if config.get(AWS_REGION_KEY) == old_primary:
        new_config[AWS_REGION_KEY] = new_primary  # default provider follows the writer
    changes = tuple(
        ConfigChange(key, config.get(key), new_config[key])
        for key in (AWS_REGION_KEY, PRIMARY_KEY, REPLICAS_KEY, DR_KEY)
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
    if isinstance(value, list) and not flow:
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


def _physical(res: Any, *keys: str) -> str:
    """The resource's physical name if the program fixes it, else a lookup placeholder.

    Resources the program leaves auto-named get a random suffix from Pulumi at create time;
    the mocked plan cannot know it, so the runbook says where to read it.
    """
    for key in keys:
        value = res.inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return f"<{res.name} physical id>"


def _ident(res: Any) -> str:
    return _physical(res, "identifier")


def _is_replica(res: Any) -> bool:
    return bool(res.inputs.get("replicateSourceDb"))


def engine_urns(resources: Sequence[Any]) -> dict[str, str]:
    """Mock URN -> the URN the Pulumi engine gives the same resource.

    The engine qualifies a type with the parent's whole type chain
    (``RegionStack$CrossRegionReplicas$aws:rds/instance:Instance``); the SDK's mock monitor only
    prefixes the immediate parent's type. ``pulumi state delete``/``import --parent`` need the real one.
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


def _first(
    resources: Sequence[Any], typ: str, region: str, pred: Callable[[Any], bool] = lambda r: True
) -> Any:
    return next((r for r in resources if r.type == typ and r.region == region and pred(r)), None)


def discover_identifiers(
    stack: str,
    old_config: Mapping[str, Any],
    new_config: Mapping[str, Any],
    old_primary: str,
    new_primary: str,
    *,
    runner: Callable[[str, Mapping[str, Any]], Any] = _program_run,
    global_datastore: bool | None = None,
) -> FailoverIdentifiers:
    """Identifiers for the runbook from mocked plans of the stack before and after the change.

    Falls back to ``<placeholders>`` (saying why) if the program cannot be built offline.
    ``global_datastore`` (default: read from ``old_config``) decides the cache placeholders.
    """
    gds = _global_datastore(old_config) if global_datastore is None else global_datastore
    placeholders = FailoverIdentifiers(
        source="placeholders",
        replica_instance=f"<replica-db-identifier-in-{new_primary}>",
        old_primary_instance=f"<primary-db-identifier-in-{old_primary}>",
        global_group_id="<global-replication-group-id>" if gds else None,
        new_primary_replication_group=f"<replication-group-id-in-{new_primary}>" if gds else None,
    )
    try:
        before = runner(stack, old_config)
        after = runner(stack, new_config)
    except Exception as exc:  # the runbook must still print when the program cannot build
        return replace(placeholders, source=f"placeholders: {type(exc).__name__}: {exc}")

    old_res, new_res = list(before.resources), list(after.resources)
    replica = _first(old_res, _RDS_INSTANCE, new_primary, _is_replica)
    old_writer = _first(old_res, _RDS_INSTANCE, old_primary, lambda r: not _is_replica(r))
    if replica is None or old_writer is None:
        return replace(placeholders, source="placeholders: no cross-region replica found in the plan")
    old_replicas = tuple(_ident(r) for r in old_res if r.type == _RDS_INSTANCE and r.region == old_primary
                         and _is_replica(r))  # fmt: skip
    new_writer = _first(new_res, _RDS_INSTANCE, new_primary, lambda r: not _is_replica(r))
    target_ident = _ident(new_writer) if new_writer is not None else _ident(replica)

    group_before = next((r for r in old_res if r.type == _GLOBAL_GROUP), None)
    group_after = next((r for r in new_res if r.type == _GLOBAL_GROUP), None)
    global_id = None
    if group_before is not None:
        # AWS prepends an account-specific prefix to the suffix; describe-global-replication-groups shows it.
        global_id = (
            f"<aws-prefix>-{group_before.inputs.get('globalReplicationGroupIdSuffix') or group_before.name}"
        )
    rg_before = _first(old_res, _REPLICATION_GROUP, new_primary)
    rg_after = _first(new_res, _REPLICATION_GROUP, new_primary)
    secret = _first(old_res, _SECRET, old_primary, lambda r: r.parent_type == "commerce:db:PostgresCluster")
    proxy = _first(new_res, _PROXY, new_primary)

    old_urn, new_urn = engine_urns(old_res), engine_urns(new_res)

    def move(what: str, typ: str, old: Any, new: Any, import_id: str) -> StateMove:
        parent = new_urn.get(new.parent_urn or "", new.parent_urn)
        provider = new.provider.rsplit("::", 1)[0] if new.provider else None  # ref is "<urn>::<id>"
        provider = new_urn.get(provider or "", provider)
        return StateMove(what, typ, old_urn[old.urn], new_urn[new.urn], new.name, parent, import_id, provider)

    moves = []
    if new_writer is not None and new_urn[new_writer.urn] != old_urn[replica.urn]:
        moves.append(move("promoted PostgreSQL instance", _RDS_INSTANCE, replica, new_writer, target_ident))
    if rg_before is not None and rg_after is not None and new_urn[rg_after.urn] != old_urn[rg_before.urn]:
        rg_id = _physical(rg_before, "replicationGroupId")
        moves.append(move("cache replication group", _REPLICATION_GROUP, rg_before, rg_after, rg_id))
    if (
        group_before is not None
        and group_after is not None
        and new_urn[group_after.urn] != old_urn[group_before.urn]
    ):
        moves.append(move("Global Datastore", _GLOBAL_GROUP, group_before, group_after, global_id or ""))

    return FailoverIdentifiers(
        source="mocked plan",
        replica_instance=_ident(replica),
        old_primary_instance=_ident(old_writer),
        new_primary_instance=target_ident,
        old_region_replicas=old_replicas,
        global_group_id=global_id,
        new_primary_replication_group=(
            _physical(rg_before, "replicationGroupId") if rg_before is not None and global_id else None
        ),
        db_secret=_physical(secret, "name") if secret is not None else placeholders.db_secret,
        new_proxy=_physical(proxy, "name") if proxy is not None else placeholders.new_proxy,
        state_moves=tuple(moves),
    )


def _global_datastore(config: Mapping[str, Any]) -> bool:
    cache = config.get(CACHE_KEY)
    if isinstance(cache, str):
        cache = yaml.safe_load(cache)
    if isinstance(cache, Mapping) and "globalDatastore" in cache:
        return cache["globalDatastore"] in (True, "true")
    return config.get(f"{PROJECT}:environment", "") == "prod"  # the loader's per-environment default


# --------------------------------------------------------------------------- runbook


def _id_values(ids: FailoverIdentifiers) -> list[str]:
    values = [ids.replica_instance, ids.old_primary_instance, ids.db_secret, ids.new_proxy]
    values += [v for v in (ids.global_group_id, ids.new_primary_replication_group) if v]
    return values + [m.import_id for m in ids.state_moves]


def build_steps(
    stack: str,
    old_primary: str,
    new_primary: str,
    *,
    keep_old_primary: bool,
    global_datastore: bool,
    ids: FailoverIdentifiers,
    new_replica_count: int = 1,
) -> tuple[RunbookStep, ...]:
    """The ordered operator steps, with the commands filled in from ``ids``."""
    writer = ids.new_primary_instance or ids.replica_instance
    rename: tuple[str, ...] = ()
    if writer != ids.replica_instance:
        rename = (
            f"aws rds modify-db-instance --db-instance-identifier {ids.replica_instance} "
            f"--new-db-instance-identifier {writer} --apply-immediately --region {new_primary}",
            f"aws rds wait db-instance-available --db-instance-identifier {writer} --region {new_primary}",
        )
    steps = [
        RunbookStep(
            "Freeze writes: put the application in maintenance mode (or scale writers to zero)",
            (),
            "Writes that land on the old primary after the replica is promoted are lost; freezing first "
            "makes the promotion loss-free. Reads may continue.",
        ),
        RunbookStep(
            f"Check replica lag of {ids.replica_instance} is ~0 (CloudWatch ReplicaLag, seconds)",
            (
                "aws cloudwatch get-metric-statistics --namespace AWS/RDS --metric-name ReplicaLag "
                f"--dimensions Name=DBInstanceIdentifier,Value={ids.replica_instance} --statistics Maximum "
                "--period 60 --start-time $(date -u -d '-10 min' +%FT%TZ) --end-time $(date -u +%FT%TZ) "
                f"--region {new_primary}",
            ),
            "Wait until the last datapoints are 0 with writes frozen. If the old region is down, lag is "
            "unknown: the RPO is the last observed lag (accept the loss explicitly).",
        ),
        RunbookStep(
            f"Promote the cross-region replica in {new_primary} to a standalone writer",
            (
                f"aws rds promote-read-replica --db-instance-identifier {ids.replica_instance} "
                f"--backup-retention-period 7 --region {new_primary}",
                f"aws rds wait db-instance-available --db-instance-identifier {ids.replica_instance} "
                f"--region {new_primary}",
                *rename,
            ),
            "Promotion reboots the instance and cannot be undone; it stops replication from "
            f"{old_primary}. Backups are enabled so the new writer can have replicas of its own "
            "(pulumi up sets the configured retention afterwards)."
            + (
                f" The rename gives it the identifier the new config expects ({writer}), so Pulumi adopts "
                "it instead of replacing it (the endpoint host changes with the identifier)."
                if rename
                else ""
            ),
        ),
    ]
    if global_datastore:
        steps.append(
            RunbookStep(
                f"Switch the ElastiCache Global Datastore primary to {new_primary}",
                (
                    "aws elasticache describe-global-replication-groups --show-member-info "
                    f"--region {new_primary}   # the real id carries an AWS prefix",
                    f"aws elasticache failover-global-replication-group --global-replication-group-id "
                    f"{ids.global_group_id} --primary-region {new_primary} "
                    f"--primary-replication-group-id {ids.new_primary_replication_group} "
                    f"--region {new_primary}",
                ),
                "Planned failover keeps cached data; during a regional outage use "
                "disassociate-global-replication-group on the secondary instead, then re-add.",
            )
        )
    else:
        steps.append(
            RunbookStep(
                f"Cache: no Global Datastore in this stack; the cache in {new_primary} starts cold",
                (),
                "Apps fall back to the database on misses (cache-aside); expect a higher DB load briefly.",
            )
        )
    steps.append(
        RunbookStep(
            "Point credentials and app config at the new writer",
            (
                f"aws rds describe-db-instances --db-instance-identifier {writer} "
                f"--region {new_primary} --query 'DBInstances[0].Endpoint.Address'",
                f"aws secretsmanager describe-secret --secret-id {ids.db_secret} --region {old_primary}",
            ),
            f"Update the 'host' field of secret {ids.db_secret} (and its replica in {new_primary}, if "
            "replicated) to the promoted endpoint so rotation keeps working; point the apps' writer DSN "
            f"at the RDS Proxy in {new_primary} ({ids.new_proxy}) once pulumi up created it.",
        )
    )
    adopt = []
    if any("physical id>" in v for v in _id_values(ids)):
        adopt.append(
            "pulumi stack --show-ids --show-urns   # physical ids of the <... physical id> placeholders"
        )
    for move in ids.state_moves:
        adopt.append(f"pulumi state delete '{move.old_urn}' --force --yes   # {move.what}: state only")
        parent = f" --parent 'parent={move.new_parent_urn}'" if move.new_parent_urn else ""
        provider = f" --provider 'provider={move.provider_urn}'" if move.provider_urn else ""
        adopt.append(f"pulumi import {move.type} {move.new_name} {move.import_id}{parent}{provider} --yes")
    steps.append(
        RunbookStep(
            "Commit the new stack config and reconcile Pulumi state",
            (
                f"commerce-db failover promote {stack} --region {new_primary}"
                + ("" if keep_old_primary else " --drop-old-primary")
                + " --write",
                f"pulumi stack select {stack} && pulumi refresh --yes",
                *adopt,
                f"pulumi preview --diff   # must NOT replace or delete {writer} or the cache groups",
            ),
            "refresh records the promotion in state; the listed state moves (if any) adopt resources "
            "whose logical name changes with their new role, instead of letting Pulumi replace them "
            "(URNs are from the mocked plan: check them against `pulumi stack --show-urns`).",
        )
    )
    if keep_old_primary:
        steps.append(
            RunbookStep(
                f"Apply: new primary stack in {new_primary}, replicas re-created in {old_primary}",
                (
                    f"aws rds modify-db-instance --db-instance-identifier {ids.old_primary_instance} "
                    f"--no-deletion-protection --apply-immediately --region {old_primary}",
                    "pulumi up --yes",
                ),
                f"The old writer {ids.old_primary_instance} (in-region replicas: "
                f"{', '.join(ids.old_region_replicas) or 'none'}) cannot turn into replicas: pulumi up "
                f"replaces them with cross-region replicas of {writer} (a final snapshot is "
                f"kept in prod) and creates the proxy, alarms and backup plan for {new_primary}.",
            )
        )
    else:
        steps.append(
            RunbookStep(
                f"Apply: new primary stack in {new_primary} ({old_primary} dropped)",
                (
                    "pulumi up --yes",
                    f"pulumi up --yes --target '<RegionStack URN in {new_primary}>' --target-dependents"
                    f"   # instead, while {old_primary} is unreachable",
                ),
                f"Later, when {old_primary} is healthy: clean up its old resources (deletion protection "
                f"off), add it back to commerce-db:replicaRegions (index {new_replica_count}) and pulumi up.",
            )
        )
    steps.extend(
        [
            RunbookStep(
                "Verify",
                (
                    f"commerce-db stack outputs {stack} --json   # primaryRegion = {new_primary}",
                    "psql \"host=<writerEndpoint> sslmode=verify-full\" -c 'select pg_is_in_recovery()'   "
                    "# expect f",
                    "REDISCLI_AUTH=<token from redisAuthSecretArn> redis-cli --tls -h <redisPrimaryEndpoint> "
                    "ROLE   # expect master",
                ),
                f"Also check ReplicaLag alarms on the new replicas and that the backup plan in {new_primary} "
                "ran (or start an on-demand backup).",
            ),
            RunbookStep(
                "Unfreeze writes: leave maintenance mode", (), "Watch error rates and pool waits for a while."
            ),
        ]
    )
    return tuple(steps)


# --------------------------------------------------------------------------- entry points


def plan_failover(
    stack: str,
    new_primary: str,
    *,
    project_dir: Path | None = None,
    keep_old_primary: bool = True,
    dr_region: str | None = None,
    with_identifiers: bool = True,
    runner: Callable[[str, Mapping[str, Any]], Any] = _program_run,
) -> FailoverPlan:
    """Compute, validate and describe promoting ``new_primary`` for ``stack`` (writes nothing).

    ``with_identifiers`` (default True) builds the program under mocks twice to fill in the
    runbook's identifiers (about a second per stack); False uses placeholders.
    """
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
        config, new_primary, keep_old_primary=keep_old_primary, dr_region=dr_region
    )
    loaded = validate_failover_config(stack, new_config)
    old_text = path.read_text(encoding="utf-8")
    new_text, preserved = render_failover_yaml(old_text, new_config, changes)
    # The loader resolves per-environment defaults (globalDatastore is on in prod unless set).
    gds = bool(loaded.cache.enabled and loaded.cache.global_datastore)
    ids = discover_identifiers(
        stack, config, new_config, old_primary, new_primary,
        runner=runner if with_identifiers else _skip, global_datastore=gds,
    )  # fmt: skip
    steps = build_steps(
        stack,
        old_primary,
        new_primary,
        keep_old_primary=keep_old_primary,
        global_datastore=gds,
        ids=ids,
        new_replica_count=len(new_config[REPLICAS_KEY]),
    )
    return FailoverPlan(
        stack=stack,
        path=path,
        old_primary=old_primary,
        new_primary=new_primary,
        old_primary_kept=keep_old_primary,
        global_datastore=gds,
        changes=changes,
        old_text=old_text,
        new_text=new_text,
        comments_preserved=preserved,
        identifiers=ids,
        steps=steps,
    )


def _skip(_stack: str, _config: Mapping[str, Any]) -> Any:
    raise RuntimeError("identifiers not requested")


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
