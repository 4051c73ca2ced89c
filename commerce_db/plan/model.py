"""Shape a mocked program run into the plan: resources grouped by region, then by component.

A resource belongs to its nearest component ancestor (``commerce:db:*``); nested components
stay nested. A resource's region is its own (``RegisteredResource.region``); resources without
one (``random`` passwords, components) take the region most of their component's resources use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from commerce_db.mock_engine import ProgramRun, RegisteredResource
from commerce_db.plan.refs import RefIndex
from commerce_db.plan.settings import mask, summarise

GLOBAL = "global"
STACK_GROUP = "(stack)"


@dataclass
class ResourceView:
    """One resource as the plan shows it."""

    type: str
    name: str
    region: str
    parent: str | None
    """Logical name of its component (None at stack level)."""
    settings: dict[str, Any]
    urn: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "settings": self.settings, "parent": self.parent}


@dataclass
class ComponentNode:
    """A component in one region's tree, with its own resources and nested components."""

    type: str
    name: str
    urn: str
    parent: str | None
    path: str
    """``RegionStack/PostgresCluster`` style path of logical names, unique within the stack."""
    children: list[ComponentNode] = field(default_factory=list)
    resources: list[ResourceView] = field(default_factory=list)

    def walk(self) -> list[ComponentNode]:
        """This node and every nested one, depth first."""
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


@dataclass
class RegionView:
    """Everything registered in one region."""

    region: str
    components: list[ComponentNode]
    """Top-level components (nested ones hang off ``children``)."""
    loose: list[ResourceView]
    """Resources with no component ancestor."""

    def all_components(self) -> list[ComponentNode]:
        return [n for c in self.components for n in c.walk()]


def _is_component(r: RegisteredResource) -> bool:
    return not r.custom and not r.type.startswith("pulumi:")


def _chain(r: RegisteredResource, by_urn: Mapping[str, RegisteredResource]) -> list[RegisteredResource]:
    """Component ancestors of ``r``, outermost first."""
    chain: list[RegisteredResource] = []
    parent = r.parent_urn
    seen: set[str] = set()
    while parent and parent in by_urn and parent not in seen:
        seen.add(parent)
        p = by_urn[parent]
        if _is_component(p):
            chain.append(p)
        parent = p.parent_urn
    return list(reversed(chain))


def assign_regions(resources: tuple[RegisteredResource, ...]) -> dict[str, str]:
    """URN -> region for every resource (own region, else its component's majority region)."""
    by_urn = {r.urn: r for r in resources}
    votes: dict[str, Counter[str]] = {}
    for r in resources:
        if r.region:
            for comp in _chain(r, by_urn):
                votes.setdefault(comp.urn, Counter())[r.region] += 1
    out: dict[str, str] = {}
    for r in resources:
        if r.region:
            out[r.urn] = r.region
            continue
        chain = _chain(r, by_urn)
        candidates = ([r] if _is_component(r) else []) + list(reversed(chain))
        region = GLOBAL
        for comp in candidates:
            if votes.get(comp.urn):
                region = votes[comp.urn].most_common(1)[0][0]
                break
        out[r.urn] = region
    return out


def region_order(regions: set[str], primary: str | None, preferred: Sequence[str] = ()) -> list[str]:
    """Primary region first, then ``preferred`` (e.g. the replica regions in config order), then the
    rest alphabetically, ``global`` last."""
    head: list[str] = []
    for r in (primary, *preferred):
        if r and r in regions and r not in head and r != GLOBAL:
            head.append(r)
    rest = sorted(r for r in regions if r not in head and r != GLOBAL)
    tail = [GLOBAL] if GLOBAL in regions else []
    return head + rest + tail


