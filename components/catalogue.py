"""What AWS sells where: a dated catalogue of RDS classes, engine versions and ElastiCache nodes.

``components/data/aws_catalogue.json`` holds, per region, the RDS DB instance classes orderable
for ``postgres`` and ``aurora-postgresql``, the RDS and ElastiCache engine versions and the
ElastiCache node types, extracted from cfn-lint (which regenerates them from the AWS APIs; see
``scripts/update_aws_catalogue.py``), plus per-class limits transcribed from AWS documentation
tables (memory, maximum IOPS and throughput, Performance Insights support). The file records its
sources and dates; checks here raise ``ValueError`` naming the value and what is allowed, so a
configuration AWS would reject is refused before any resource is registered.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "aws_catalogue.json"
BYTES_PER_CONNECTION = 9531392
"""Divisor of AWS's default ``max_connections`` formula LEAST(DBInstanceClassMemory/9531392, 5000)."""


@cache
def catalogue() -> dict[str, Any]:
    """The parsed catalogue file (cached)."""
    data: dict[str, Any] = json.loads(CATALOGUE_PATH.read_text())
    return data


def source_note() -> str:
    """``cfn-lint 1.58.0 (PyPI), extracted 2026-12-06``: where the catalogue comes from."""
    src = catalogue()["source"]
    return f"{src['package']}, extracted {src['extracted']}"


@dataclass(frozen=True)
class ClassLimits:
    """Per-class limits from AWS's documentation tables (None where not transcribed)."""

    memory_gib: float | None
    max_iops: int | None
    max_throughput_mibps: int | None
    performance_insights: bool


def class_limits(instance_class: str) -> ClassLimits:
    """Limits of ``instance_class`` (memory/IOPS None for families the table does not list)."""
    limits = catalogue()["class_limits"]
    row = limits["instance_classes"].get(instance_class, {})
    return ClassLimits(
        memory_gib=row.get("memory_gib"),
        max_iops=row.get("max_iops"),
        max_throughput_mibps=row.get("max_throughput_mibps"),
        performance_insights=instance_class not in limits["performance_insights_unsupported"],
    )


def _suggest(value: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(value, allowed, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _families(allowed: list[str]) -> str:
    fams = sorted({".".join(c.split(".")[:2]) for c in allowed if c.count(".") == 2})
    return ", ".join(fams)


def check_rds_instance_class(instance_class: str, *, engine: str, region: str | None, field: str) -> None:
    """Raise unless ``instance_class`` is orderable for ``engine`` in ``region`` (in some region if None).

    ``engine`` is ``postgres`` or ``aurora-postgresql``.
    """
    by_region = catalogue()["rds"][engine]["instance_classes"]
    if region is None:
        anywhere = sorted({c for cs in by_region.values() for c in cs})
        if instance_class not in anywhere:
            raise ValueError(
                f"{field} {instance_class!r} is not an RDS {engine} instance class"
                f"{_suggest(instance_class, anywhere)}; allowed: a class of {_families(anywhere)} "
                f"(per {source_note()})"
            )
        return
    if region not in by_region:
        raise ValueError(
            f"region {region!r} has no {engine} instance classes in the catalogue ({source_note()}); "
            f"allowed: {', '.join(sorted(by_region))}"
        )
    allowed: list[str] = by_region[region]
    if instance_class not in allowed:
        raise ValueError(
            f"{field} {instance_class!r} is not an RDS {engine} instance class orderable in {region}"
            f"{_suggest(instance_class, allowed)}; allowed: a class of {_families(allowed)} "
            f"(per {source_note()})"
        )


def check_rds_engine_version(version: str, *, engine: str, field: str = "engine_version") -> None:
    """Raise unless ``version`` (major or major.minor) is a known ``engine`` version."""
    known: list[str] = catalogue()["rds"][engine]["engine_versions"]
    major = version.split(".", 1)[0]
    if "." in version:
        ok = version in known
    else:
        ok = version in known or any(v.split(".", 1)[0] == major for v in known)
    if not ok:
        same_major = [v for v in known if v.split(".", 1)[0] == major and "limitless" not in v]
        allowed = ", ".join(sorted(same_major, key=_version_key)) or "a version listed by AWS"
        raise ValueError(
            f"{field} {version!r} is not an {engine} version AWS offers; allowed: {major!r} or {allowed} "
            f"(per {source_note()})"
        )


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.replace("-", ".").split(".") if p.isdigit())


def check_node_type(node_type: str, *, region: str | None, field: str = "node_type") -> None:
    """Raise unless ``node_type`` is an ElastiCache node type sold in ``region`` (any region if None)."""
    by_region: dict[str, list[str]] = catalogue()["elasticache"]["node_types"]
    if region is not None and region not in by_region:
        raise ValueError(
            f"region {region!r} has no ElastiCache node types in the catalogue ({source_note()})"
        )
    allowed = by_region[region] if region else sorted({t for ts in by_region.values() for t in ts})
    if node_type not in allowed:
        where = f" in {region}" if region else ""
        raise ValueError(
            f"{field} {node_type!r} is not an ElastiCache node type sold{where}"
            f"{_suggest(node_type, allowed)}; allowed: a type of {_families(allowed)} (per {source_note()})"
        )


def check_cache_engine_version(engine: str, version: str, *, field: str = "engine_version") -> None:
    """Raise unless ``version`` is an ElastiCache ``engine`` (redis, valkey) version."""
    known: list[str] = catalogue()["elasticache"]["engine_versions"].get(engine, [])
    if version not in known:
        raise ValueError(
            f"{field} {version!r} is not an ElastiCache {engine} version; allowed: {', '.join(known)} "
            f"(per {source_note()})"
        )


def check_class_limits(
    instance_class: str,
    *,
    field: str,
    iops: int | None = None,
    throughput_mibps: int | None = None,
    performance_insights: bool = True,
    max_connections: int | None = None,
) -> None:
    """Raise when settings exceed what ``instance_class`` supports (documented per-class limits)."""
    limits = class_limits(instance_class)
    if performance_insights and not limits.performance_insights:
        raise ValueError(
            f"{field} {instance_class!r} does not support Performance Insights / Database Insights, which "
            "this tier always enables; allowed: db.t3/db.t4g medium or larger, or a non-burstable class"
        )
    if iops is not None and limits.max_iops is not None and iops > limits.max_iops:
        raise ValueError(
            f"{field} {instance_class!r} supports at most {limits.max_iops} IOPS (EBS maximum of the class), "
            f"{iops} configured; allowed: a larger class or IOPS <= {limits.max_iops}"
        )
    if (
        throughput_mibps is not None
        and limits.max_throughput_mibps is not None
        and throughput_mibps > limits.max_throughput_mibps
    ):
        raise ValueError(
            f"{field} {instance_class!r} supports at most {limits.max_throughput_mibps} MiB/s storage "
            f"throughput, {throughput_mibps} configured; allowed: a larger class or less throughput"
        )
    if max_connections is not None and limits.memory_gib is not None:
        ceiling = min(int(limits.memory_gib * 2**30 // BYTES_PER_CONNECTION), 5000)
        if max_connections > ceiling:
            raise ValueError(
                f"{field} {instance_class!r} has {limits.memory_gib:g} GiB of memory: max_connections "
                f"{max_connections} exceeds AWS's own sizing LEAST(memory/9531392, 5000) = {ceiling}; "
                f"allowed: max_connections <= {ceiling} or a larger class"
            )
