"""Render a :class:`~commerce_db.plan.PlanReport` as a readable tree or as one JSON document."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from commerce_db.plan.model import ComponentNode, ResourceView
from commerce_db.plan.report import PlanReport
from commerce_db.policy_rules import Enforcement
from commerce_db.policy_rules.inputs import short_type

WIDTH = 110
JSON_SCHEMA_VERSION = 2
"""Version of the ``--json`` document; 2 added ``schema_version`` and ``resources``."""


class Style:
    """ANSI styling, enabled only when writing to a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def bold(self, t: str) -> str:
        return self._wrap("1", t)

    def dim(self, t: str) -> str:
        return self._wrap("2", t)

    def red(self, t: str) -> str:
        return self._wrap("31", t)

    def yellow(self, t: str) -> str:
        return self._wrap("33", t)

    def cyan(self, t: str) -> str:
        return self._wrap("36", t)

    def green(self, t: str) -> str:
        return self._wrap("32", t)


def _fmt_value(v: Any) -> str:
    if v is True:
        return "yes"
    if v is False:
        return "no"
    if isinstance(v, list):
        return "[" + "; ".join(_fmt_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + "; ".join(f"{k}: {_fmt_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_settings(settings: dict[str, Any]) -> str:
    """``key=value, key=value`` with booleans as yes/no."""
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in settings.items())


def _compact(r: ResourceView) -> str:
    """Settings as text; alarms read as one sentence (there are dozens of them)."""
    st = r.settings
    if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm" and "metric" in st:
        text = f"{st['metric']} {st.get('condition', '')}"
        if st.get("on"):
            text += f" on {st['on']}"
        if st.get("actions"):
            text += f" -> {', '.join(map(str, st['actions']))}"
        return text
    return format_settings(st)


def _resource_lines(r: ResourceView, indent: str, s: Style) -> list[str]:
    head = f"{indent}{s.cyan(short_type(r.type))} {r.name}"
    text = _compact(r)
    if not text:
        return [head]
    plain_len = len(indent) + len(short_type(r.type)) + len(r.name) + 1
    if plain_len + 3 + len(text) <= WIDTH:
        return [f"{head}  {s.dim(text)}"]
    sub = indent + "    "
    wrapped = textwrap.wrap(text, width=WIDTH - len(sub), break_on_hyphens=False)
    return [head] + [f"{sub}{s.dim(w)}" for w in wrapped]


def _component_lines(c: ComponentNode, indent: str, s: Style) -> list[str]:
    lines = [f"{indent}{s.bold(short_type(c.type))} {c.name}"]
    for r in c.resources:
        lines.extend(_resource_lines(r, indent + "  ", s))
    for child in c.children:
        lines.extend(_component_lines(child, indent + "  ", s))
    return lines


def _export_lines(label: str, value: Any, wiring: Any, indent: str, s: Style) -> list[str]:
    """One line per scalar; lists and maps expand to one indented line per item."""
    if isinstance(value, dict) and value:
        lines = [f"{indent}{label}:"]
        for k, v in value.items():
            sub = wiring.get(k) if isinstance(wiring, dict) else None
            lines.extend(_export_lines(str(k), v, sub, indent + "    ", s))
        return lines
    if isinstance(value, list) and value and any(isinstance(v, str) and len(v) > 30 for v in value):
        lines = [f"{indent}{label}:"]
        for i, v in enumerate(value):
            sub = wiring[i] if isinstance(wiring, list) and i < len(wiring) else None
            lines.extend(_export_lines("-", v, sub, indent + "    ", s))
        return lines
    sep = " " if label == "-" else " = "
    line = f"{indent}{label}{sep}{_fmt_value(value)}"
    if isinstance(wiring, str):
        line += s.dim(f"  -> {wiring}")
    return [line]


def render_text(report: PlanReport, color: bool = False) -> str:
    """The human plan: tree by region and component, counts, exports, policy findings, cost."""
    s = Style(color)
    shown = f"{report.total} resources"
    if report.filtered_from is not None:
        shown = (
            f"{report.total} of {report.filtered_from} resources (filtered: counts, exports, policy and "
            "cost below cover the shown resources only)"
        )
    out: list[str] = [
        s.bold(f"commerce-db plan · stack {report.stack} · project {report.project} · {shown}"),
        s.dim("offline: program run under the Pulumi mock engine, no cloud account, no Pulumi CLI"),
        "",
    ]
    for region in report.regions:
        label = " (primary)" if region.region == report.primary_region else ""
        n = len(region.loose) + sum(len(c.resources) for c in region.all_components())
        subtotal = report.cost.per_region.get(region.region)
        money = f", ~{subtotal:,.0f} {report.cost.currency}/month" if subtotal else ""
        out.append(s.bold(s.green(f"Region {region.region}{label}")) + s.dim(f"  ({n} resources{money})"))
        for r in region.loose:
            out.extend(_resource_lines(r, "  ", s))
        for c in region.components:
            out.extend(_component_lines(c, "  ", s))
        out.append("")

    out.append(s.bold("Resources by type"))
    width = max((len(short_type(t)) for t in report.counts), default=10)
    for typ, n in report.counts.items():
        out.append(f"  {short_type(typ):<{width}}  {n:>4}")
    out.append(f"  {'total':<{width}}  {report.total:>4}")
    out.append("")

    out.append(s.bold("Exports") + s.dim("  (secrets masked; -> what an endpoint/ARN points at)"))
    for o in report.outputs:
        out.extend(_export_lines(o.name, o.value, o.wiring, "  ", s))
    out.append("")

    mandatory = [f for f in report.findings if f.enforcement == Enforcement.MANDATORY]
    advisory = [f for f in report.findings if f.enforcement == Enforcement.ADVISORY]
    out.append(s.bold(f"Policy: {len(mandatory)} mandatory violation(s), {len(advisory)} advisory"))
    if not report.findings:
        out.append(f"  {s.green('all policies pass')}")
    for f in report.findings:
        tag = s.red("[mandatory]") if f.enforcement == Enforcement.MANDATORY else s.yellow("[advisory]")
        out.append(f"  {tag} {f.policy}: {f.message}")
    out.append("")

    lint = report.policy_lint
    out.append(
        s.bold(
            f"IAM lint ({lint.tool}): {lint.documents} policy documents, {lint.statements} statements, "
            f"{len(lint.errors)} error(s), {len(lint.findings) - len(lint.errors)} justified exception(s)"
        )
    )
    for lf in lint.errors:
        where = f"{lf.resource}.{lf.input}" + (f" [{lf.sid}]" if lf.sid else f" [statement {lf.statement}]")
        out.append(f"  {s.red('[error]')} {lf.issue} in {where}: {lf.detail}")
    out.append("")

    cost = report.cost
    out.append(s.bold(f"Cost: {cost.label} ({cost.currency}/month)"))
    out.append(f"  {'region':<12} {'category':<16} {'item':<34} {'detail':<46} {'monthly':>10}")
    for line in cost.lines:
        monthly = f"{line.monthly:>10,.2f}" if line.monthly is not None else f"{'?':>10}"
        detail = line.detail if len(line.detail) <= 46 else line.detail[:45] + "…"
        item = line.resource if len(line.resource) <= 34 else line.resource[:33] + "…"
        note = f"  ({line.note})" if line.note else ""
        out.append(f"  {line.region:<12} {line.category:<16} {item:<34} {detail:<46} {monthly}{s.dim(note)}")
    for region_name, total in cost.per_region.items():
        out.append(s.bold(f"  {'subtotal ' + region_name:<110} {total:>10,.2f}"))
    out.append(s.bold(f"  {'TOTAL (estimate)':<110} {cost.monthly_total:>10,.2f}"))
    if cost.unknown:
        out.append(s.yellow(f"  {cost.unknown} line(s) have no price in the table and are not in the total"))
    for chunk in textwrap.wrap(f"The total {cost.caveat()}.", width=WIDTH - 2):
        out.append(s.yellow(f"  {chunk}"))
    for chunk in textwrap.wrap(cost.source, width=WIDTH - 2):
        out.append(s.dim(f"  {chunk}"))
    out.append("")
    verdict = s.red("BLOCKED by mandatory policy") if mandatory else s.green("policy OK")
    out.append(
        s.bold(
            f"Summary: stack {report.stack} · {report.total} resources in {len(report.regions)} region(s) · "
        )
        + verdict
        + s.bold(f" ({len(mandatory)} mandatory, {len(advisory)} advisory) · ~{cost.monthly_total:,.0f} ")
        + s.bold(f"{cost.currency}/month ({cost.label}; excludes usage-priced items listed above)")
    )
    return "\n".join(out) + "\n"


def to_json(report: PlanReport) -> dict[str, Any]:
    """The ``--json`` document (see docs/plan-policy-cost.md for the schema)."""
    regions: dict[str, Any] = {}
    for rv in report.regions:
        comps: dict[str, Any] = {}
        if rv.loose:
            comps["(stack)"] = {
                "type": None,
                "name": None,
                "parent": None,
                "resources": [r.to_json() for r in rv.loose],
            }
        for c in rv.all_components():
            comps[c.path] = {
                "type": c.type,
                "name": c.name,
                "parent": c.parent,
                "resources": [r.to_json() for r in c.resources],
            }
        regions[rv.region] = {"primary": rv.region == report.primary_region, "components": comps}
    from commerce_db.plan.diff import snapshots

    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "stack": report.stack,
        "project": report.project,
        "primary_region": report.primary_region,
        "regions": regions,
        "counts": report.counts,
        "total": report.total,
        "outputs": {o.name: o.value for o in report.outputs},
        "wiring": {o.name: o.wiring for o in report.outputs if o.wiring},
        "policy": [f.to_json() for f in report.findings],
        "policy_lint": report.policy_lint.to_json(),
        "cost": report.cost.to_json(),
        # Every custom resource with its full (masked) inputs: what `plan --diff OLD.json` compares.
        "resources": [r.to_json() for r in snapshots(report.run.resources)],
    }