def build_regions(
    run: ProgramRun, refs: RefIndex, primary: str | None = None, preferred: Sequence[str] = ()
) -> list[RegionView]:
    """Group the run's custom resources by region, then by component tree."""
    by_urn = {r.urn: r for r in run.resources}
    regions = assign_regions(run.resources)
    views: dict[str, RegionView] = {}
    nodes: dict[tuple[str, str], ComponentNode] = {}
    for r in run.resources:
        if not r.custom:
            continue
        region = regions[r.urn]
        view = views.setdefault(region, RegionView(region, [], []))
        chain = _chain(r, by_urn)
        parent_node: ComponentNode | None = None
        path = ""
        for comp in chain:
            path = f"{path}/{comp.name}" if path else comp.name
            node = nodes.get((region, comp.urn))
            if node is None:
                node = ComponentNode(
                    type=comp.type,
                    name=comp.name,
                    urn=comp.urn,
                    parent=parent_node.name if parent_node else None,
                    path=path,
                )
                nodes[(region, comp.urn)] = node
                (parent_node.children if parent_node else view.components).append(node)
            parent_node = node
        rv = ResourceView(
            type=r.type,
            name=r.name,
            region=region,
            parent=chain[-1].name if chain else None,
            settings=summarise(r, refs),
            urn=r.urn,
        )
        (parent_node.resources if parent_node else view.loose).append(rv)
    # Some components register from inside applies, so registration order varies between runs;
    # sort by architectural layer, then name, so the tree, the JSON and the diagram are stable.
    for view in views.values():
        view.loose.sort(key=_resource_key)
        view.components.sort(key=_component_key)
        for node in view.all_components():
            node.resources.sort(key=_resource_key)
            node.children.sort(key=_component_key)
    return [views[name] for name in region_order(set(views), primary, preferred)]


# Components in the order a reader follows the architecture; others follow by type then name.
_COMPONENT_ORDER: tuple[str, ...] = tuple(
    f"commerce:db:{name}"
    for name in (
        "RegionStack", "Network", "RegionKeys", "PostgresCluster", "CrossRegionReplicas",
        "AuroraSecondaryCluster", "ProxyLayer", "CacheLayer", "BackupPlan", "RdsLogGroups",
        "ObservabilityLayer", "AuditTrail",
    )
)  # fmt: skip


def _component_key(c: ComponentNode) -> tuple[int, str, str]:
    rank = _COMPONENT_ORDER.index(c.type) if c.type in _COMPONENT_ORDER else len(_COMPONENT_ORDER)
    return (rank, c.type, c.name)


# Types listed first in a component, in this order; the rest follow by type then name.
_TYPE_PRIORITY = (
    "aws:rds/cluster:Cluster",
    "aws:rds/instance:Instance",
    "aws:rds/clusterInstance:ClusterInstance",
    "aws:rds/proxy:Proxy",
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup",
    "aws:rds/proxyTarget:ProxyTarget",
    "aws:rds/proxyEndpoint:ProxyEndpoint",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup",
    "aws:backup/plan:Plan",
    "aws:backup/vault:Vault",
    "aws:sns/topic:Topic",
)


def _resource_key(r: ResourceView) -> tuple[int, str, str]:
    try:
        rank = _TYPE_PRIORITY.index(r.type)
    except ValueError:
        rank = len(_TYPE_PRIORITY)
    return (rank, r.type if rank == len(_TYPE_PRIORITY) else "", r.name)


def count_by_type(run: ProgramRun) -> dict[str, int]:
    """Registered resources per type token (components included), most frequent first."""
    return count_types(r.type for r in run.resources)


def count_types(types: Iterable[str]) -> dict[str, int]:
    """How often each type token occurs, most frequent first (ties by name)."""
    return dict(sorted(Counter(types).items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class OutputView:
    """One stack export with secrets masked and, for endpoints, what it points at."""

    name: str
    value: Any
    wiring: Any
    """For strings/lists: ``"rds.Proxy 'x' endpoint"`` per value (None when not a known endpoint)."""


def build_outputs(run: ProgramRun, refs: RefIndex) -> list[OutputView]:
    """The stack's exports (masked) with the resource each endpoint-like value points at."""
    out = []
    for name, value in run.outputs.items():
        masked = mask(value, name)
        out.append(OutputView(name, masked, _wiring(masked, refs)))
    return out


def _wiring(value: Any, refs: RefIndex) -> Any:
    """What each endpoint/ARN in an export points at, mirroring the export's shape; None if nothing."""
    if isinstance(value, Mapping):
        mapped = {k: _wiring(v, refs) for k, v in value.items()}
        return mapped if any(v is not None for v in mapped.values()) else None
    if isinstance(value, list):
        items = [_wiring(v, refs) for v in value]
        return items if any(v is not None for v in items) else None
    return refs.describe_endpoint(value)
