"""``commerce-db components schema``: the multi-language package schema the plugin serves.

Prints the Pulumi package schema (JSON) inferred from the wrapper components exactly as the plugin
answers the CLI's ``GetSchema`` call, so other teams can review it, diff it between releases, or
generate an SDK from the file (``pulumi package gen-sdk schema.json --language typescript``).
Exit codes: 0 printed, 1 the schema could not be inferred (the error names the component).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``components`` command with its ``schema`` sub-command."""
    parser = subparsers.add_parser(
        "components",
        help="the components as a multi-language Pulumi package (schema)",
        description="The commerce-db components served to TypeScript, Go, C#, Java and YAML programs.",
    )
    subs = parser.add_subparsers(dest="components_command", metavar="SUBCOMMAND", required=True)
    schema = subs.add_parser(
        "schema",
        help="print the package schema (JSON) the plugin serves",
        description="Print the Pulumi package schema of the `commerce` multi-language package.",
    )
    schema.add_argument("--output", type=Path, metavar="FILE", help="write the schema to FILE instead")
    schema.add_argument(
        "--version", dest="schema_version", metavar="VERSION",
        help="package version to put in the schema (default: the installed commerce-db version)",
    )  # fmt: skip
    schema.set_defaults(func=_run_schema)


def _run_schema(args: argparse.Namespace) -> int:
    from commerce_db_components import multilang

    try:
        document = multilang.schema(args.schema_version)
    except Exception as exc:  # the analyzer's errors name the component and field at fault
        print(f"commerce-db components schema: cannot infer the schema: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(document.get('resources', {}))} components)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
