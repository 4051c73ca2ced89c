"""parliament over every policy document of the plan (issue 9): prod and staging lint clean, and
the linter catches what the review found (a DescribeKey grant under an encryption-context
condition), which makes the plan exit non-zero."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from commerce_db.plan import plan_stack
from commerce_db.policy_rules.iam_lint import lint, load_exceptions

ROOT = Path(__file__).resolve().parents[3]


def resource(type_: str, name: str, **inputs: Any) -> SimpleNamespace:
    return SimpleNamespace(type=type_, name=name, region="us-east-1", inputs=inputs, state={})


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_real_stacks_lint_clean(stack: str) -> None:
    report = plan_stack(stack, project_dir=ROOT)
    lint_report = report.policy_lint
    assert lint_report.documents >= 15 and lint_report.statements >= 40
    types = {f.type for f in lint_report.findings}
    assert lint_report.errors == [], [(f.resource, f.sid, f.issue, f.detail) for f in lint_report.errors]
    assert types <= {"aws:kms/key:Key"}  # only the justified key-policy exceptions remain


def test_finding_1_is_an_error() -> None:
    """The review's finding 1, as registered before the fix."""
    old = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CloudTrailWritesLogFiles",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": "arn:aws:cloudtrail:*:1:trail/*"
                    }
                },
            }
        ],
    }
    report = lint([resource("aws:kms/key:Key", "k", policy=json.dumps(old))])
    issues = {(f.issue, f.sid) for f in report.errors}
    assert ("UNKNOWN_CONDITION_FOR_ACTION", "CloudTrailWritesLogFiles") in issues


def test_trust_policies_are_linted_with_the_role_as_resource() -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    assert lint([resource("aws:iam/role:Role", "r", assumeRolePolicy=json.dumps(trust))]).errors == []
    bad = {**trust, "Statement": [{**trust["Statement"][0], "Action": "sts:AssumeRoel"}]}
    assert [
        f.issue for f in lint([resource("aws:iam/role:Role", "r", assumeRolePolicy=json.dumps(bad))]).errors
    ]


def test_every_exception_has_a_reason_and_matches_by_issue_and_type() -> None:
    excepts = load_exceptions()
    assert excepts and all(len(e.reason) > 40 for e in excepts)
    star = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    # RESOURCE_STAR is excepted for key policies only, not for a role policy
    report = lint([resource("aws:iam/rolePolicy:RolePolicy", "p", policy=json.dumps(star))])
    assert [f.issue for f in report.errors] == ["RESOURCE_STAR"]


def test_plan_json_has_policy_lint_and_exits_5_on_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from commerce_db.cli import main

    prog = tmp_path / "lintprog.py"
    prog.write_text(
        "import json, pulumi_aws as aws\n"
        "def run():\n"
        "    aws.iam.Policy('wide', policy=json.dumps({'Version': '2012-10-17', 'Statement': [\n"
        "        {'Effect': 'Allow', 'Action': 's3:GetObject', 'Resource': '*'}]}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["plan", "staging", "--json", "--dir", str(ROOT), "--program", "lintprog:run"])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert code == 5, out.err
    assert doc["policy_lint"]["errors"] == 1 and doc["policy_lint"]["findings"][0]["issue"] == "RESOURCE_STAR"
    assert "IAM lint error" in out.err
    sys.modules.pop("lintprog", None)
