"""The pager endpoint (issue 16): a secret config key subscribing the pager to every page topic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from commerce_db_components.config import ConfigError, parse_stack_config

from commerce_db.cli import main
from commerce_db.mock_engine import SecretValue, run_program
from commerce_db.plan import build_report, load_program, load_stack, plan_stack
from commerce_db.plan.render import render_json, render_summary, render_text

REPO = Path(__file__).resolve().parents[3]
KEY = "commerce-db:pagerEndpoint"
URL = "https://events.pagerduty.com/integration/PDINTEGRATIONKEY0123456789abcdef/enqueue"
SUB = "aws:sns/topicSubscription:TopicSubscription"


def _raw(**extra: str) -> dict[str, str]:
    return {"drRegion": "us-west-2", **extra}


def test_a_plain_pager_endpoint_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_stack_config(_raw(pagerEndpoint=URL), stack="staging", aws_region="us-east-1")
    assert info.value.key == "pagerEndpoint" and "--secret" in str(info.value)
    assert "PDINTEGRATIONKEY" not in str(info.value)


def test_a_secret_pager_endpoint_must_be_https_and_is_never_shown() -> None:
    secret = frozenset({"pagerEndpoint"})
    for bad in ("http://events.pagerduty.com/x?KEYVALUE1", "https:///KEYVALUE1", "KEYVALUE1"):
        with pytest.raises(ConfigError) as info:
            parse_stack_config(
                _raw(pagerEndpoint=bad), stack="staging", aws_region="us-east-1", secret_keys=secret
            )
        assert info.value.key == "pagerEndpoint" and "https://" in str(info.value)
        assert "KEYVALUE1" not in str(info.value)
    cfg = parse_stack_config(
        _raw(pagerEndpoint=URL), stack="staging", aws_region="us-east-1", secret_keys=secret
    )
    assert cfg.pager_endpoint == URL
    assert parse_stack_config(_raw(), stack="staging", aws_region="us-east-1").pager_endpoint == ""


def _subscriptions(run) -> list:  # type: ignore[no-untyped-def]
    return [r for r in run.resources if r.type == SUB]


def test_the_pager_gets_every_regions_pages_and_stays_secret() -> None:
    loaded = load_stack("prod", REPO)
    config = {**loaded.config, KEY: URL}
    run = run_program(
        load_program(REPO), project="commerce-db", stack="prod", config=config, secret_keys={KEY}
    )
    subs = _subscriptions(run)
    pager = [s for s in subs if s.inputs["protocol"] == "https"]
    regions = {r.region for r in run.resources if r.type == "aws:sns/topic:Topic"}
    assert len(regions) == 3 and {s.region for s in pager} == regions  # one per region's page topic
    for s in pager:
        assert s.name.endswith("-page-https-1") and s.inputs["endpointAutoConfirms"] is True
        assert isinstance(s.inputs["endpoint"], SecretValue)  # encrypted in the state
    # The e-mails now get tickets only: no e-mail subscription on a page topic.
    emails = [s for s in subs if s.inputs["protocol"] == "email"]
    assert emails and not [s for s in emails if "-page-" in s.name]
    report = build_report(run, stack="prod", config=config)
    for text in (render_text(report), render_json(report), render_summary(report)):
        assert "PDINTEGRATIONKEY" not in text


def test_without_a_pager_the_emails_get_the_pages() -> None:
    run = run_program(
        load_program(REPO), project="commerce-db", stack="prod", config=load_stack("prod", REPO).config
    )
    subs = _subscriptions(run)
    assert not [s for s in subs if s.inputs["protocol"] == "https"]
    assert [s for s in subs if "-page-email-" in s.name]


def test_offline_plan_of_a_stack_file_with_an_encrypted_pager_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    with (tmp_path / "Pulumi.prod.yaml").open("a") as f:
        f.write("  commerce-db:pagerEndpoint:\n    secure: v1:AAAABBBBCCCCencryptedDDDD\n")
    report = plan_stack("prod", project_dir=tmp_path)
    assert [s for s in _subscriptions(report.run) if s.inputs["protocol"] == "https"]
    # A plain value given on the command line is refused (exit 2), never echoed.
    assert main(["plan", "prod", "--dir", str(tmp_path), "-c", f"pagerEndpoint={URL}"]) == 2
    err = capsys.readouterr().err
    assert "pagerEndpoint" in err and "--secret" in err and "PDINTEGRATIONKEY" not in err
