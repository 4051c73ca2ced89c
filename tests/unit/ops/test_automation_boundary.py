"""The CLI boundary (``open_stack`` and the operations through it) driven against a stand-in
``pulumi`` executable that records each invocation (argv, working directory, stdin).

The real Pulumi CLI is not installed here (``test_automation_cli.py`` covers it where it is);
this checks what our code asks the SDK to run: config is set on every open, secrets never
appear in a command line, and relative paths are resolved against the caller's directory.
"""

from __future__ import annotations

import gc
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from commerce_db import automation as cdb_auto
from commerce_db.automation.boundary import open_stack

FAKE_PULUMI = r"""#!{python}
import json, os, sys
args = [a for a in sys.argv[1:] if a != "--non-interactive"]
stdin = ""
if args[:2] == ["config", "set"]:
    stdin = sys.stdin.read()
with open({log!r}, "a") as f:
    f.write(json.dumps({{"cwd": os.getcwd(), "args": args, "stdin": stdin}}) + "\n")
def opt(name):
    return args[args.index(name) + 1] if name in args else None
if args[:1] == ["version"]:
    print("v3.200.0")
elif args[:1] == ["whoami"]:
    print(json.dumps({{"user": "me", "url": "file://~"}}))
elif args[:1] in (["preview"], ["up"]):
    if "--save-plan" in args:
        open(opt("--save-plan"), "w").write("{{}}")
    log = opt("--event-log")
    if log:
        with open(log, "a") as f:
            summary = {{"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": {{"same": 1}}}}
            f.write(json.dumps({{"sequence": 0, "timestamp": 0, "summaryEvent": summary}}) + "\n")
            f.write(json.dumps({{"sequence": 1, "timestamp": 0, "cancelEvent": {{}}}}) + "\n")
elif args[:2] == ["stack", "history"]:
    print(json.dumps([{{"kind": "update", "startTime": "2026-01-01T00:00:00.000Z", "message": "",
                       "environment": {{}}, "config": {{}}, "result": "succeeded", "version": 1,
                       "resourceChanges": {{"same": 1}}}}]))
elif args[:2] == ["stack", "output"]:
    password = "{secret}" if "--show-secrets" in args else "[secret]"
    print(json.dumps({{"conn": {{"host": "db", "password": password}}, "region": "us-east-1"}}))
elif args[:2] == ["stack", "select"] and "missing" in args:
    sys.stderr.write("error: no stack named 'missing' found\n")
    sys.exit(255)
"""

SECRET = "s3cr3t-token-value"


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.jsonl"
    exe = bin_dir / "pulumi"
    exe.write_text(FAKE_PULUMI.format(python=sys.executable, log=str(log), secret=SECRET))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PULUMI_SKIP_UPDATE_CHECK", "true")
    return log


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _settings() -> cdb_auto.StackSettings:
    return cdb_auto.StackSettings(
        stack="staging",
        config={"commerce-db:primaryRegion": "us-east-1"},
        secrets={"commerce-db:pagerToken": SECRET},
    )


@pytest.mark.parametrize("create", [True, False])
def test_config_is_set_on_every_open_and_secrets_only_through_stdin(fake_cli: Path, create: bool) -> None:
    open_stack(_settings(), create=create)
    calls = _calls(fake_cli)
    commands = [c["args"] for c in calls]
    assert any(
        a[:2] == ["config", "set-all"] and "commerce-db:primaryRegion=us-east-1" in " ".join(a)
        for a in commands
    ), commands
    secret_sets = [c for c in calls if c["args"][:2] == ["config", "set"]]
    assert [c["stdin"] for c in secret_sets] == [SECRET]
    assert "--secret" in secret_sets[0]["args"] and "commerce-db:pagerToken" in secret_sets[0]["args"]
    assert all(SECRET not in arg for c in calls for arg in c["args"])


def test_temporary_workspace_is_removed_with_the_handle(fake_cli: Path) -> None:
    handle = open_stack(_settings(), create=False)
    work_dir = Path(handle.workspace.work_dir)  # type: ignore[attr-defined]
    assert work_dir.is_dir()
    del handle
    gc.collect()
    assert not work_dir.exists()


def test_relative_plan_and_policy_paths_resolve_against_the_callers_directory(
    fake_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = tmp_path / "caller"
    (caller / "policy").mkdir(parents=True)
    monkeypatch.chdir(caller)
    cdb_auto.preview(
        _settings(), plan_file="plan.json", policy_packs=["policy"], program=lambda: None, validate=None
    )
    assert (caller / "plan.json").is_file()  # not inside the SDK's temporary workspace
    preview_call = next(c for c in _calls(fake_cli) if c["args"][:1] == ["preview"])
    args = preview_call["args"]
    assert args[args.index("--policy-pack") + 1] == str(caller / "policy")
    assert Path(preview_call["cwd"]) != caller  # the CLI really runs elsewhere


def test_a_secret_nested_in_a_structured_output_stays_masked(fake_cli: Path) -> None:
    outputs = cdb_auto.outputs(_settings())
    assert outputs["conn"].secret and SECRET not in json.dumps(outputs["conn"].to_dict())
    assert outputs["region"].value == "us-east-1" and not outputs["region"].secret
    assert all("--show-secrets" not in c["args"] for c in _calls(fake_cli))


def test_temporary_workspace_is_removed_when_opening_fails(
    fake_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with pytest.raises(cdb_auto.StackNotFoundError):
        open_stack(cdb_auto.StackSettings(stack="missing"), create=False)
    assert list((tmp_path / "tmp").glob("commerce-db-automation-*")) == []
