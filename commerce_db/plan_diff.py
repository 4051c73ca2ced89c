"""What ``pulumi up`` would do to a stack whose program changes: a diff of two mocked plans.

No Pulumi CLI runs here, so the engine's own diff is not available offline. This module
reproduces the part of it that decides whether a resource is kept, updated, **replaced** or
**deleted**, from two :class:`~commerce_db.mock_engine.ProgramRun` s of the same stack (before and
after a config change such as a failover):

- identity: a new resource takes over the old one with the same engine URN, or whose URN is
  one of its ``aliases`` (own or inherited from a parent's aliases, as the engine does);
- ``ignore_changes`` keeps the old value of the listed properties;
- a changed property that the Terraform AWS provider marks ``ForceNew`` (tables below, from
  ``hashicorp/terraform-provider-aws`` ``internal/service/*``), a changed per-resource ``region``
  or a changed explicit provider forces a replacement; ``replace_on_changes`` asks for one
  explicitly (then ``delete_before_replace`` says in which order);
- properties the provider keeps as *computed* when the program stops setting them (or reads
  back from AWS when it starts setting them to what the resource already has) are not changes:
  the values a read replica or Global Database secondary inherits from its source
  (``INHERITED``), and Global Datastore membership.

:func:`failover_violations` applies the failover rules of issue 15 to such a diff.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from commerce_db.mock_engine import ProgramRun, RegisteredResource, SecretValue

Op = Literal["same", "update", "replace", "create", "delete"]

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_GLOBAL_CLUSTER = "aws:rds/globalCluster:GlobalCluster"
CACHE_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_GLOBAL_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
BACKUP_VAULT = "aws:backup/vault:Vault"
KMS_KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"

FORCE_NEW: Mapping[str, frozenset[str]] = {
    RDS_INSTANCE: frozenset(
        {
            "identifier", "identifierPrefix", "username", "dbName", "engine", "kmsKeyId",
            "storageEncrypted", "availabilityZone", "characterSetName", "ncharCharacterSetName",
            "snapshotIdentifier", "restoreToPointInTime", "s3Import", "timezone", "customIamInstanceProfile",
        }
    ),
    RDS_CLUSTER: frozenset(
        {
            "clusterIdentifier", "clusterIdentifierPrefix", "availabilityZones", "databaseName",
            "dbSubnetGroupName", "engine", "engineMode", "kmsKeyId", "masterUsername",
            "snapshotIdentifier", "sourceRegion", "storageEncrypted", "restoreToPointInTime", "s3Import",
            "dbSystemId", "clusterScalabilityType",
        }
    ),
    RDS_CLUSTER_INSTANCE: frozenset(
        {"identifier", "identifierPrefix", "clusterIdentifier", "engine", "dbSubnetGroupName",
         "availabilityZone", "customIamInstanceProfile"}
    ),
    RDS_GLOBAL_CLUSTER: frozenset(
        {"globalClusterIdentifier", "databaseName", "engine", "sourceDbClusterIdentifier", "storageEncrypted"}
    ),
    CACHE_GROUP: frozenset(
        {
            "replicationGroupId", "atRestEncryptionEnabled", "availabilityZones", "preferredCacheClusterAzs",
            "kmsKeyId", "port", "subnetGroupName", "snapshotArns", "snapshotName",
            "globalReplicationGroupId", "dataTieringEnabled", "networkType", "securityGroupNames",
        }
    ),
    CACHE_GLOBAL_GROUP: frozenset({"globalReplicationGroupIdSuffix", "primaryReplicationGroupId"}),
    BACKUP_VAULT: frozenset({"name", "kmsKeyArn"}),
    KMS_KEY: frozenset({"customerMasterKeySpec", "keyUsage", "multiRegion", "xksKeyId", "customKeyStoreId"}),
    SECRET: frozenset({"name", "namePrefix"}),
    "aws:rds/subnetGroup:SubnetGroup": frozenset({"name", "namePrefix"}),
    "aws:rds/parameterGroup:ParameterGroup": frozenset({"name", "namePrefix", "family", "description"}),
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": frozenset(
        {"name", "namePrefix", "family", "description"}
    ),
    "aws:ec2/securityGroup:SecurityGroup": frozenset({"name", "namePrefix", "description", "vpcId"}),
    "aws:elasticache/subnetGroup:SubnetGroup": frozenset({"name"}),
    "aws:elasticache/parameterGroup:ParameterGroup": frozenset({"name", "family", "description"}),
    "aws:kms/alias:Alias": frozenset({"name", "namePrefix"}),
    "aws:backup/plan:Plan": frozenset({"name"}),
    "aws:backup/selection:Selection": frozenset(
        {"name", "planId", "iamRoleArn", "resources", "notResources", "selectionTags", "conditions"}
    ),
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name", "namePrefix"}),
    "aws:iam/role:Role": frozenset({"name", "namePrefix", "path"}),
    # The writer name (issue 15, item 4): none of these may be replaced by a failover.
    "aws:route53recoverycontrol/safetyRule:SafetyRule": frozenset(
        {"assertedControls", "controlPanelArn", "gatingControls", "ruleConfig", "targetControls"}
    ),
    "aws:route53/healthCheck:HealthCheck": frozenset({"routingControlArn", "type", "referenceName"}),
    "aws:route53/zone:Zone": frozenset({"name"}),
    "aws:route53/zoneAssociation:ZoneAssociation": frozenset({"zoneId", "vpcId", "vpcRegion"}),
}  # fmt: skip
"""Properties whose change replaces the resource (ForceNew in the Terraform AWS provider)."""

INHERITED: Mapping[str, frozenset[str]] = {
    # A read replica reports its source's engine, master user, database, encryption: the
    # provider reads them into state, so a promoted replica whose program now sets the same
    # values shows no diff (and a replica that stops setting them keeps the computed values).
    RDS_INSTANCE: frozenset(
        {"username", "dbName", "engine", "engineVersion", "storageEncrypted", "allocatedStorage", "kmsKeyId"}
    ),
    # Not assumed for Aurora clusters: the provider's Read sets database_name only when AWS returns
    # one, so a promoted secondary that the program now gives a databaseName (ForceNew) would be
    # replaced; the program ignores both on clusters instead (AURORA_ROLE_SWITCH_IGNORED).
    # A Global Datastore member reports the global group's engine, version, node type,
    # encryption, port and parameter group, and its membership (globalReplicationGroupId).
    CACHE_GROUP: frozenset(
        {"engine", "engineVersion", "nodeType", "atRestEncryptionEnabled", "transitEncryptionEnabled",
         "port", "parameterGroupName", "globalReplicationGroupId"}
    ),
}  # fmt: skip
"""Optional+computed properties that may appear or disappear between roles without a diff."""

_NOT_COMPARED = frozenset({"__defaults", "tagsAll"})


@dataclass(frozen=True)
class Change:
    """What ``pulumi up`` does to one resource."""

    op: Op
    type: str
    name: str
    urn: str
    """Engine URN (the new one; the old one for a delete)."""
    region: str | None
    """Region of the resource (the old region for deletes and replacements)."""
    old_urn: str | None = None
    """Engine URN in the old state (differs from ``urn`` when an alias matched)."""
    changed: tuple[str, ...] = ()
    """Input properties that change."""
    replace_keys: tuple[str, ...] = ()
    """Changed properties that force the replacement ("provider" / "region" included)."""
    explicit: bool = False
    """The replacement was asked for with ``replace_on_changes`` (not a side effect)."""
    delete_before_replace: bool = False
    old: RegisteredResource | None = field(default=None, repr=False, compare=False)
    new: RegisteredResource | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        why = f" ({', '.join(self.replace_keys or self.changed)})" if self.changed else ""
        return f"{self.op} {self.type} {self.name} [{self.region}]{why}"


def _plain(value: Any) -> Any:
    if isinstance(value, SecretValue):
        return _plain(value.reveal())
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _absent(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _provider_urn(res: RegisteredResource) -> str | None:
    return res.provider.rsplit("::", 1)[0] if res.provider else None


def _changed_keys(old: RegisteredResource, new: RegisteredResource) -> tuple[list[str], list[str]]:
    """(changed properties, of which ForceNew) between old and new inputs."""
    ignored = set(new.options.get("ignoreChanges", ()))
    inherited = INHERITED.get(new.type, frozenset())
    force_new = FORCE_NEW.get(new.type, frozenset())
    keys = (set(old.inputs) | set(new.inputs)) - _NOT_COMPARED - ignored
    changed, forcing = [], []
    for key in sorted(keys):
        before, after = _plain(old.inputs.get(key)), _plain(new.inputs.get(key))
        if before == after or (_absent(before) and _absent(after)):
            continue
        if key in inherited and (_absent(before) or _absent(after)):
            continue  # computed: the provider keeps / reads back the value the resource has
        changed.append(key)
        if key in force_new or (key == "region" and new.type.startswith("aws:")):
            forcing.append(key)
    return changed, forcing


def _providers_by_urn(run: ProgramRun) -> dict[str, RegisteredResource]:
    return {r.engine_urn or r.urn: r for r in run.resources if r.type.startswith("pulumi:providers:")}


def diff_runs(before: ProgramRun, after: ProgramRun) -> list[Change]:
    """Every resource's fate when ``after``'s program is applied to ``before``'s state."""
    old_by_urn = {r.engine_urn: r for r in before.resources}
    old_providers, new_providers = _providers_by_urn(before), _providers_by_urn(after)
    matched: set[str] = set()
    changes: list[Change] = []
    for new in after.resources:
        old = old_by_urn.get(new.engine_urn)
        if old is None or old.engine_urn in matched:
            old = next((old_by_urn[a] for a in new.alias_urns if a in old_by_urn and a not in matched), None)
        if old is None:
            changes.append(Change("create", new.type, new.name, new.engine_urn, new.region, new=new))
            continue
        matched.add(old.engine_urn)
        changed, forcing = _changed_keys(old, new)
        old_prov, new_prov = _provider_urn(old), _provider_urn(new)
        if old_prov != new_prov:
            changed.append("provider")
            forcing.append("provider")
        elif old_prov and new_prov:
            before_region = old_providers.get(old_prov)
            after_region = new_providers.get(new_prov)
            if (
                before_region is not None
                and after_region is not None
                and before_region.inputs.get("region") != after_region.inputs.get("region")
            ):
                changed.append("provider.region")
                forcing.append("provider.region")
        explicit_keys = set(new.options.get("replaceOnChanges", ()))
        explicit = bool(explicit_keys & set(changed)) or ("*" in explicit_keys and bool(changed))
        op: Op = "replace" if forcing or explicit else ("update" if changed else "same")
        changes.append(
            Change(
                op,
                new.type,
                new.name,
                new.engine_urn,
                old.region if op == "replace" else new.region,
                old_urn=old.engine_urn,
                changed=tuple(changed),
                replace_keys=tuple(forcing)
                or tuple(k for k in changed if k in explicit_keys or "*" in explicit_keys),
                explicit=explicit,
                delete_before_replace=bool(new.options.get("deleteBeforeReplace")),
                old=old,
                new=new,
            )
        )
    for old in before.resources:
        if old.engine_urn not in matched:
            changes.append(Change("delete", old.type, old.name, old.engine_urn, old.region, old=old))
    return changes


