"""Attribute docstrings of the Args dataclasses, for doc tables and the "every field documented" tests.

Python keeps no runtime record of attribute docstrings (the string literal after a field), so they
are read from the class source with :mod:`ast`.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> attribute docstring ('' when missing) for a dataclass ``cls``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc = ""
            if (
                isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                doc = " ".join(nxt.value.value.split())
            docs[node.target.id] = doc
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in docs.items() if k in names}


def undocumented(cls: type) -> list[str]:
    """Fields whose docstring states neither a ``Default:`` nor that the field is ``Required``."""
    return [name for name, doc in field_docs(cls).items() if "Default:" not in doc and "Required" not in doc]


def markdown_table(cls: type) -> str:
    """A Markdown ``| field | type | description |`` table of ``cls``'s fields."""
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    rows = ["| Field | Type | Description |", "| --- | --- | --- |"]
    for name, doc in field_docs(cls).items():
        typ = _escape(str(hints[name]))
        rows.append(f"| `{name}` | `{typ}` | {_escape(doc)} |")
    return "\n".join(rows)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    """``python -m components._fielddocs module:Class ...`` prints each class's Markdown table."""
    import importlib
    import sys

    for spec in argv if argv is not None else sys.argv[1:]:
        module, _, name = spec.partition(":")
        print(markdown_table(getattr(importlib.import_module(module), name)))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
