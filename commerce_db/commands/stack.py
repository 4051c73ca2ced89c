"""``commerce-db stack preview|up|drift|refresh|cancel|destroy|outputs STACK``: the Automation API
from a shell.

Progress goes to stderr as it streams; the result goes to stdout (``--json`` for tools).
Exit codes: 0 success (``drift``: no drift), 1 the operation failed (or Pulumi CLI missing),
2 bad input or refused (unknown stack, invalid config, missing confirmation, ``--config`` on a
protected stack's ``up``, ``up`` of a protected stack without ``--plan``, ``destroy`` of a
protected stack) -- nothing was changed in that case; 3 ``drift`` found differences.

A reviewed prod update:  ``stack preview prod --save-plan plan.json`` -> review ->
``stack up prod --plan plan.json`` (refuses anything the plan does not contain).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from commerce_db import automation as cdb_auto
from commerce_db.plan.stackfile import StackFileError, apply_overrides

_OPERATIONS = ("preview", "up", "drift", "refresh", "cancel", "destroy", "outputs")
_HELP = {
    "preview": "pulumi preview for STACK (never writes; --save-plan for a reviewed up)",
    "up": "pulumi up for STACK (protected stacks: only --plan from a reviewed preview, no --config)",
    "drift": "drift check: preview --refresh --expect-no-changes (never writes); exit 3 on drift",
    "refresh": "pulumi refresh for STACK (adopts what exists in AWS into the state)",
    "cancel": "cancel the update running on STACK (a stale lock); refresh afterwards",
    "destroy": "pulumi destroy for STACK (refused on protected stacks)",
    "outputs": "the stack's outputs (secrets masked)",
}


def register(subparsers: Any) -> None:
    """Add the ``stack`` command and its operation sub-commands."""
    parser = subparsers.add_parser(
        "stack",
        help="run preview/up/refresh/destroy/outputs on a stack via the Pulumi Automation API",
        description=(
            "Drive a stack through the Pulumi Automation API with the program inline and config taken "
            "from Pulumi.<STACK>.yaml (+ --config overrides, --secret-env secrets). Needs the pulumi CLI."
        ),
    )
    ops = parser.add_subparsers(dest="operation", metavar="OPERATION", required=True)
    for op in _OPERATIONS:
        sub = ops.add_parser(op, help=_HELP[op])
        sub.add_argument("stack", metavar="STACK", help="stack name, e.g. prod or staging")
        sub.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
        if op == "outputs":
            sub.set_defaults(func=_run_outputs)
            continue
        if op == "cancel":
            sub.add_argument("--yes", metavar="STACK_AGAIN", help="repeat the stack name to confirm cancel")
            sub.set_defaults(func=_run_cancel)
            continue
        sub.add_argument(
            "--dir", type=Path, default=None, metavar="PROJECT_DIR",
            help="Pulumi project directory (default: CWD if it has Pulumi.yaml, else the checkout)",
        )  # fmt: skip
        sub.add_argument(
            "--config", action="append", default=[], metavar="KEY=VALUE",
            help="override a config value for this run, as in `commerce-db plan` (KEY may be a path like "
            "postgres.instanceClass; VALUE parsed as JSON if it is JSON); repeatable",
        )  # fmt: skip
        sub.add_argument(
            "--secret-env", action="append", default=[], metavar="KEY=ENVVAR",
            help="set KEY as secret config from environment variable ENVVAR (never on the command line)",
        )  # fmt: skip
        sub.add_argument("--message", help="message recorded with the update")
        sub.add_argument("--quiet", action="store_true", help="do not stream progress to stderr")
        if op == "destroy":
            sub.add_argument("--yes", metavar="STACK_AGAIN", help="repeat the stack name to confirm destroy")
        if op == "up":
            sub.add_argument(
                "--plan", metavar="PATH", type=Path,
                help="update plan saved by 'stack preview --save-plan': refuse anything it does not contain",
            )  # fmt: skip
        if op in ("preview", "up"):
            sub.add_argument("--refresh", action="store_true", help="read the cloud's state first")
        if op != "destroy":
            sub.add_argument(
                "--wait-for-lock", type=float, default=0.0, metavar="SECONDS",
                help="if another update holds the stack's lock, retry for up to SECONDS (default: 0, fail)",
            )  # fmt: skip
        if op in ("preview", "up"):
            sub.add_argument(
                "--policy-pack", action="append", default=[], metavar="PATH",
                help="run this policy pack (e.g. policy/) with the operation; repeatable",
            )  # fmt: skip
        if op == "preview":
            sub.add_argument("--diff", action="store_true", help="show detailed property diffs")
            sub.add_argument(
                "--save-plan", metavar="PATH", type=Path,
                help="save the update plan for 'stack up --plan PATH'",
            )  # fmt: skip
        sub.set_defaults(func=_run_operation)


def _secrets_from_env(pairs: list[str]) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for pair in pairs:
        key, sep, env_name = pair.partition("=")
        if not sep or not key or not env_name:
            raise cdb_auto.SettingsError(f"--secret-env expects KEY=ENVVAR, got {pair!r}")
        value = os.environ.get(env_name)
        if not value:
            raise cdb_auto.SettingsError(
                f"--secret-env {key}: environment variable {env_name} is unset or empty"
            )
        secrets[key] = value
    return secrets


def _progress(quiet: bool) -> cdb_auto.ProgressCallback | None:
    if quiet:
        return None

    def show(event: cdb_auto.ProgressEvent) -> None:
        line = cdb_auto.format_event(event)
        if line:
            print(line, file=sys.stderr, flush=True)

    return show


def _print_result(result: cdb_auto.OperationResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
        return
    print(f"{result.operation} {result.stack}: {result.result} ({result.duration_seconds:.1f}s)")
    print(f"  changes: {result.changes}")
    for key, out in result.outputs.items():
        print(f"  {key}: {out.value}")


def _run_operation(args: argparse.Namespace) -> int:
    try:
        base = cdb_auto.load_stack_settings(
            args.stack, project_dir=args.dir, secrets=_secrets_from_env(args.secret_env)
        )
        # Same --config semantics as `commerce-db plan` (dotted paths into structured values).
        config = apply_overrides(dict(base.config), list(args.config), project=base.project)
        changed = {k for k in set(config) | set(base.config) if config.get(k) != base.config.get(k)}
        settings = dataclasses.replace(base, config=config, overridden=base.overridden | frozenset(changed))
        common: dict[str, Any] = {"on_event": _progress(args.quiet), "message": args.message}
        if args.operation != "destroy":
            common["lock_wait_seconds"] = args.wait_for_lock
        if args.operation == "preview":
            result = cdb_auto.preview(
                settings,
                diff=args.diff,
                policy_packs=args.policy_pack,
                refresh=args.refresh,
                plan_file=args.save_plan,
                **common,
            )
        elif args.operation == "up":
            result = cdb_auto.up(
                settings, plan_file=args.plan, refresh=args.refresh, policy_packs=args.policy_pack, **common
            )
        elif args.operation == "drift":
            try:
                result = cdb_auto.drift_check(settings, **common)
            except cdb_auto.DriftDetectedError as exc:
                counts = ", ".join(f"{n} to {op}" for op, n in exc.changes.items() if n)
                print(
                    f"commerce-db stack drift: stack {settings.stack!r} has drifted: {counts}",
                    file=sys.stderr,
                )
                if args.json:
                    print(json.dumps({"stack": settings.stack, "drifted": True, "changes": exc.changes}))
                return 3
        elif args.operation == "refresh":
            result = cdb_auto.refresh(settings, **common)
        else:
            if args.yes != settings.stack:
                raise cdb_auto.SettingsError(
                    f"destroy deletes every resource of stack {settings.stack!r}; confirm with "
                    f"--yes {settings.stack} (nothing was changed)"
                )
            result = cdb_auto.destroy(settings, confirm_stack=args.yes, **common)
    except (cdb_auto.SettingsError, StackFileError) as exc:
        print(f"commerce-db stack {args.operation}: {exc}", file=sys.stderr)
        return 2
    except cdb_auto.AutomationError as exc:
        print(f"commerce-db stack {args.operation}: {exc}", file=sys.stderr)
        return 1
    _print_result(result, args.json)
    return 0 if result.succeeded else 1


def _run_cancel(args: argparse.Namespace) -> int:
    if args.yes != args.stack:
        print(
            f"commerce-db stack cancel: cancelling the update running on {args.stack!r} may leave resources "
            f"pending; confirm with --yes {args.stack} (nothing was changed)",
            file=sys.stderr,
        )
        return 2
    try:
        cdb_auto.cancel(cdb_auto.StackSettings(stack=args.stack))
    except cdb_auto.SettingsError as exc:
        print(f"commerce-db stack cancel: {exc}", file=sys.stderr)
        return 2
    except cdb_auto.AutomationError as exc:
        print(f"commerce-db stack cancel: {exc}", file=sys.stderr)
        return 1
    print(f"cancelled the update on {args.stack}; run 'commerce-db stack refresh {args.stack}' next")
    return 0


def _run_outputs(args: argparse.Namespace) -> int:
    try:
        outs = cdb_auto.outputs(cdb_auto.StackSettings(stack=args.stack))  # reading needs no config
    except cdb_auto.SettingsError as exc:
        print(f"commerce-db stack outputs: {exc}", file=sys.stderr)
        return 2
    except cdb_auto.AutomationError as exc:
        print(f"commerce-db stack outputs: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: v.to_dict() for k, v in outs.items()}, indent=2, sort_keys=True, default=str))
    else:
        for key, out in outs.items():
            print(f"{key}: {out.value}")
    return 0
