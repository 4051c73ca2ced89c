"""Render a planned stack as a Mermaid (``.mmd``/``.md``) or Graphviz (``.dot``) diagram.

Regions become subgraphs holding their components; the nodes are the parts that matter for the
architecture (databases, proxies, caches, backup vaults, alarm topics) and the edges are the
wiring read from the registered inputs: primary -> replicas (incl. cross-region), proxy ->
primary, app -> proxy/cache/replicas, cache primary -> Global Datastore secondaries, backup
vault -> DR vault copy, alarms -> SNS topic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from commerce_db.mock_engine import ProgramRun, RegisteredResource
from commerce_db.plan.model import assign_regions, region_order
from commerce_db.plan.refs import RefIndex
from commerce_db.policy_rules import inputs as rt
from commerce_db.policy_rules.inputs import (
    is_cache_secondary,
    is_cross_region_replica,
    is_rds_replica,
    items,
    strings,
    truthy,
)

_SHOWN = {
    rt.RDS_INSTANCE,
    rt.RDS_CLUSTER,
    rt.RDS_CLUSTER_INSTANCE,
    rt.RDS_PROXY,
    rt.RDS_PROXY_ENDPOINT,
    rt.CACHE_GROUP,
    rt.SNS_TOPIC,
    rt.BACKUP_VAULT,
}
APP = "app"


@dataclass
class Node:
    id: str
    label: str
    kind: str  # db | proxy | cache | topic | vault | alarms | app
    region: str | None
    components: tuple[tuple[str, str], ...] = ()
    """(urn, label) of component ancestors, outermost first."""


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    label: str = ""
    dashed: bool = False


@dataclass
class Graph:
    """A renderer-neutral view of the stack's architecture."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    primary_region: str | None = None

    def edge(self, src: str | None, dst: str | None, label: str = "", dashed: bool = False) -> None:
        if src and dst and src != dst:
            e = Edge(src, dst, label, dashed)
            if e not in self.edges:
                self.edges.append(e)


def _node_id(name: str, used: set[str]) -> str:
    base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
    nid, i = base, 2
    while nid in used:
        nid, i = f"{base}_{i}", i + 1
    used.add(nid)
    return nid


def _label(r: RegisteredResource) -> str:
    inp = r.inputs
    if r.type == rt.RDS_INSTANCE:
        role = (
            "cross-region replica"
            if is_cross_region_replica(inp)
            else "replica"
            if is_rds_replica(inp)
            else "primary"
        )
        extra = " Multi-AZ" if truthy(inp.get("multiAz")) else ""
        return f"{r.name}<br/>PostgreSQL {role}<br/>{inp.get('instanceClass') or ''}{extra}"
    if r.type == rt.RDS_CLUSTER:
        return f"{r.name}<br/>Aurora PostgreSQL cluster"
    if r.type == rt.RDS_CLUSTER_INSTANCE:
        return f"{r.name}<br/>Aurora instance {inp.get('instanceClass') or ''}"
    if r.type == rt.RDS_PROXY:
        return f"{r.name}<br/>RDS Proxy{' (TLS)' if truthy(inp.get('requireTls')) else ''}"
    if r.type == rt.RDS_PROXY_ENDPOINT:
        return f"{r.name}<br/>proxy endpoint {inp.get('targetRole') or ''}"
    if r.type == rt.CACHE_GROUP:
        if is_cache_secondary(inp):
            return f"{r.name}<br/>Global Datastore secondary"
        return f"{r.name}<br/>{inp.get('engine') or 'redis'} primary<br/>{inp.get('nodeType') or ''}"
    if r.type == rt.SNS_TOPIC:
        return f"{r.name}<br/>SNS alarm topic"
    if r.type == rt.BACKUP_VAULT:
        return f"{r.name}<br/>Backup vault"
    return r.name


_KIND = {
    rt.RDS_INSTANCE: "db",
    rt.RDS_CLUSTER: "db",
    rt.RDS_CLUSTER_INSTANCE: "db",
    rt.RDS_PROXY: "proxy",
    rt.RDS_PROXY_ENDPOINT: "proxy",
    rt.CACHE_GROUP: "cache",
    rt.SNS_TOPIC: "topic",
    rt.BACKUP_VAULT: "vault",
}


