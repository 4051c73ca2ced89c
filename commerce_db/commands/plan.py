"""``commerce-db plan STACK``: the offline plan of a stack (no cloud account, no Pulumi CLI).

Exit codes: 0 plan built, no mandatory policy violated and no IAM lint error; 2 unknown stack,
malformed ``--config``, invalid config (a wrong type, an unknown key or a value beyond an AWS
limit: every error of the run, each naming its key), or an unreadable ``--diff`` file; 3 a
mandatory policy is violated (a valid value that is a bad choice, e.g. no deletion protection
in prod; the document/tree is still printed); 4 ``--diff`` found a stateful resource replaced
or deleted and ``--allow-replace`` was not given; 5 parliament reports an error on a policy
document that is not a justified exception (``commerce_db/policy_rules/lint_exceptions.yaml``;
the document/tree is still printed).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_POLICY = 3
EXIT_REPLACE = 4
EXIT_LINT = 5
DIAGRAM_SUFFIXES = (".mmd", ".md", ".dot", ".gv")
"""What --diagram writes: Mermaid (.mmd, .md fenced) or Graphviz (.dot, .gv) source."""


def register(subparsers: Any) -> None:
    """Add the ``plan`` sub-command."""
    p = subparsers.add_parser(
        "plan",
        help="offline plan of a stack: resource tree, policy findings, cost estimate",
        description=(
            "Run the stack's Pulumi program under Pulumi's mock engine (no cloud account, no Pulumi CLI) "
            "and print the resources by region and component, counts by type, exports, policy findings "
            "and an approximate monthly cost. Exit 2 on invalid config, 3 on a mandatory policy violation, "
            "5 on an IAM policy lint error (parliament)."
        ),
    )
    p.add_argument(
        "stack", metavar="STACK", help="stack name, e.g. prod or staging (reads Pulumi.<STACK>.yaml)"
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON document with everything (schema_version 2)"
    )
    p.add_argument(
        "--details",
        action="store_true",
        help="print the full tree by region and component instead of the summary",
    )
    p.add_argument(
        "--component",
        action="append",
        default=[],
        metavar="TEXT",
        help="only components whose type or name contains TEXT (repeatable; implies --details)",
    )
    p.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        metavar="TEXT",
        help="with the tree: only resources whose type contains TEXT, e.g. rds.Instance (implies --details)",
    )
    p.add_argument(
        "--config",
        "-c",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=(
            "override a config value for this run; KEY may omit 'commerce-db:' and may be a path "
            "(postgres.instanceClass); VALUE is parsed as JSON when it parses, else a string. Repeatable."
        ),
    )
    p.add_argument(
        "--tfplan",
        metavar="PATH",
        help=(
            "also write the resources as Terraform plan JSON (format 1.2) for scanners: "
            "checkov -f PATH --config-file .checkov.yaml"
        ),
    )
    p.add_argument(
        "--diff",
        metavar="OLD.json",
        help=(
            "compare with an earlier 'plan STACK --json' document: + create, ~ update, -/+ replace, "
            "- delete per resource with the inputs that changed; exit 4 if a stateful resource "
            "(database, cache, key, bucket, vault, secret) is replaced or deleted"
        ),
    )
    p.add_argument(
        "--allow-replace",
        action="store_true",
        help="with --diff: accept replacing or deleting stateful resources (exit 0)",
    )
    p.add_argument("--diagram", metavar="PATH", help="also write a diagram (.mmd/.md Mermaid, .dot Graphviz)")
    p.add_argument(
        "--dir", metavar="PROJECT_DIR", help="project directory holding Pulumi.yaml (default: auto)"
    )
    p.add_argument("--program", metavar="MODULE:FUNC", help=argparse.SUPPRESS)  # alternative program (tests)
    p.set_defaults(func=run_plan)


def _resolve_program(spec: str | None) -> Callable[[], Any] | None:
    if not spec:
        return None
    module, _, attr = spec.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # console scripts do not put CWD on sys.path
    return getattr(importlib.import_module(module), attr or "run")  # type: ignore[no-any-return]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    key = getattr(exc, "key", None)
    if key and str(key) not in text:
        text = f"{key}: {text}"
    return text or exc.__class__.__name__


def run_plan(args: argparse.Namespace) -> int:
    """Build and print the plan; returns the exit code."""
    from commerce_db.diagram import write_diagram
    from commerce_db.plan import StackFileError, plan_stack
    from commerce_db.plan.render import filter_report, render_json, render_summary, render_text

    if args.diagram and Path(args.diagram).suffix.lower() not in DIAGRAM_SUFFIXES:
        print(
            f"commerce-db plan: --diagram {args.diagram}: only diagram sources are written "
            f"({', '.join(DIAGRAM_SUFFIXES)}); for an image write .dot and run "
            f"'dot -Tpng x.dot -o x.png' (Graphviz), or .mmd and render it with Mermaid",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        report = plan_stack(
            args.stack,
            project_dir=args.dir,
            overrides=args.config,
            program=_resolve_program(args.program),
        )
    except StackFileError as exc:
        print(f"commerce-db plan: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as exc:  # components.config.ConfigError and Args validation
        return _config_rejected(args, exc)

    for warning in report.warnings:  # valid config that must not linger: a warning, not an exit code
        print(f"commerce-db plan: warning: {warning}", file=sys.stderr)
    changes = None
    if args.diff:
        from commerce_db.plan.diff import DiffInputError, diff, load_old, render_diff, snapshots

        try:
            old = load_old(args.diff)
        except DiffInputError as exc:
            print(f"commerce-db plan: --diff {exc}", file=sys.stderr)
            return EXIT_CONFIG
        changes = diff(old, snapshots(report.run.resources))
        if args.json:
            _print_json({"stack": args.stack, "diff": args.diff, "changes": [c.to_json() for c in changes]})
        else:
            sys.stdout.write(render_diff(changes, old_label=args.diff, stack=args.stack))
    elif args.json:
        sys.stdout.write(render_json(report))
    elif args.details or args.component or args.types:
        unmatched = _unmatched_filter(report, args.component, args.types)
        if unmatched:
            print(f"commerce-db plan: {unmatched}", file=sys.stderr)
            return EXIT_CONFIG
        shown = filter_report(report, components=args.component, types=args.types)
        sys.stdout.write(render_text(shown, color=sys.stdout.isatty()))
    else:
        details = _write_details(report)
        sys.stdout.write(render_summary(report, details_path=details, color=sys.stdout.isatty()))
    if args.tfplan:
        from commerce_db.plan.tfplan import write_tfplan

        tf_path = write_tfplan(report.run, args.tfplan)
        print(f"Terraform plan JSON written to {tf_path}", file=sys.stderr if args.json else sys.stdout)
    if args.diagram:
        path = write_diagram(
            report.run,
            args.diagram,
            primary_region=report.primary_region,
            region_preference=[r.region for r in report.regions],
            title=f"commerce-db stack {report.stack}",
        )
        print(f"diagram written to {path}", file=sys.stderr if args.json else sys.stdout)
    if report.blocked:
        first = next(f for f in report.findings if f.enforcement.value == "mandatory")
        print(
            f"commerce-db plan: mandatory policy violated ({first.policy}): {first.message}",
            file=sys.stderr,
        )
        return EXIT_POLICY
    lint_errors = report.policy_lint.errors
    if lint_errors:
        first_error = lint_errors[0]
        print(
            f"commerce-db plan: {len(lint_errors)} IAM lint error(s) ({report.policy_lint.tool}); first: "
            f"{first_error.issue} in {first_error.resource}.{first_error.input}: {first_error.detail}",
            file=sys.stderr,
        )
        return EXIT_LINT
    destructive = [c for c in changes or [] if c.destructive]
    if destructive and not args.allow_replace:
        names = ", ".join(f"{c.name} ({c.action})" for c in destructive)
        print(
            f"commerce-db plan: --diff: stateful resource(s) would be replaced or deleted: {names}; "
            "re-run with --allow-replace if that is intended",
            file=sys.stderr,
        )
        return EXIT_REPLACE
    return EXIT_OK


def _unmatched_filter(report: Any, components: list[str], types: list[str]) -> str | None:
    """Why a --component/--type filter shows nothing (None when every filter matches something):
    an empty tree that exits 0 would look like a stack without such resources."""
    import difflib

    from commerce_db.plan.render import short_type

    names = sorted({f"{short_type(c.type)} {c.name}" for rv in report.regions for c in rv.all_components()})
    kinds = sorted({short_type(r.type) for r in report.run.resources if r.custom})
    for wanted, known, flag in ((components, names, "--component"), (types, kinds, "--type")):
        for text in wanted:
            if any(text.lower() in k.lower() for k in known) or (
                flag == "--type" and any(text.lower() in r.type.lower() for r in report.run.resources)
            ):
                continue
            close = difflib.get_close_matches(text, known, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            return f"{flag} {text!r} matches nothing in stack {report.stack}; {hint}known: {', '.join(known)}"
    return None


def _write_details(report: Any) -> str | None:
    """The full tree to ``out/plan-<stack>.txt`` under the current directory (None if unwritable)."""
    from commerce_db.plan.render import render_text

    path = Path("out") / f"plan-{report.stack}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_text(report))
    except OSError:
        return None
    return str(path)


def _config_rejected(args: argparse.Namespace, exc: ValueError) -> int:
    """Exit 2 for invalid config, every error of the run on its own line.

    The config layer parses the stack file and checks types and AWS limits only; whether a valid
    value is a good choice (deletion protection in prod, at least 7 days of backups) is judged by
    the policies on the plan, never here, so one rule is reported by one layer with one message.
    """
    errors = list(getattr(exc, "errors", None) or [exc])
    if args.json:
        entries = [{"key": getattr(e, "key", None), "message": _one_line(e)} for e in errors]
        _print_json({"stack": args.stack, "error": entries[0], "errors": entries})
    if len(errors) == 1:
        print(
            f"commerce-db plan: invalid config for stack {args.stack!r}: {_one_line(errors[0])}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    print(
        f"commerce-db plan: invalid config for stack {args.stack!r} ({len(errors)} errors):", file=sys.stderr
    )
    for e in errors:
        print(f"  {_one_line(e)}", file=sys.stderr)
    return EXIT_CONFIG


def _print_json(doc: dict[str, Any]) -> None:
    import json

    from commerce_db.plan.render import whole_numbers_as_ints

    sys.stdout.write(json.dumps(whole_numbers_as_ints(doc), indent=2) + "\n")
