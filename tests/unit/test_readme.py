"""The README stays a front door: short, with the two quick-start commands; reference lives in docs/."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_is_at_most_20000_characters() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text) <= 20_000, f"README.md has {len(text)} characters; move reference material to docs/"


def test_quick_start_is_exactly_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Quick start\n+```bash\n(.*?)```", text, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["./dev run", "./dev test"]
