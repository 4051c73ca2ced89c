"""Regenerate ``components/data/aws_catalogue.json`` from cfn-lint's AWS data (run by hand).

cfn-lint ships, per region, the orderable RDS DB instance classes per engine and the ElastiCache
node types, plus the RDS and ElastiCache engine versions, regenerated from the AWS APIs by its
maintainers. This script copies the parts commerce-db validates against into one dated file,
keeping the hand-curated per-class limits (``class_limits``, from AWS documentation tables) of
the existing file. Usage (cfn-lint is not a project dependency)::

    python -m venv /tmp/cfn && /tmp/cfn/bin/pip install cfn-lint==1.58.0
    /tmp/cfn/bin/python scripts/update_aws_catalogue.py
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import cfnlint  # type: ignore[import-not-found]
from cfnlint.version import __version__ as cfnlint_version  # type: ignore[import-not-found]

OUT = Path(__file__).resolve().parents[1] / "components" / "data" / "aws_catalogue.json"
EXT = Path(cfnlint.__file__).parent / "data" / "schemas" / "extensions"
RDS_ENGINES = ("postgres", "aurora-postgresql")
CACHE_ENGINES = ("redis", "valkey")


def _conditional_enums(doc: dict[str, Any], prop: str) -> dict[str, list[str]]:
    """Engine -> enum of ``prop`` from a cfn-lint ``allOf`` of if/then blocks (license model ignored)."""
    out: dict[str, set[str]] = {}
    for block in doc.get("allOf", []):
        cond = block.get("if", {}).get("properties", {})
        engine = cond.get("Engine", {}).get("const")
        enum = block.get("then", {}).get("properties", {}).get(prop, {}).get("enum")
        if engine and enum:
            out.setdefault(engine, set()).update(enum)
    return {k: sorted(v) for k, v in out.items()}


def main() -> None:
    instance_classes = json.loads((EXT / "aws_rds_dbinstance" / "dbinstanceclass_enum.json").read_text())
    cluster_classes = json.loads((EXT / "aws_rds_dbcluster" / "dbclusterinstanceclass_enum.json").read_text())
    del cluster_classes  # Multi-AZ DB clusters are not used; Aurora classes come from the instance file
    rds_versions = _conditional_enums(
        json.loads((EXT / "aws_rds_dbinstance" / "engine_version.json").read_text()), "EngineVersion"
    )
    cluster_versions = _conditional_enums(
        json.loads((EXT / "aws_rds_dbcluster" / "engine_version.json").read_text()), "EngineVersion"
    )
    node_types = json.loads((EXT / "aws_elasticache_cachecluster" / "cachenodetype_enum.json").read_text())
    cache_versions = _conditional_enums(
        json.loads((EXT / "aws_elasticache_cachecluster" / "engine_version.json").read_text()),
        "EngineVersion",
    )
    classes: dict[str, dict[str, list[str]]] = {engine: {} for engine in RDS_ENGINES}
    for region, doc in sorted(instance_classes.items()):
        for engine, enum in _conditional_enums(doc, "DBInstanceClass").items():
            if engine in RDS_ENGINES:
                classes[engine][region] = enum
    previous = json.loads(OUT.read_text()) if OUT.exists() else {}
    catalogue = {
        "source": {
            "package": f"cfn-lint {cfnlint_version} (PyPI)",
            "files": [
                "cfnlint/data/schemas/extensions/aws_rds_dbinstance/dbinstanceclass_enum.json",
                "cfnlint/data/schemas/extensions/aws_rds_dbinstance/engine_version.json",
                "cfnlint/data/schemas/extensions/aws_rds_dbcluster/engine_version.json",
                "cfnlint/data/schemas/extensions/aws_elasticache_cachecluster/cachenodetype_enum.json",
                "cfnlint/data/schemas/extensions/aws_elasticache_cachecluster/engine_version.json",
            ],
            "note": "cfn-lint regenerates these from the RDS/ElastiCache APIs "
            "(DescribeOrderableDBInstanceOptions, DescribeDBEngineVersions, node types per region).",
            "extracted": datetime.date.today().isoformat(),
            "package_release_date": previous.get("source", {}).get("package_release_date", "unknown"),
        },
        "rds": {
            engine: {
                "engine_versions": sorted(
                    set(rds_versions.get(engine, [])) | set(cluster_versions.get(engine, []))
                ),
                "instance_classes": classes[engine],
            }
            for engine in RDS_ENGINES
        },
        "elasticache": {
            "engine_versions": {e: cache_versions.get(e, []) for e in CACHE_ENGINES},
            "node_types": {
                region: doc["enum"] for region, doc in sorted(node_types.items()) if isinstance(doc, dict)
            },
        },
        "class_limits": previous.get("class_limits", {}),
    }
    OUT.write_text(json.dumps(catalogue, indent=1, sort_keys=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
