"""Paging when the primary region is lost (issue 15, game-day 2 findings 4, 8, 9), on the real
program's mocked plan: every watcher of the primary region is evaluated in a *replica* region, on
that region's own resource, and notifies that region's *page* topic; the RPO pages are short.

Checked per alarm: region, metric, dimensions, threshold, evaluation window, missing-data
treatment and topic. Prod (RDS) and prod with ``engineMode: aurora`` (Global Database).
"""

from __future__ import annotations

from typing import Any

import pytest
from _stackfiles import run_stack, stack_config
from commerce_db_components import _alarms
from commerce_db_components.aurora_alarms import AuroraAlarmsArgs
from commerce_db_components.observability_layer import AlarmThresholds

from commerce_db.mock_engine import ProgramRun, RegisteredResource

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
REPLICA_REGIONS = {"usw2": "us-west-2", "euw1": "eu-west-1"}


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return run_stack("prod")


@pytest.fixture(scope="module")
def prod_aurora() -> ProgramRun:
    pg = {**stack_config("prod")["commerce-db:postgres"], "engineMode": "aurora"}
    return run_stack("prod", {"commerce-db:postgres": pg})


def _page_topic(run: ProgramRun, code: str) -> str:
    (topic,) = [t for t in run.of_type(TOPIC) if t.name == f"{code}-obs-page"]
    arn: str = topic.state["arn"]
    return arn


def _alarm(run: ProgramRun, name: str) -> RegisteredResource:
    (alarm,) = [a for a in run.of_type(ALARM) if a.name == name]
    return alarm


def _window(inputs: dict[str, Any] | Any) -> tuple[int, int, int]:
    return (inputs["period"], inputs["evaluationPeriods"], inputs["datapointsToAlarm"])


def _pages_on(alarm: RegisteredResource, topic_arn: str) -> None:
    assert alarm.inputs["alarmActions"] == [topic_arn], alarm.name
    assert alarm.inputs["okActions"] == [topic_arn], alarm.name  # the pager resolves itself
    assert alarm.inputs["tags"]["severity"] == "page", alarm.name


def _replica_id(run: ProgramRun, code: str) -> str:
    (db,) = [d for d in run.of_type("aws:rds/instance:Instance") if d.name == f"{code}-pg-1"]
    ident: str = db.inputs["identifier"]
    return ident


# -- RDS -------------------------------------------------------------------------------------


def test_rds_primary_silent_pages_from_each_replica_region_within_one_sample(prod: ProgramRun) -> None:
    for code, region in REPLICA_REGIONS.items():
        alarm = _alarm(prod, f"{code}-obs-rds-xr-replica-1-primary-silent")
        assert alarm.region == region
        a = alarm.inputs
        assert (a["namespace"], a["metricName"], a["statistic"]) == ("AWS/RDS", "ReplicaLag", "Maximum")
        assert a["dimensions"] == {"DBInstanceIdentifier": _replica_id(prod, code)}
        # The 300 s RDS heartbeat + 60 s, paged at the first sample (was 600 s, 3 of 5: ~13 min).
        assert a["threshold"] == 360 and a["comparisonOperator"] == "GreaterThanThreshold"
        assert _window(a) == (60, 1, 1)
        assert a["treatMissingData"] == "notBreaching"
        _pages_on(alarm, _page_topic(prod, code))


def test_rds_rpo_pages_from_each_replica_region_heartbeat_proof(prod: ProgramRun) -> None:
    for code, region in REPLICA_REGIONS.items():
        alarm = _alarm(prod, f"{code}-obs-rds-xr-replica-1-behind-rpo")
        assert alarm.region == region
        a = alarm.inputs
        assert (a["metricName"], a["statistic"]) == ("ReplicaLag", "Maximum")
        assert a["dimensions"] == {"DBInstanceIdentifier": _replica_id(prod, code)}
        assert a["threshold"] == 70  # the 60 s RPO + 10 s for the heartbeat's own replay
        # Every sample of one heartbeat interval (300 s) plus one: an idle primary's sawtooth
        # drops below the threshold once per interval, so it can never fill the window.
        assert _window(a) == (60, 6, 6)
        assert a["treatMissingData"] == "notBreaching"
        _pages_on(alarm, _page_topic(prod, code))


def test_rds_primary_side_rpo_page_is_two_of_two(prod: ProgramRun) -> None:
    alarm = _alarm(prod, "use1-obs-rds-primary-replication-behind-rpo")
    assert alarm.region == "us-east-1"
    assert _window({"period": 60, **alarm.inputs}) == (60, 2, 2)
    assert alarm.inputs["threshold"] == 60
    _pages_on(alarm, _page_topic(prod, "use1"))


def test_no_watcher_of_the_primary_lives_in_the_primary_region(prod: ProgramRun) -> None:
    names = {a.name for a in prod.of_type(ALARM) if a.region == "us-east-1"}
    watchers = {n for n in names if n.endswith(("-primary-silent", "-primary-lost"))}
    watchers |= {n for n in names if n.endswith("-behind-rpo") and not n.endswith("-replication-behind-rpo")}
    assert not watchers