def build_graph(
    run: ProgramRun,
    refs: RefIndex | None = None,
    primary_region: str | None = None,
    region_preference: Iterable[str] = (),
) -> Graph:
    """Extract the architecture graph from a mocked run."""
    refs = refs or RefIndex(run.resources)
    by_urn = {r.urn: r for r in run.resources}
    regions = assign_regions(run.resources)
    g = Graph(primary_region=primary_region)
    used: set[str] = set()
    ids: dict[str, str] = {}  # urn -> node id

    def components_of(r: RegisteredResource) -> tuple[tuple[str, str], ...]:
        chain = []
        parent = r.parent_urn
        while parent and parent in by_urn:
            p = by_urn[parent]
            if not p.custom and not p.type.startswith("pulumi:"):
                chain.append((p.urn, f"{rt.short_type(p.type)} {p.name}"))
            parent = p.parent_urn
        return tuple(reversed(chain))

    for r in run.resources:
        if r.custom and r.type in _SHOWN:
            nid = _node_id(r.name, used)
            ids[r.urn] = nid
            g.nodes[nid] = Node(nid, _label(r), _KIND[r.type], regions[r.urn], components_of(r))

    def nid_of(value: object, prefer: Iterable[str]) -> str | None:
        target = refs.resolve(value, prefer)
        return ids.get(target.urn) if target is not None else None

    g.nodes[APP] = Node(APP, "application<br/>ECS / EKS / Lambda", "app", None)
    alarm_groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[RegisteredResource]] = {}
    for r in run.resources:
        inp = r.inputs
        me = ids.get(r.urn)
        if r.type == rt.RDS_INSTANCE and is_rds_replica(inp):
            src = nid_of(inp.get("replicateSourceDb"), [rt.RDS_INSTANCE])
            xr = is_cross_region_replica(inp)
            g.edge(src, me, "cross-region replica" if xr else "replica", dashed=xr)
            g.edge(APP, me, "reads", dashed=True)
        elif r.type == rt.RDS_CLUSTER_INSTANCE:
            g.edge(nid_of(inp.get("clusterIdentifier"), [rt.RDS_CLUSTER]), me, "instance")
        elif r.type == rt.RDS_PROXY_TARGET:
            proxy = nid_of(inp.get("dbProxyName"), [rt.RDS_PROXY])
            target = nid_of(
                inp.get("dbInstanceIdentifier") or inp.get("dbClusterIdentifier"),
                [rt.RDS_INSTANCE, rt.RDS_CLUSTER],
            )
            g.edge(proxy, target, "pooled writes")
        elif r.type == rt.RDS_PROXY:
            g.edge(APP, me, "writes (TLS)")
        elif r.type == rt.RDS_PROXY_ENDPOINT:
            g.edge(nid_of(inp.get("dbProxyName"), [rt.RDS_PROXY]), me, str(inp.get("targetRole") or ""))
        elif r.type == rt.CACHE_GROUP:
            if is_cache_secondary(inp):
                glob = refs.resolve(inp.get("globalReplicationGroupId"), [rt.CACHE_GLOBAL])
                prim = (
                    nid_of(glob.inputs.get("primaryReplicationGroupId"), [rt.CACHE_GROUP]) if glob else None
                )
                g.edge(prim, me, "Global Datastore", dashed=True)
                g.edge(APP, me, "cache reads (local)", dashed=True)
            else:
                g.edge(APP, me, "cache")
        elif r.type == rt.BACKUP_PLAN:
            for rule in items(inp.get("rules")):
                vault = nid_of(rule.get("targetVaultName"), [rt.BACKUP_VAULT])
                for copy in items(rule.get("copyActions")):
                    g.edge(
                        vault,
                        nid_of(copy.get("destinationVaultArn"), [rt.BACKUP_VAULT]),
                        "copy to DR",
                        dashed=True,
                    )
        elif r.type == rt.BACKUP_SELECTION:
            plan = refs.resolve(inp.get("planId"), [rt.BACKUP_PLAN])
            vaults = (
                [
                    nid_of(rule.get("targetVaultName"), [rt.BACKUP_VAULT])
                    for rule in items(plan.inputs.get("rules"))
                ]
                if plan
                else []
            )
            for arn in strings(inp.get("resources")):
                for v in vaults:
                    g.edge(nid_of(arn, [rt.RDS_INSTANCE, rt.RDS_CLUSTER]), v, "daily backup", dashed=True)
        elif r.type == rt.METRIC_ALARM:
            alarm_groups.setdefault((regions[r.urn], components_of(r)), []).append(r)

    for (region, comps), alarms in alarm_groups.items():
        nid = _node_id(f"alarms_{region}_{comps[-1][1] if comps else 'stack'}", used)
        g.nodes[nid] = Node(nid, f"CloudWatch alarms ({len(alarms)})", "alarms", region, comps)
        topics = {nid_of(a, [rt.SNS_TOPIC]) for al in alarms for a in strings(al.inputs.get("alarmActions"))}
        for t in sorted(x for x in topics if x):
            g.edge(nid, t, "notify")

    present = {n.region for n in g.nodes.values() if n.region}
    g.regions = region_order(present, primary_region, tuple(region_preference))
    # Leaf registration is concurrent: sort nodes and edges so the file is stable between runs.
    kinds = ("app", "proxy", "db", "cache", "vault", "topic", "alarms")
    g.nodes = dict(sorted(g.nodes.items(), key=lambda kv: (kinds.index(kv[1].kind), kv[1].label)))
    g.edges.sort(key=lambda e: (e.src != APP, e.src, e.dst, e.label))
    return g


