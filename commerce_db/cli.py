"""``commerce-db`` console script: one sub-command per module, registered lazily.

Each command lives in its own module exposing ``register(subparsers) -> None``;
it adds its parser and sets ``func`` (returning an exit code) via ``set_defaults``.
Modules are imported only when listed here, so ``commerce-db --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Order is the order shown in --help.
_COMMAND_MODULES: tuple[str, ...] = (
    "commerce_db.commands.plan",
    "commerce_db.commands.demo",
    "commerce_db.commands.bench",
    "commerce_db.commands.stack",
    "commerce_db.commands.failover",
    "commerce_db.commands.components",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="commerce-db",
        description="Database tier of a high-traffic e-commerce platform: plan, demo, bench, operate.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command not built (yet); its own import errors still surface
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``commerce-db`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
