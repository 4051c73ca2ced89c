"""checkov, the independent scanner, over prod and staging exported as Terraform plan JSON.

``./dev test`` installs the checkov pinned in pyproject.toml (extra "scan") into ``.venv-scan``.
Two scans: with the repository's ``.checkov.yaml`` (0 failed checks), and without its skips, where
every failure must be one the skip's stated reason names. A skip cannot hide a new finding.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from commerce_db.plan import plan_stack
from commerce_db.plan.tfplan import write_tfplan

REPO = Path(__file__).resolve().parents[3]
STACKS = ("prod", "staging")


def _checkov() -> str:
    for candidate in (os.environ.get("CHECKOV"), str(REPO / ".venv-scan" / "bin" / "checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("checkov")
    if found:
        return found
    pytest.fail("checkov is not installed: ./dev test (or ./dev scan STACK) installs it into .venv-scan")


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tfplan")
    return {s: write_tfplan(plan_stack(s, project_dir=REPO).run, out / f"{s}.json") for s in STACKS}


def _scan(plans: dict[str, Path], *extra: str, cwd: Path) -> list[dict[str, Any]]:
    cmd = [_checkov(), "--framework", "terraform_plan", "-o", "json", "--skip-download", *extra]
    for path in plans.values():
        cmd += ["-f", str(path)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert proc.stdout.strip(), proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    return doc if isinstance(doc, list) else [doc]


def _failures(reports: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(check id, resource address, plan file) of every failed check."""
    return [
        (f["check_id"], f["resource"], Path(f["file_path"]).stem)
        for rep in reports
        for f in rep["results"]["failed_checks"]
    ]


def test_prod_and_staging_pass_with_the_repository_config(plans: dict[str, Path]) -> None:
    reports = _scan(plans, "--config-file", str(REPO / ".checkov.yaml"), cwd=REPO)
    assert _failures(reports) == []
    passed = sum(rep["summary"]["passed"] for rep in reports)
    assert passed > 500  # checks really ran over both stacks
    checked_types = {f["resource"].split(".")[0] for rep in reports for f in rep["results"]["passed_checks"]}
    # checkov recognised the Terraform types of the stateful resources (a wrong type has no checks).
    assert {
        "aws_db_instance",
        "aws_elasticache_replication_group",
        "aws_kms_key",
        "aws_s3_bucket",
        "aws_secretsmanager_secret",
        "aws_backup_vault",
        "aws_cloudtrail",
        "aws_sns_topic",
        "aws_cloudwatch_log_group",
        "aws_security_group",
    } <= checked_types


def _is_secondary_cache(resource: str) -> bool:
    return resource.startswith("aws_elasticache_replication_group.") and not resource.startswith(
        ("aws_elasticache_replication_group.use1-", "aws_elasticache_replication_group.use2-")
    )


def _db_replica_or_staging(resource: str, stack: str) -> bool:
    # Slot 1 of the writer's region (use1 in prod) is the writer; every other instance is a replica.
    return resource.startswith("aws_db_instance.") and (
        resource != "aws_db_instance.use1-pg-1" or stack == "staging"
    )


# What each skip's reason in .checkov.yaml says it covers: (resource address, plan file) -> bool.
EXPLAINED: dict[str, Callable[[str, str], bool]] = {
    "CKV_AWS_157": _db_replica_or_staging,
    "CKV_AWS_293": lambda r, s: s == "staging" and r.startswith("aws_db_instance."),
    "CKV_AWS_338": lambda r, s: s == "staging" and r.startswith("aws_cloudwatch_log_group."),
    "CKV_AWS_29": lambda r, s: _is_secondary_cache(r),
    "CKV_AWS_30": lambda r, s: _is_secondary_cache(r),
    "CKV_AWS_31": lambda r, s: _is_secondary_cache(r),
    "CKV_AWS_191": lambda r, s: _is_secondary_cache(r),
    "CKV2_AWS_57": lambda r, s: r.startswith("aws_secretsmanager_secret.") and r.endswith("cache-auth-token"),
    "CKV2_AWS_5": lambda r, s: r.endswith(("-proxy-sg", "-pg-rotation-sg")),
    "CKV_AWS_252": lambda r, s: r.startswith("aws_cloudtrail."),
    "CKV2_AWS_10": lambda r, s: r.startswith("aws_cloudtrail."),
    "CKV_AWS_116": lambda r, s: r.startswith("aws_lambda_function.") and r.endswith("-db-bootstrap"),
    "CKV_AWS_50": lambda r, s: r.startswith("aws_lambda_function.") and r.endswith("-db-bootstrap"),
    "CKV_AWS_272": lambda r, s: r.startswith("aws_lambda_function.") and r.endswith("-db-bootstrap"),
    "CKV_AWS_18": lambda r, s: r.startswith("aws_s3_bucket.") and r.endswith("-audit-bucket"),
    "CKV2_AWS_62": lambda r, s: r.startswith("aws_s3_bucket.") and r.endswith("-audit-bucket"),
    "CKV_AWS_144": lambda r, s: r.startswith("aws_s3_bucket.") and r.endswith("-audit-bucket"),
}


def test_every_skip_fails_only_where_its_reason_says(plans: dict[str, Path], tmp_path: Path) -> None:
    # cwd without a .checkov.yaml: checkov reads one from the working directory.
    failures = _failures(_scan(plans, cwd=tmp_path))
    unexplained = [
        (check, res, stack)
        for check, res, stack in failures
        if check not in EXPLAINED or not EXPLAINED[check](res, stack)
    ]
    assert unexplained == []
    # The Multi-AZ / deletion-protection / retention / encryption checks did pass where it matters.
    failed = {(c, r) for c, r, _ in failures}
    assert ("CKV_AWS_157", "aws_db_instance.use1-pg-1") not in failed
    assert not any(c == "CKV_AWS_29" and "use1" in r for c, r in failed)


def test_every_skip_in_the_config_has_a_reason() -> None:
    text = (REPO / ".checkov.yaml").read_text()
    config = yaml.safe_load(text)
    assert set(config["skip-check"]) == set(EXPLAINED)
    lines = text.splitlines()
    for check in config["skip-check"]:
        i = next(n for n, line in enumerate(lines) if re.fullmatch(rf"\s*-\s*{check}\s*", line))
        # The comment block above the entry (possibly shared by consecutive entries) is the reason.
        j = i - 1
        while j >= 0 and re.fullmatch(r"\s*-\s*CKV\w+\s*", lines[j]):
            j -= 1
        reason = []
        while j >= 0 and lines[j].strip().startswith("#"):
            reason.append(lines[j])
            j -= 1
        assert len(" ".join(reason).split()) >= 12, f"{check} has no stated reason"
