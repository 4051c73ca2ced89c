"""``commerce-db failover promote STACK --region REGION [--write] [--json]``.

Shows the config change (as a diff of ``Pulumi.<STACK>.yaml``) and the ordered operator
runbook for promoting REGION's cross-region replica to primary. Without ``--write`` nothing
is changed; with it the stack file is rewritten (a ``.bak`` copy is kept). Exit codes:
0 ok, 2 the failover is not possible as asked (message says why; nothing changed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from commerce_db.failover import FailoverError, FailoverPlan, plan_failover, write_failover


def register(subparsers: Any) -> None:
    """Add ``failover promote``."""
    parser = subparsers.add_parser(
        "failover",
        help="failover runbook: promote a cross-region replica region to primary",
        description="Failover runbook as code. Computes, validates and (with --write) applies the stack "
        "config change, and prints the ordered operator steps with the stack's identifiers.",
    )
    ops = parser.add_subparsers(dest="failover_op", metavar="OPERATION", required=True)
    promote = ops.add_parser("promote", help="promote REGION (a current replica region) to primary for STACK")
    promote.add_argument("stack", metavar="STACK", help="stack name, e.g. prod or staging")
    promote.add_argument("--region", required=True, help="replica region to promote, e.g. us-west-2")
    promote.add_argument(
        "--write", action="store_true", help="rewrite Pulumi.<STACK>.yaml (keeps a .bak copy)"
    )
    promote.add_argument(
        "--drop-old-primary",
        action="store_true",
        help="remove the old primary region from the stack instead of demoting it to a replica region "
        "(regional outage: it cannot host replicas now)",
    )
    promote.add_argument(
        "--planned",
        action="store_true",
        help="planned switchover while every region is healthy: fence the old writer, wait until nothing "
        "is left to replicate, switch (no data loss); keeps the old primary as a replica region",
    )
    promote.add_argument(
        "--dr-region", help="backup copy region after failover (default: chosen automatically)"
    )
    promote.add_argument(
        "--no-plan",
        action="store_true",
        help="do not build the program under mocks (no targeted URNs, no expected plan in the runbook)",
    )
    promote.add_argument("--json", action="store_true", help="print the plan as JSON")
    promote.add_argument(
        "--dir", type=Path, default=None, metavar="PROJECT_DIR",
        help="Pulumi project directory (default: CWD if it has Pulumi.yaml, else the checkout)",
    )  # fmt: skip
    promote.set_defaults(func=_promote)
    from commerce_db.commands import reconcile  # failover reconcile: its own module (issue 15)

    reconcile.register(ops)


def _print_human(plan: FailoverPlan, written: str | None) -> None:
    print(f"Failover of stack {plan.stack!r}: primary {plan.old_primary} -> {plan.new_primary}")
    kept = "demoted to a replica region" if plan.old_primary_kept else "dropped from the stack"
    kept += " (planned switchover)" if plan.planned else " (outage path)"
    print(f"  old primary {plan.old_primary}: {kept}")
    if plan.global_datastore:
        print(f"  Global Datastore: its primary member moves to {plan.new_primary} (the global group stays)")
    for change in plan.changes:
        print(f"  {change.key}: {json.dumps(change.old)} -> {json.dumps(change.new)}")
    print()
    print(plan.diff, end="")
    if not plan.comments_preserved:
        print("(note: the file layout could not be edited in place; it is re-dumped and comments are lost)")
    print()
    if written:
        print(f"Wrote {plan.path} (previous version: {written})")
    else:
        print(f"Dry run: {plan.path.name} unchanged; add --write to apply the config change.")
    print()
    headings = {
        "outage": f"Outage runbook: every step works with {plan.old_primary} unreachable (the stack update "
        "also needs IAM's control plane for the new rotation and bootstrap functions; see its step)",
        "after-recovery": f"After {plan.old_primary} recovers (not needed to restore service)",
        "planned": f"Planned switchover {plan.old_primary} -> {plan.new_primary} "
        "(all regions healthy, no data loss)",
    }
    print(f"(names from: {plan.identifiers.source})")
    phase = None
    for number, step in enumerate(plan.steps, 1):
        if step.phase != phase:
            phase = step.phase
            print()
            print(headings.get(phase, phase))
        print(f"{number:>2}. {step.title}")
        for command in step.commands:
            print(f"      $ {command}")
        if step.detail:
            print(f"      {step.detail}")


def _promote(args: argparse.Namespace) -> int:
    try:
        plan = plan_failover(
            args.stack,
            args.region,
            project_dir=args.dir,
            keep_old_primary=not args.drop_old_primary,
            planned=args.planned,
            dr_region=args.dr_region,
            with_identifiers=not args.no_plan,
        )
        written = str(write_failover(plan)) if args.write else None
    except FailoverError as exc:
        print(f"commerce-db failover promote: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**plan.to_dict(), "written": args.write, "backup": written}, indent=2, default=str))
    else:
        _print_human(plan, written)
    return 0
