"""``commerce-db`` console script: one sub-command per module, registered lazily.

Each command lives in its own module exposing ``register(subparsers) -> None``;
it adds its parser and sets ``func`` (returning an exit code) via ``set_defaults``.
Modules are imported only when listed here, so ``commerce-db --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Order is the order shown in --help.
_COMMAND_MODULES: tuple[str, ...] = (
    "commerce_db.commands.plan",
    "commerce_db.commands.demo",
    "commerce_db.commands.bench",
    "commerce_db.commands.stack",
    "commerce_db.commands.failover",
    "commerce_db.commands.local",
    "commerce_db.commands.components",
)


# Third-party modules the tool needs -> the extra that installs them. The base install carries no
# dependencies (pyproject.toml), so a components-only install ([infra]) has a console script whose
# commands would otherwise fail with a bare ModuleNotFoundError.
_EXTRA_OF_MODULE: dict[str, str] = {
    "yaml": "cli",
    "pulumi": "infra",
    "pulumi_aws": "infra",
    "pulumi_random": "infra",
    "asyncpg": "data",
    "redis": "data",
    "boto3": "data",
    "botocore": "data",
}


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """The install line for the extra that provides ``exc``'s module, or None if none does."""
    root = (exc.name or "").split(".")[0]
    if root not in _EXTRA_OF_MODULE:
        return None
    return (
        f"commerce-db: module {root!r} is not installed; the command-line tool needs the [cli] extra "
        "(pip install 'commerce-db[cli]'; it includes [infra] and [data])"
    )


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command registered."""
    from commerce_db import __version__

    parser = argparse.ArgumentParser(
        prog="commerce-db",
        description="Database tier of a high-traffic e-commerce platform: plan, demo, bench, operate.",
    )
    parser.add_argument("--version", action="version", version=f"commerce-db {__version__}")
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
    """Entry point of the ``commerce-db`` console script; returns the process exit code.

    A closed stdout (``commerce-db plan prod | head``) ends the command quietly with the
    conventional exit code 141 instead of a ``BrokenPipeError`` traceback.
    """
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at devnull so that cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
