"""Lint every IAM policy document of a planned stack with parliament (Duo Labs' IAM linter).

Documents are found in the registered inputs: role trust policies (``assumeRolePolicy``), role
and managed policies, KMS key policies, S3 bucket, SNS topic, Secrets Manager, Backup vault and
CloudWatch Logs resource policies (``policy``, ``policyDocument``, ``accessPolicies``). Each
statement is linted on its own, so a finding names its statement (Sid). Trust policies carry no
``Resource`` (the role is implied): the linter is given the role's ARN there.

A finding is an error unless ``lint_exceptions.yaml`` (next to this module, the one file of
justified exceptions) excepts it with a reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import yaml

EXCEPTIONS_PATH = Path(__file__).resolve().parent / "lint_exceptions.yaml"
POLICY_INPUTS: tuple[str, ...] = ("policy", "assumeRolePolicy", "policyDocument", "accessPolicies")
"""Input names that hold policy documents."""


class LintSubject(Protocol):
    """What the linter needs of a registered resource (``RegisteredResource`` fits)."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def region(self) -> str | None: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def state(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class LintException:
    """One justified exception: ``issue`` on ``type`` (and statement ``sid`` when given)."""

    issue: str
    type: str
    reason: str
    sid: str | None = None

    def matches(self, finding: LintFinding) -> bool:
        return (
            self.issue == finding.issue
            and self.type == finding.type
            and (self.sid is None or self.sid == finding.sid)
        )


@dataclass(frozen=True)
class LintFinding:
    """One parliament finding on one statement of one resource's policy document."""

    resource: str
    type: str
    region: str | None
    input: str
    sid: str | None
    statement: int
    issue: str
    severity: str
    title: str
    detail: str
    excepted: bool = False
    reason: str | None = None

    @property
    def error(self) -> bool:
        return not self.excepted

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "error": self.error}


@dataclass(frozen=True)
class LintReport:
    """Findings over all documents of a plan."""

    tool: str
    documents: int
    statements: int
    findings: tuple[LintFinding, ...]

    @property
    def errors(self) -> list[LintFinding]:
        return [f for f in self.findings if f.error]

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "documents": self.documents,
            "statements": self.statements,
            "errors": len(self.errors),
            "excepted": len(self.findings) - len(self.errors),
            "exceptions_file": "commerce_db/policy_rules/lint_exceptions.yaml",
            "findings": [f.to_json() for f in self.findings],
        }


@cache
def load_exceptions(path: Path = EXCEPTIONS_PATH) -> tuple[LintException, ...]:
    """The justified exceptions; each entry must carry issue, type and a reason."""
    raw = yaml.safe_load(path.read_text()) or []
    out: list[LintException] = []
    for i, entry in enumerate(raw):
        missing = [k for k in ("issue", "type", "reason") if not str(entry.get(k) or "").strip()]
        if missing:
            raise ValueError(
                f"{path.name} entry {i}: {', '.join(missing)} missing (every exception needs a reason)"
            )
        out.append(
            LintException(
                issue=entry["issue"], type=entry["type"], reason=entry["reason"], sid=entry.get("sid")
            )
        )
    return tuple(out)


def _plain(value: Any) -> Any:
    reveal = getattr(value, "reveal", None)
    return reveal() if callable(reveal) else value


def _document(value: Any) -> dict[str, Any] | None:
    value = _plain(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, Mapping) and "Statement" in value:
        return dict(value)
    return None


def documents(resources: Iterable[LintSubject]) -> list[tuple[LintSubject, str, dict[str, Any]]]:
    """(resource, input name, document) for every policy document in ``resources``."""
    out = []
    for r in resources:
        for key in POLICY_INPUTS:
            doc = _document(r.inputs.get(key))
            if doc is not None:
                out.append((r, key, doc))
    return out


def _tool() -> str:
    try:
        return f"parliament {metadata.version('parliament')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - declared dependency
        return "parliament"


def lint(resources: Iterable[LintSubject], exceptions: Sequence[LintException] | None = None) -> LintReport:
    """Lint every policy document of ``resources`` statement by statement."""
    from parliament import analyze_policy_string

    excepts = load_exceptions() if exceptions is None else tuple(exceptions)
    docs = documents(resources)
    findings: list[LintFinding] = []
    statements = 0
    for resource, key, doc in docs:
        stmts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        for index, statement in enumerate(stmts):
            statements += 1
            stmt = dict(statement)
            if key == "assumeRolePolicy" and "Resource" not in stmt and "NotResource" not in stmt:
                # A trust policy's resource is the role itself.
                stmt["Resource"] = _plain(resource.state.get("arn")) or "arn:aws:iam::*:role/*"
            text = json.dumps({"Version": doc.get("Version", "2012-10-17"), "Statement": [stmt]})
            policy = analyze_policy_string(text, ignore_private_auditors=True)
            for f in policy.findings:
                finding = LintFinding(
                    resource=resource.name,
                    type=resource.type,
                    region=resource.region,
                    input=key,
                    sid=stmt.get("Sid"),
                    statement=index,
                    issue=f.issue,
                    severity=str(getattr(f, "severity", "")),
                    title=str(getattr(f, "title", "")),
                    detail=f.detail if isinstance(f.detail, str) else json.dumps(f.detail, default=str),
                )
                match = next((e for e in excepts if e.matches(finding)), None)
                if match is not None:
                    finding = LintFinding(**{**asdict(finding), "excepted": True, "reason": match.reason})
                findings.append(finding)
    # Registration order varies between runs (resources registered inside applies): sort.
    findings.sort(key=lambda f: (f.type, f.resource, f.input, f.statement, f.issue, f.detail))
    return LintReport(tool=_tool(), documents=len(docs), statements=statements, findings=tuple(findings))