PROTECTED: frozenset[str] = frozenset(
    {RDS_INSTANCE, RDS_CLUSTER, RDS_CLUSTER_INSTANCE, RDS_GLOBAL_CLUSTER, CACHE_GROUP, CACHE_GLOBAL_GROUP,
     BACKUP_VAULT, KMS_KEY}
)  # fmt: skip
"""Databases, caches, vaults and keys: what a failover must never delete or replace as a side effect."""

GLOBAL_TYPES: frozenset[str] = frozenset({RDS_GLOBAL_CLUSTER, CACHE_GLOBAL_GROUP})
"""Multi-region objects: protected whatever region their API calls go to."""


def is_replica(res: RegisteredResource | None) -> bool:
    """An RDS instance that replicates from a source (``replicate_source_db`` set)."""
    return res is not None and res.type == RDS_INSTANCE and not _absent(res.inputs.get("replicateSourceDb"))


def failover_violations(
    changes: Iterable[Change], *, surviving_regions: Sequence[str], old_primary: str, old_primary_kept: bool
) -> list[str]:
    """Why applying a failover's config change would lose or endanger data (empty: it would not).

    Rules (issue 15): in a surviving region no database, cache, vault or key is deleted or
    replaced, Global Database / Global Datastore objects never are, and a replica is re-sourced
    (``replicate_source_db`` changes) only by an explicit replacement (``replace_on_changes``
    with ``delete_before_replace``, since identifiers are fixed). When the old primary region is
    kept, its instances may be rebuilt as replicas of the new writer only that same explicit way,
    and its read replicas of the old writer may go.
    """
    problems: list[str] = []
    surviving = set(surviving_regions)
    for ch in changes:
        # Re-sourced: still a replica, of another source. (The source disappearing is a promotion,
        # which the provider does in place: replacing it would lose the promoted data.)
        resourced = "replicateSourceDb" in ch.changed and is_replica(ch.new)
        if "replicateSourceDb" in ch.changed and not is_replica(ch.new) and ch.op == "replace":
            problems.append(f"{ch.describe()}: a promoted replica is replaced instead of promoted in place")
        if resourced and ch.op != "replace":
            problems.append(
                f"{ch.describe()}: replica re-sourced in place (the provider refuses to elect a new source)"
            )
        if resourced and ch.op == "replace" and not (ch.explicit and ch.delete_before_replace):
            problems.append(
                f"{ch.describe()}: re-sourced replica must be replaced explicitly, delete before replace"
            )
        if ch.type not in PROTECTED or ch.op not in ("delete", "replace"):
            continue
        in_surviving = ch.region in surviving or ch.type in GLOBAL_TYPES
        in_old_primary = ch.region == old_primary and old_primary_kept
        if not (in_surviving or in_old_primary):
            continue  # a dropped region: its resources leave the state, nothing to keep there
        if ch.op == "replace" and resourced and ch.explicit and set(ch.replace_keys) <= {"replicateSourceDb"}:
            continue  # rebuilt as a replica of the new writer: the one deliberate replacement
        if ch.op == "delete" and in_old_primary and not in_surviving and is_replica(ch.old):
            continue  # read replica of the fenced old writer
        if ch.op == "delete" and in_old_primary and not in_surviving and ch.type == RDS_CLUSTER_INSTANCE:
            continue  # an Aurora instance holds no data of its own (the cluster volume stays)
        problems.append(f"{ch.describe()}: {ch.op} in a surviving region")
    return problems


def summary(changes: Iterable[Change]) -> dict[str, int]:
    """Counts per operation (``same`` included)."""
    out = {"create": 0, "update": 0, "replace": 0, "delete": 0, "same": 0}
    for ch in changes:
        out[ch.op] += 1
    return out