def render_json(report: PlanReport) -> str:
    """The ``--json`` document; whole numbers print as integers (``"port": 5432``)."""
    return json.dumps(whole_numbers_as_ints(to_json(report)), indent=2, sort_keys=False, default=str) + "\n"


def whole_numbers_as_ints(value: Any) -> Any:
    """``value`` with every integral float made an int. Pulumi's wire format (protobuf ``Struct``)
    carries every number as a double, so ``allocatedStorage: 1000`` arrives as ``1000.0``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [whole_numbers_as_ints(v) for v in value]
    return value


# -- the default summary -------------------------------------------------------------------------

_ALARM_TYPES = ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm")


def _component_facts(c: ComponentNode, severity: dict[str, str]) -> str:
    """A few words on what a component holds (classes, node types, alarm counts)."""
    rs = [r for n in c.walk() for r in n.resources]
    facts: list[str] = []
    dbs = [r.settings for r in rs if r.type == "aws:rds/instance:Instance"]
    for role in ("primary", "read replica", "cross-region replica"):
        same = [d for d in dbs if d.get("role") == role]
        if same:
            cls = same[0].get("class", "?")
            multi = " Multi-AZ" if same[0].get("multiAz") else ""
            facts.append(f"{len(same)} x {role} {cls}{multi}" if len(same) > 1 else f"{role} {cls}{multi}")
    for r in rs:
        if r.type == "aws:elasticache/replicationGroup:ReplicationGroup":
            st = r.settings
            if st.get("nodeType", "inherited") == "inherited":
                facts.append("Global Datastore secondary (inherits the primary's nodes)")
            else:
                facts.append(
                    f"{st.get('engine', 'redis')} {st.get('nodes', '?')} x {st.get('nodeType', '?')}"
                )
        elif r.type == "aws:rds/cluster:Cluster":
            facts.append(f"Aurora cluster {r.name}")
    alarms = [r for r in rs if r.type in _ALARM_TYPES]
    if alarms:
        pages = sum(1 for r in alarms if severity.get(r.urn) == "page")
        facts.append(f"{len(alarms)} alarms ({pages} page)")
    return ", ".join(facts)


def render_summary(report: PlanReport, *, details_path: str | None = None, color: bool = False) -> str:
    """The default human plan: a line per component per region, alarms collapsed, policy, cost.

    Prod fits in about 40 lines; ``--details`` prints the full tree (:func:`render_text`).
    """
    s = Style(color)
    regions = len(report.regions)
    severity = {r.urn: str((r.inputs.get("tags") or {}).get("severity", "")) for r in report.run.resources}
    out = [
        s.bold(f"commerce-db plan · stack {report.stack} · {report.total} resources in {regions} region(s)"),
        s.dim("offline: program run under the Pulumi mock engine (no cloud account, no Pulumi CLI)"),
        "",
    ]
    for region in report.regions:
        label = " (primary)" if region.region == report.primary_region else ""
        n = len(region.loose) + sum(len(c.resources) for c in region.all_components())
        subtotal = report.cost.per_region.get(region.region)
        money = f" · ~{subtotal:,.0f} {report.cost.currency}/month" if subtotal else ""
        out.append(s.bold(s.green(f"{region.region}{label}")) + s.dim(f"  {n} resources{money}"))
        for top in region.components:
            nodes = top.children if top.type == "commerce:db:RegionStack" and top.children else [top]
            for c in nodes:
                count = sum(len(x.resources) for x in c.walk())
                facts = _component_facts(c, severity)
                line = f"  {short_type(c.type):<22} {c.name:<20} {count:>3}"
                out.append(line + (f"  {s.dim(facts)}" if facts else ""))
    out.append("")

    alarms = [r for r in report.run.resources if r.type in _ALARM_TYPES]
    if alarms:
        pages = sum(1 for r in alarms if r.inputs.get("tags", {}).get("severity") == "page")
        families: dict[str, int] = {}
        for r in alarms:
            tail = r.name.split("-obs-", 1)[-1]
            family = tail.split("-", 1)[0] if r.type == _ALARM_TYPES[0] else "composite"
            families[family] = families.get(family, 0) + 1
        fam = ", ".join(f"{k} {v}" for k, v in sorted(families.items()))
        out.append(
            s.bold(f"Alarms: {len(alarms)}")
            + f" ({pages} page, {len(alarms) - pages} ticket) · by family: {fam}"
        )
    mandatory = [f for f in report.findings if f.enforcement == Enforcement.MANDATORY]
    advisory = [f for f in report.findings if f.enforcement == Enforcement.ADVISORY]
    verdict = s.red("BLOCKED") if mandatory else s.green("OK")
    out.append(s.bold("Policy: ") + verdict + f" ({len(mandatory)} mandatory, {len(advisory)} advisory)")
    for f in report.findings[:8]:
        tag = s.red("[mandatory]") if f.enforcement == Enforcement.MANDATORY else s.yellow("[advisory]")
        out.append(f"  {tag} {f.policy}: {textwrap.shorten(f.message, WIDTH - 30)}")
    if len(report.findings) > 8:
        out.append(f"  ... {len(report.findings) - 8} more (--details)")
    cost = report.cost
    out.append(
        s.bold(f"Cost: ~{cost.monthly_total:,.0f} {cost.currency}/month")
        + f" ({cost.label}; {len(cost.lines)} lines)"
    )
    for chunk in textwrap.wrap(f"The total {cost.caveat()}.", width=WIDTH - 2):
        out.append(s.dim(f"  {chunk}"))
    out.append("")
    where = f"full plan written to {details_path}; " if details_path else ""
    out.append(s.dim(f"{where}--details prints the tree (--component/--type filter it), --json everything"))
    return "\n".join(out) + "\n"


def filter_report(report: PlanReport, *, components: list[str], types: list[str]) -> PlanReport:
    """``report`` with the tree cut to components whose short type or name contains one of
    ``components`` and resources whose type contains one of ``types`` (empty: keep all)."""
    import dataclasses

    from commerce_db.plan.model import RegionView, count_types

    if not components and not types:
        return report

    def keep_resource(r: ResourceView) -> bool:
        return not types or any(t.lower() in f"{r.type} {short_type(r.type)}".lower() for t in types)

    def keep_component(c: ComponentNode) -> bool:
        return not components or any(
            t.lower() in f"{short_type(c.type)} {c.name}".lower() for t in components
        )

    def cut(c: ComponentNode) -> ComponentNode | None:
        children = [x for x in (cut(ch) for ch in c.children) if x is not None]
        resources = [r for r in c.resources if keep_resource(r)] if keep_component(c) else []
        if not resources and not children:
            return None
        return dataclasses.replace(c, children=children, resources=resources)

    regions = []
    for rv in report.regions:
        comps = [x for x in (cut(c) for c in rv.components) if x is not None]
        loose = [r for r in rv.loose if keep_resource(r)] if not components else []
        if comps or loose:
            regions.append(RegionView(rv.region, comps, loose))
    shown: list[ResourceView | ComponentNode] = [r for rv in regions for r in rv.loose]
    for rv in regions:
        for c in rv.all_components():
            shown += [c, *c.resources]
    names = {r.name for r in shown if isinstance(r, ResourceView)}  # containers carry no cost or finding
    return dataclasses.replace(
        report,
        regions=regions,
        counts=count_types(r.type for r in shown),  # components included, as in the whole stack's
        total=len(shown),
        outputs=[o for o in report.outputs if _points_at(o.wiring, names)],
        findings=[f for f in report.findings if f.resource in names],
        cost=report.cost.restricted_to(names),
        filtered_from=report.total,
    )


def _points_at(wiring: Any, names: set[str]) -> bool:
    """Whether an export's wiring (``"rds.Proxy 'x' endpoint"``, nested like the export) names one
    of ``names``."""
    if isinstance(wiring, dict):
        return any(_points_at(v, names) for v in wiring.values())
    if isinstance(wiring, list):
        return any(_points_at(v, names) for v in wiring)
    return isinstance(wiring, str) and any(f"'{n}'" in wiring for n in names)