def test_a_faster_heartbeat_tightens_the_replica_region_pages() -> None:
    t = AlarmThresholds(primary_heartbeat_seconds=10, primary_silent_seconds=70)
    assert t.window("outlast_heartbeat") == (2, 2) and t.window("once") == (1, 1)
    derived = _alarms.derive_thresholds(
        _alarms.DbCapacity("db.r7g.large", 100), rpo_seconds=60, heartbeat_seconds=10
    )
    assert derived["primary_silent_seconds"][0] == 70
    assert derived["replica_rpo_seconds"][0] == 70
    with pytest.raises(ValueError, match="primary_heartbeat_seconds"):
        AlarmThresholds(primary_heartbeat_seconds=0)


# -- Aurora ----------------------------------------------------------------------------------


def _secondary_cluster_id(run: ProgramRun, region: str) -> str:
    """The secondary cluster's id (for aws.rds.Cluster the provider's id is the cluster identifier;
    the mock engine gives ids of its own, so compare with the id, not the identifier input)."""
    (cluster,) = [c for c in run.of_type("aws:rds/cluster:Cluster") if c.region == region]
    assert cluster.inputs["clusterIdentifier"].endswith(f"-{region_code(region)}-cluster")
    ident: str = cluster.state["id"]
    return ident


def region_code(region: str) -> str:
    return {v: k for k, v in REPLICA_REGIONS.items()}[region]


def test_aurora_primary_lost_pages_from_each_secondary_region(prod_aurora: ProgramRun) -> None:
    for code, region in REPLICA_REGIONS.items():
        alarm = _alarm(prod_aurora, f"{code}-aurora-alarms-primary-lost")
        assert alarm.region == region
        a = alarm.inputs
        assert (a["namespace"], a["metricName"], a["statistic"]) == (
            "AWS/RDS",
            "AuroraGlobalDBProgressLag",
            "Maximum",
        )
        assert a["dimensions"] == {"DBClusterIdentifier": _secondary_cluster_id(prod_aurora, region)}
        assert a["threshold"] == 60_000 and a["comparisonOperator"] == "GreaterThanThreshold"
        assert _window(a) == (60, 2, 2)
        # Only a replicating secondary publishes it: silence is the loss this alarm is about.
        assert a["treatMissingData"] == "breaching"
        _pages_on(alarm, _page_topic(prod_aurora, code))


def test_aurora_rpo_lag_pages_on_the_region_page_topic(prod_aurora: ProgramRun) -> None:
    for code, region in REPLICA_REGIONS.items():
        alarm = _alarm(prod_aurora, f"{code}-aurora-alarms-rpo-lag")
        assert alarm.region == region
        a = alarm.inputs
        assert a["metricName"] == "AuroraGlobalDBRPOLag" and a["threshold"] == 5000
        assert a["dimensions"] == {"DBClusterIdentifier": _secondary_cluster_id(prod_aurora, region)}
        assert _window(a) == (60, 2, 2)
        assert a["treatMissingData"] == "notBreaching"
        _pages_on(alarm, _page_topic(prod_aurora, code))


def test_aurora_primary_region_has_no_primary_lost_and_tickets_stay_tickets(prod_aurora: ProgramRun) -> None:
    assert not [a for a in prod_aurora.of_type(ALARM) if a.name.startswith("use1-aurora-alarms-primary-lost")]
    tickets = {(t.name, t.state["arn"]) for t in prod_aurora.of_type(TOPIC) if t.name.endswith("-obs-alarms")}
    ticket_arns = {arn for _n, arn in tickets}
    for alarm in prod_aurora.of_type(ALARM):
        if alarm.name.endswith(("-volume", "-replica-lag")) and "-aurora-alarms-" in alarm.name:
            assert alarm.inputs["tags"]["severity"] == "ticket", alarm.name
            (arn,) = alarm.inputs["alarmActions"]
            assert arn in ticket_arns, alarm.name
            assert not alarm.inputs.get("okActions"), alarm.name


def test_every_page_is_in_a_region_that_has_a_page_topic(prod_aurora: ProgramRun, prod: ProgramRun) -> None:
    """Each region's pages go to that region's own page topic (none crosses regions)."""
    for run in (prod, prod_aurora):
        topics = {t.state["arn"]: t.region for t in run.of_type(TOPIC)}
        for alarm in run.of_type(ALARM):
            for arn in alarm.inputs.get("alarmActions", []):
                assert topics.get(arn) == alarm.region, alarm.name


def test_aurora_catalogue_matches_the_component() -> None:
    from commerce_db_components.aurora_alarms import AURORA_ALARMS, aurora_catalogue_rows

    rows = aurora_catalogue_rows(AuroraAlarmsArgs(topic_arn="t", cluster_identifier="c"))
    assert [r[0].split(": ")[1] for r in rows] == [s.key for s in AURORA_ALARMS]
    lost = dict(zip([s.key for s in AURORA_ALARMS], rows, strict=True))["primary-lost"]
    assert lost[1] == "page" and "breaching" in lost[4] and "2 of 2" in lost[4]
