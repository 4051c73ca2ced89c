"""Stack-file loading and --config overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from commerce_db.plan.stackfile import (
    StackFileError,
    apply_overrides,
    available_stacks,
    find_project_dir,
    load_stack,
)
from tests.unit.plan.conftest import FIXTURE_DIR


def test_load_stack_reads_structured_config_and_project_defaults() -> None:
    loaded = load_stack("prod", FIXTURE_DIR)
    assert loaded.project == "commerce-db"
    assert loaded.config["aws:region"] == "us-east-1"
    assert loaded.config["commerce-db:backupRetention"] == 14
    assert loaded.config["commerce-db:postgres"] == {"allocatedStorage": 200}
    # Pulumi.yaml declares replicaRegion with a default; the stack file does not set it.
    assert loaded.config["commerce-db:replicaRegion"] == "eu-west-1"


def test_unknown_stack_lists_available_stacks() -> None:
    with pytest.raises(StackFileError) as exc:
        load_stack("qa", FIXTURE_DIR)
    assert "unknown stack 'qa'" in str(exc.value)
    assert "prod, staging" in str(exc.value)
    assert available_stacks(FIXTURE_DIR) == ["prod", "staging"]


def test_overrides_prefix_json_and_nested_paths() -> None:
    base = {
        "commerce-db:postgres": {"allocatedStorage": 200, "parameters": {"a": 1}},
        "aws:region": "us-east-1",
    }
    out = apply_overrides(
        base,
        [
            "backupRetention=7",  # prefix omitted, JSON number
            "commerce-db:publiclyAccessible=true",  # explicit prefix, JSON bool
            "postgres.instanceClass=db.r7g.xlarge",  # nested path, not JSON -> string
            "postgres.parameters.workMem=64",
            "aws:region=eu-west-1",
            'replicaRegions=["us-west-2"]',
            "replicaRegions[1]=eu-west-1",
        ],
    )
    assert out["commerce-db:backupRetention"] == 7
    assert out["commerce-db:publiclyAccessible"] is True
    assert out["commerce-db:postgres"] == {
        "allocatedStorage": 200,
        "instanceClass": "db.r7g.xlarge",
        "parameters": {"a": 1, "workMem": 64},
    }
    assert out["aws:region"] == "eu-west-1"
    assert out["commerce-db:replicaRegions"] == ["us-west-2", "eu-west-1"]
    assert base["commerce-db:postgres"] == {"allocatedStorage": 200, "parameters": {"a": 1}}  # not mutated


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("noequals", "expected KEY=VALUE"),
        ("=5", "expected KEY=VALUE"),
        ("postgres.allocatedStorage.deeper=1", "cannot set 'deeper' inside a non-object value"),
        ("list[5]=x", "has no element 5"),
    ],
)
def test_bad_overrides_name_the_problem(override: str, fragment: str) -> None:
    with pytest.raises(StackFileError) as exc:
        apply_overrides({"commerce-db:postgres": {"allocatedStorage": 1}, "commerce-db:list": []}, [override])
    assert fragment in str(exc.value)


def test_find_project_dir(tmp_path: Path) -> None:
    assert find_project_dir(FIXTURE_DIR) == FIXTURE_DIR.resolve()
    assert find_project_dir(cwd=FIXTURE_DIR) == FIXTURE_DIR.resolve()
    # Elsewhere: falls back to the repository root next to the installed components package.
    assert (find_project_dir(cwd=tmp_path) / "Pulumi.yaml").is_file()
    with pytest.raises(StackFileError, match=r"no Pulumi\.yaml"):
        find_project_dir(tmp_path)


def test_overrides_keep_strings_strings() -> None:
    base = {"commerce-db:postgres": {"engineVersion": "16.6", "port": 5432}, "commerce-db:name": "x"}
    out = apply_overrides(
        base,
        [
            "postgres.engineVersion=17.2",
            "postgres.port=6432",
            "cache.engineVersion=7.1",
            "name=42",
            'tag="7"',
        ],
    )
    assert out["commerce-db:postgres"] == {"engineVersion": "17.2", "port": 6432}
    assert out["commerce-db:cache"] == {"engineVersion": "7.1"}  # *Version keys stay strings
    assert out["commerce-db:name"] == "42"  # the stack file holds a string there
    assert out["commerce-db:tag"] == "7"  # JSON-quoted forces a string
