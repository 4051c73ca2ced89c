"""``commerce-db stack preview|up|refresh|destroy|outputs STACK``: the Automation API from a shell.

Progress goes to stderr as it streams; the result goes to stdout (``--json`` for tools).
Exit codes: 0 success, 1 the operation failed (or Pulumi CLI missing), 2 bad input
(unknown stack, invalid config, missing confirmation) -- nothing was changed in that case.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from commerce_db import automation as cdb_auto
from commerce_db.plan.stackfile import StackFileError, apply_overrides

_OPERATIONS = ("preview", "up", "refresh", "destroy", "outputs")


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
        sub = ops.add_parser(op, help=f"pulumi {op} for STACK")
        sub.add_argument("stack", metavar="STACK", help="stack name, e.g. prod or staging")
        sub.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
        if op == "outputs":
            sub.set_defaults(func=_run_outputs)
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
                "--expect-no-changes", action="store_true", help="fail if the update would change anything"
            )
        if op in ("preview", "up"):
            sub.add_argument(
                "--policy-pack", action="append", default=[], metavar="PATH",
                help="run this policy pack (e.g. policy/) with the operation; repeatable",
            )  # fmt: skip
        if op == "preview":
            sub.add_argument("--diff", action="store_true", help="show detailed property diffs")
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
        settings = cdb_auto.StackSettings(
            stack=base.stack, config=config, secrets=base.secrets, project=base.project
        )
        common: dict[str, Any] = {"on_event": _progress(args.quiet), "message": args.message}
        if args.operation == "preview":
            result = cdb_auto.preview(settings, diff=args.diff, policy_packs=args.policy_pack, **common)
        elif args.operation == "up":
            result = cdb_auto.up(
                settings, expect_no_changes=args.expect_no_changes, policy_packs=args.policy_pack, **common
            )
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