# ---------------------------------------------------------------------------------------------------
_MERMAID_SHAPES = {
    "db": ('[("', '")]'),
    "proxy": ('[["', '"]]'),
    "cache": ('[("', '")]'),
    "topic": ('>"', '"]'),
    "vault": ('[/"', '"/]'),
    "alarms": ('["', '"]'),
    "app": ('(["', '"])'),
}


class _Ids:
    """Short, stable subgraph ids (``g1``, ``g2``...) for long keys such as URNs."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def __call__(self, key: str) -> str:
        if key not in self._ids:
            self._ids[key] = f"g{len(self._ids) + 1}"
        return self._ids[key]


def _tree(g: Graph, region: str) -> tuple[dict[tuple[str, ...], list[Node]], list[tuple[str, ...]]]:
    """Nodes per component path within ``region`` and the ordered list of paths."""
    groups: dict[tuple[str, ...], list[Node]] = {}
    for n in g.nodes.values():
        if n.region == region:
            groups.setdefault(tuple(u for u, _ in n.components), []).append(n)
    return groups, sorted(groups)


def to_mermaid(g: Graph, title: str = "") -> str:
    """Mermaid ``flowchart LR`` source."""
    out = ["flowchart LR"]
    if title:
        out.insert(0, f"%% {title}")

    def node_line(n: Node, indent: str) -> str:
        left, right = _MERMAID_SHAPES.get(n.kind, ('["', '"]'))
        return f"{indent}{n.id}{left}{n.label}{right}"

    out.append(node_line(g.nodes[APP], "  "))
    sid = _Ids()
    for region in g.regions:
        suffix = " (primary)" if region == g.primary_region else ""
        out.append(f'  subgraph {sid(region)}["{region}{suffix}"]')
        out.append("    direction TB")
        labels = {u: lbl for n in g.nodes.values() if n.region == region for u, lbl in n.components}
        groups, _ = _tree(g, region)
        _emit_mermaid(out, groups, (), labels, region, "    ", node_line, sid)
        out.append("  end")
    for e in g.edges:
        arrow = "-.->" if e.dashed else "-->"
        label = f'|"{e.label}"|' if e.label else ""
        out.append(f"  {e.src} {arrow}{label} {e.dst}")
    out.append("  classDef db fill:#dbeafe,stroke:#1d4ed8")
    out.append("  classDef cache fill:#fee2e2,stroke:#b91c1c")
    out.append("  classDef proxy fill:#dcfce7,stroke:#15803d")
    out.append("  classDef ops fill:#f3f4f6,stroke:#6b7280")
    for kind, cls in (
        ("db", "db"),
        ("cache", "cache"),
        ("proxy", "proxy"),
        ("topic", "ops"),
        ("vault", "ops"),
        ("alarms", "ops"),
    ):
        ids = [n.id for n in g.nodes.values() if n.kind == kind]
        if ids:
            out.append(f"  class {','.join(ids)} {cls}")
    return "\n".join(out) + "\n"


def _emit_mermaid(out, groups, prefix, labels, region, indent, node_line, sid) -> None:  # type: ignore[no-untyped-def]
    for n in groups.get(prefix, []):
        out.append(node_line(n, indent))
    children = sorted({p[len(prefix)] for p in groups if len(p) > len(prefix) and p[: len(prefix)] == prefix})
    for child in children:
        path = (*prefix, child)
        out.append(f'{indent}subgraph {sid(region + child)}["{labels.get(child, child)}"]')
        _emit_mermaid(out, groups, path, labels, region, indent + "  ", node_line, sid)
        out.append(f"{indent}end")


def to_dot(g: Graph, title: str = "") -> str:
    """Graphviz ``digraph`` source (regions and components as clusters)."""
    shapes = {
        "db": "cylinder",
        "cache": "cylinder",
        "proxy": "box3d",
        "topic": "cds",
        "vault": "folder",
        "alarms": "note",
        "app": "oval",
    }
    out = [
        f'digraph "{title or "commerce-db"}" {{',
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
    ]

    def node_line(n: Node, indent: str) -> str:
        label = n.label.replace("<br/>", "\\n")
        return f'{indent}{n.id} [label="{label}", shape={shapes.get(n.kind, "box")}];'

    out.append(node_line(g.nodes[APP], "  "))
    sid = _Ids()
    for region in g.regions:
        suffix = " (primary)" if region == g.primary_region else ""
        out.append(f"  subgraph cluster_{sid(region)} {{")
        out.append(f'    label="{region}{suffix}";')
        labels = {u: lbl for n in g.nodes.values() if n.region == region for u, lbl in n.components}
        groups, _ = _tree(g, region)
        _emit_dot(out, groups, (), labels, region, "    ", node_line, sid)
        out.append("  }")
    for e in g.edges:
        attrs = [f'label="{e.label}"'] if e.label else []
        if e.dashed:
            attrs.append("style=dashed")
        out.append(f"  {e.src} -> {e.dst}{' [' + ', '.join(attrs) + ']' if attrs else ''};")
    out.append("}")
    return "\n".join(out) + "\n"


def _emit_dot(out, groups, prefix, labels, region, indent, node_line, sid) -> None:  # type: ignore[no-untyped-def]
    for n in groups.get(prefix, []):
        out.append(node_line(n, indent))
    children = sorted({p[len(prefix)] for p in groups if len(p) > len(prefix) and p[: len(prefix)] == prefix})
    for child in children:
        out.append(f"{indent}subgraph cluster_{sid(region + child)} {{")
        out.append(f'{indent}  label="{labels.get(child, child)}";')
        _emit_dot(out, groups, (*prefix, child), labels, region, indent + "  ", node_line, sid)
        out.append(f"{indent}}}")


def render(g: Graph, path: str | Path, title: str = "") -> str:
    """Diagram source for ``path``'s extension: ``.dot``/``.gv`` Graphviz, ``.md`` fenced Mermaid,
    anything else Mermaid."""
    suffix = Path(path).suffix.lower()
    if suffix in (".dot", ".gv"):
        return to_dot(g, title)
    text = to_mermaid(g, title)
    if suffix == ".md":
        return f"```mermaid\n{text}```\n"
    return text


def write_diagram(
    run: ProgramRun,
    path: str | Path,
    *,
    primary_region: str | None = None,
    region_preference: Iterable[str] = (),
    title: str = "",
) -> Path:
    """Build the graph of ``run`` and write it to ``path`` (format from the extension)."""
    g = build_graph(run, primary_region=primary_region, region_preference=region_preference)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render(g, p, title))
    return p
