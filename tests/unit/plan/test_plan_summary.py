"""The default plan output is a summary; --details / filters print the tree; small CLI behaviours."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from commerce_db import __version__
from commerce_db.cli import main

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the full plan goes to ./out/plan-<stack>.txt
    return tmp_path


def test_prod_summary_is_short_and_says_where_the_full_plan_is(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "prod", "--dir", str(REPO)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "warning" not in captured.err  # no failover keys set
    lines = out.splitlines()
    assert len(lines) <= 60, len(lines)
    assert "MetricAlarm" not in out  # alarms collapsed by family
    assert any(line.startswith("Alarms: ") and " page, " in line for line in lines)
    assert any(line.startswith("Policy: OK") for line in lines)
    cost = next(line for line in lines if line.startswith("Cost: ~"))
    assert "USD/month" in cost and "The total excludes" in out and "VPC interface endpoints" in out
    details = in_tmp / "out" / "plan-prod.txt"
    assert str(Path("out") / "plan-prod.txt") in out and "rds.Instance use1-pg-1" in details.read_text()
    assert "primary db.r7g.2xlarge Multi-AZ" in out


@pytest.mark.parametrize(
    ("key", "paused"),
    [
        ("promotedFrom", ("proxies ignore login changes", "do not rotate", "AUTH token stays pinned")),
        ("retiringLoginsFrom", ("still accepts the promoted copies", "two secrets for one user")),
    ],
)
def test_lingering_failover_keys_warn_but_do_not_fail(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], key: str, paused: tuple[str, ...]
) -> None:
    """Second review N5: a failover's temporary keys pause rotation and proxy login changes; a plan
    while one is set warns (naming the key, its region and what stays paused) and still exits 0."""
    assert main(["plan", "prod", "--dir", str(REPO), "-c", f"{key}=eu-west-1"]) == 0
    err = capsys.readouterr().err
    (warning,) = [line for line in err.splitlines() if line.startswith("commerce-db plan: warning: ")]
    assert f"{key} is set (eu-west-1)" in warning
    for text in paused:
        assert text in warning, text


def test_details_and_filters_print_the_tree(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "prod", "--dir", str(REPO), "--type", "rds.Instance"]) == 0
    out = capsys.readouterr().out
    shown = [line.split()[1] for line in out.splitlines() if line.strip().startswith("rds.Instance ")]
    assert sorted(s for s in shown if not s.isdigit()) == sorted(
        [
            "use1-pg-1",
            "use1-pg-2",
            "use1-pg-3",
            "usw2-pg-1",
            "euw1-pg-1",
        ]
    )
    assert "sns.Topic use1-obs" not in out  # the tree is filtered (the counts table is not)
    assert main(["plan", "prod", "--dir", str(REPO), "--component", "ProxyLayer"]) == 0
    out = capsys.readouterr().out
    assert "rds.Proxy use1-proxy" in out and "rds.Instance use1-pg-1" not in out


def test_a_filter_cuts_counts_exports_policy_and_cost_to_the_shown_resources(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "prod", "--dir", str(REPO), "--details"]) == 0
    whole = capsys.readouterr().out
    assert main(["plan", "prod", "--dir", str(REPO), "--component", "ProxyLayer"]) == 0
    out = capsys.readouterr().out

    def section(text: str, title: str) -> list[str]:
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(title))
        end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip())
        return lines[start + 1 : end]

    counts = {line.split()[0]: int(line.split()[1]) for line in section(out, "Resources by type")}
    whole_total = {line.split()[0]: int(line.split()[1]) for line in section(whole, "Resources by type")}[
        "total"
    ]
    assert counts["rds.Proxy"] == 3 and "rds.Instance" not in counts and "sns.Topic" not in counts
    assert counts["total"] == sum(n for t, n in counts.items() if t != "total") < whole_total
    assert f"{counts['total']} of {whole_total} resources (filtered" in out.splitlines()[0]
    exports = "\n".join(section(out, "Exports"))
    assert "-> rds.Proxy 'use1-proxy' endpoint" in exports
    assert "redisPrimaryEndpoint" not in exports and "redisPrimaryEndpoint" in whole  # not a proxy
    cost_items = [line.split()[2] for line in section(out, "Cost:")[1:] if line.split()[0] in REGIONS]
    assert sorted(cost_items) == ["euw1-proxy", "use1-proxy", "usw2-proxy"]

    def total(text: str) -> float:
        line = next(x for x in text.splitlines() if x.strip().startswith("TOTAL (estimate)"))
        return float(line.split()[-1].replace(",", ""))

    assert 0 < total(out) < total(whole)


REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


def test_version() -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0


def test_version_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"commerce-db {__version__}"


def test_a_closed_pipe_ends_quietly(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `commerce-db plan prod --details | head -1`: the reader is gone before the plan is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    broken = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", broken)
    try:
        assert main(["plan", "prod", "--details", "--dir", str(REPO)]) == 141
    finally:
        monkeypatch.undo()
        broken.close()  # its descriptor now points at /dev/null: closing cannot fail either
    assert "Traceback" not in capsys.readouterr().err


def test_diagram_to_an_image_is_refused_before_planning(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "prod", "--dir", str(REPO), "--diagram", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "x.png" in err and ".dot" in err and ".mmd" in err
    assert not (in_tmp / "x.png").exists()


def test_every_config_error_at_once_with_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "staging", "--dir", str(REPO), "-c", "postgres.instanceClas=db.t4g.large"]
    assert main([*argv, "-c", "cache.nodeTyp=cache.t4g.small", "-c", "postgres.multiAz=nope"]) == 2
    err = capsys.readouterr().err
    assert "postgres.instanceClas" in err and "did you mean 'instanceClass'?" in err
    assert "cache.nodeTyp" in err and "did you mean 'nodeType'?" in err
    assert "postgres.multiAz = 'nope': must be true or false" in err
    assert "Traceback" not in err


def test_a_type_error_is_a_config_error_not_a_policy_violation(capsys: pytest.CaptureFixture[str]) -> None:
    # prod-multi-az is a mandatory prod policy; 'nope' is not a choice it judges but a malformed value.
    assert main(["plan", "prod", "--dir", str(REPO), "-c", "postgres.multiAz=nope"]) == 2
    err = capsys.readouterr().err
    assert "must be true or false" in err and "mandatory" not in err


def test_a_broken_stack_file_names_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.bad.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  commerce-db:postgres:\n    instanceClass: db.t4g.medium\n"
        '   engineVersion: "16"\n'
    )
    assert main(["plan", "bad", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.bad.yaml:5:4: not valid YAML" in err
    assert '   engineVersion: "16"' in err and "Traceback" not in err


def test_a_filter_that_matches_nothing_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "prod", "--dir", str(REPO), "--component", "use1-cahce"]) == 2
    err = capsys.readouterr().err
    assert "--component 'use1-cahce' matches nothing" in err and "did you mean CacheLayer use1-cache" in err
    assert main(["plan", "prod", "--dir", str(REPO), "--type", "nosuch.Type"]) == 2
    assert "--type 'nosuch.Type' matches nothing" in capsys.readouterr().err
