"""Per-type summaries of the settings that matter, for the plan's tree and JSON.

Each summariser turns a registered resource's inputs into a small ordered dict of JSON-friendly
values (references shown as the referenced resource's logical name, secrets as ``[secret]``).
Types without a summariser show no settings: the tree stays readable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from commerce_db.mock_engine import RegisteredResource, SecretValue
from commerce_db.plan.refs import RefIndex
from commerce_db.policy_rules import inputs as rt
from commerce_db.policy_rules.inputs import (
    is_cache_secondary,
    is_cross_region_replica,
    is_rds_replica,
    is_set,
    items,
    mapping,
    number,
    strings,
    truthy,
)

SECRET = "[secret]"
# Input keys that hold credentials even if a program forgot to mark them secret.
SECRET_KEYS = frozenset(
    {"password", "authToken", "secretString", "masterPassword", "passwordWo", "authTokenWo"}
)

Settings = dict[str, Any]
Summariser = Callable[[Mapping[str, Any], RefIndex, RegisteredResource], Settings]


def mask(value: Any, key: str = "") -> Any:
    """``value`` with every :class:`SecretValue` (and credential-named key) replaced by ``[secret]``."""
    if isinstance(value, SecretValue) or (key in SECRET_KEYS and value is not None):
        return SECRET
    if isinstance(value, Mapping):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value


def _num(v: Any) -> int | float | None:
    n = number(v)
    if n is None:
        return None
    return int(n) if n.is_integer() else n


def _clean(d: Settings) -> Settings:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != ""}


def _kms(inp: Mapping[str, Any], key: str, refs: RefIndex) -> str | None:
    v = inp.get(key)
    if not is_set(v):
        return None
    return f"CMK {refs.label(v, ['aws:kms/key:Key'])}"


def _rds_instance(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    replica = is_rds_replica(inp)
    role = "primary"
    if replica:
        role = "cross-region replica" if is_cross_region_replica(inp) else "read replica"
    storage = None
    if is_set(inp.get("allocatedStorage")) or is_set(inp.get("storageType")):
        storage = " ".join(
            str(p)
            for p in (
                inp.get("storageType") or "gp2",
                f"{_num(inp.get('allocatedStorage'))} GiB" if is_set(inp.get("allocatedStorage")) else None,
                f"{_num(inp.get('iops'))} IOPS" if is_set(inp.get("iops")) else None,
                f"{_num(inp.get('storageThroughput'))} MiB/s"
                if is_set(inp.get("storageThroughput"))
                else None,
                f"autoscale to {_num(inp.get('maxAllocatedStorage'))} GiB"
                if is_set(inp.get("maxAllocatedStorage"))
                else None,
            )
            if p
        )
    insights = None
    if truthy(inp.get("performanceInsightsEnabled")):
        insights = f"PI {_num(inp.get('performanceInsightsRetentionPeriod')) or 7}d"
    if is_set(inp.get("databaseInsightsMode")):
        insights = f"{insights + ', ' if insights else ''}Database Insights {inp.get('databaseInsightsMode')}"
    engine = " ".join(str(x) for x in (inp.get("engine"), inp.get("engineVersion")) if is_set(x)) or None
    final = None
    if not replica:
        final = (
            "skipped"
            if truthy(inp.get("skipFinalSnapshot"))
            else (inp.get("finalSnapshotIdentifier") or "unnamed")
        )
    return _clean(
        {
            "role": role,
            "source": refs.label(inp.get("replicateSourceDb"), [rt.RDS_INSTANCE]) if replica else None,
            "engine": engine or ("inherited" if replica else None),
            "class": inp.get("instanceClass"),
            "multiAz": truthy(inp.get("multiAz")),
            "storage": storage,
            "encrypted": truthy(inp.get("storageEncrypted"))
            or (replica and not is_set(inp.get("storageEncrypted"))),
            "kms": _kms(inp, "kmsKeyId", refs)
            or ("AWS-managed" if truthy(inp.get("storageEncrypted")) else None),
            "backupRetentionDays": _num(inp.get("backupRetentionPeriod")),
            "deletionProtection": truthy(inp.get("deletionProtection")) if not replica else None,
            "finalSnapshot": final,
            "public": truthy(inp.get("publiclyAccessible")),
            "insights": insights,
            "monitoringInterval": _num(inp.get("monitoringInterval")),
            "iamAuth": truthy(inp.get("iamDatabaseAuthenticationEnabled")) or None,
            "parameterGroup": refs.label(inp.get("parameterGroupName"), [rt.RDS_PARAMETER_GROUP]),
            "logs": strings(inp.get("enabledCloudwatchLogsExports")) or None,
            "password": SECRET if is_set(inp.get("password")) else None,
        }
    )


def _rds_cluster(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    scaling = inp.get("serverlessv2ScalingConfiguration")
    return _clean(
        {
            "engine": " ".join(str(x) for x in (inp.get("engine"), inp.get("engineVersion")) if is_set(x))
            or None,
            "serverlessV2": f"{_num(scaling.get('minCapacity'))}-{_num(scaling.get('maxCapacity'))} ACU"
            if isinstance(scaling, Mapping)
            else None,
            "encrypted": truthy(inp.get("storageEncrypted")),
            "kms": _kms(inp, "kmsKeyId", refs),
            "backupRetentionDays": _num(inp.get("backupRetentionPeriod")),
            "deletionProtection": truthy(inp.get("deletionProtection")),
            "finalSnapshot": "skipped"
            if truthy(inp.get("skipFinalSnapshot"))
            else (inp.get("finalSnapshotIdentifier") or "unnamed"),
        }
    )


def _rds_cluster_instance(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean(
        {
            "cluster": refs.label(inp.get("clusterIdentifier"), [rt.RDS_CLUSTER]),
            "class": inp.get("instanceClass"),
            "public": truthy(inp.get("publiclyAccessible")),
            "insights": "PI" if truthy(inp.get("performanceInsightsEnabled")) else None,
        }
    )


_KEY_PARAMS = (
    "rds.force_ssl",
    "max_connections",
    "shared_preload_libraries",
    "work_mem",
    "log_min_duration_statement",
)


def _param_group(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    params = {str(p.get("name")): p.get("value") for p in items(inp.get("parameters"))}
    shown = {k: params[k] for k in _KEY_PARAMS if k in params}
    return _clean(
        {
            "family": inp.get("family"),
            **shown,
            "otherParameters": len(params) - len(shown) or None,
        }
    )


def _proxy(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    auths = [
        "/".join(
            str(a.get(k)) for k in ("authScheme", "iamAuth", "clientPasswordAuthType") if is_set(a.get(k))
        )
        for a in items(inp.get("auths"))
    ]
    return _clean(
        {
            "engineFamily": inp.get("engineFamily"),
            "requireTls": truthy(inp.get("requireTls")),
            "defaultAuthScheme": inp.get("defaultAuthScheme"),
            "auth": auths or None,
            "idleClientTimeout": _num(inp.get("idleClientTimeout")),
        }
    )


def _proxy_tg(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    pool = mapping(inp.get("connectionPoolConfig"))
    return _clean(
        {
            "proxy": refs.label(inp.get("dbProxyName"), [rt.RDS_PROXY]),
            "maxConnectionsPercent": _num(pool.get("maxConnectionsPercent")),
            "maxIdleConnectionsPercent": _num(pool.get("maxIdleConnectionsPercent")),
            "borrowTimeout": _num(pool.get("connectionBorrowTimeout")),
        }
    )


def _proxy_target(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    target = inp.get("dbInstanceIdentifier") or inp.get("dbClusterIdentifier")
    return _clean(
        {
            "proxy": refs.label(inp.get("dbProxyName"), [rt.RDS_PROXY]),
            "target": refs.label(target, [rt.RDS_INSTANCE, rt.RDS_CLUSTER]),
        }
    )


def _proxy_endpoint(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean(
        {"proxy": refs.label(inp.get("dbProxyName"), [rt.RDS_PROXY]), "targetRole": inp.get("targetRole")}
    )


def cache_nodes(inp: Mapping[str, Any]) -> int | None:
    """Node count of a replication group (``num_cache_clusters`` or shards x (replicas + 1))."""
    n = number(inp.get("numCacheClusters"))
    if n is not None:
        return int(n)
    shards = number(inp.get("numNodeGroups"))
    replicas = number(inp.get("replicasPerNodeGroup"))
    if shards is not None or replicas is not None:
        return int((shards or 1) * ((replicas or 0) + 1))
    return None


def _cache_group(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    secondary = is_cache_secondary(inp)
    auth = None
    if is_set(inp.get("authToken")):
        auth = f"AUTH token {SECRET} (update strategy {inp.get('authTokenUpdateStrategy') or 'unset'})"
    elif strings(inp.get("userGroupIds")):
        auth = "RBAC user groups"
    elif secondary:
        auth = "inherited"
    gds = (
        f"secondary of {refs.label(inp.get('globalReplicationGroupId'), [rt.CACHE_GLOBAL])}"
        if secondary
        else None
    )
    return _clean(
        {
            "globalDatastore": gds,
            "engine": " ".join(str(x) for x in (inp.get("engine"), inp.get("engineVersion")) if is_set(x))
            or ("inherited" if secondary else None),
            "nodeType": inp.get("nodeType") or ("inherited" if secondary else None),
            "nodes": cache_nodes(inp),
            "multiAz": truthy(inp.get("multiAzEnabled")) if not secondary else None,
            "automaticFailover": truthy(inp.get("automaticFailoverEnabled")) if not secondary else None,
            "atRestEncryption": truthy(inp.get("atRestEncryptionEnabled")) if not secondary else "inherited",
            "kms": _kms(inp, "kmsKeyId", refs),
            "transitEncryption": truthy(inp.get("transitEncryptionEnabled"))
            if not secondary
            else "inherited",
            "auth": auth,
            "snapshotRetentionDays": _num(inp.get("snapshotRetentionLimit")),
        }
    )


def _cache_global(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean(
        {
            "primary": refs.label(inp.get("primaryReplicationGroupId"), [rt.CACHE_GROUP]),
            "suffix": inp.get("globalReplicationGroupIdSuffix"),
            "nodeType": inp.get("cacheNodeType"),
        }
    )


_OPS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


def _alarm(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    dims = mapping(inp.get("dimensions"))
    metric = inp.get("metricName")
    period = _num(inp.get("period"))
    queries = items(inp.get("metricQueries"))
    if not metric and queries:
        names = []
        expression = None
        for q in queries:
            m = mapping(mapping(q.get("metric")).get("metric")) or mapping(q.get("metric"))
            if m.get("metricName") and m.get("metricName") not in names:
                names.append(str(m.get("metricName")))
                dims = dims or mapping(m.get("dimensions"))
            period = period or _num(mapping(q.get("metric")).get("period"))
            if truthy(q.get("returnData")) or (expression is None and q.get("expression")):
                expression = q.get("expression") or expression
        expr = str(expression or "?")
        expr = expr if len(expr) <= 40 else expr[:39] + "…"
        metric = f"math {expr} over {', '.join(names)}"
    threshold = _num(inp.get("threshold"))
    cond = f"{_OPS.get(str(inp.get('comparisonOperator')), inp.get('comparisonOperator'))} {threshold}"
    periods = _num(inp.get("evaluationPeriods"))
    if periods:
        cond += f" for {periods}x{period}s" if period else f" for {periods} periods"
    on = (
        [str(refs.label(v)) for v in dims.values()]
        if len(dims) == 1
        else [f"{k}={refs.label(v)}" for k, v in dims.items()]
    )
    return _clean(
        {
            "metric": f"{inp.get('namespace') or ''} {metric}".strip(),
            "on": ", ".join(on) or None,
            "condition": cond,
            "actions": refs.label(strings(inp.get("alarmActions")), [rt.SNS_TOPIC]) or None,
        }
    )


def _topic(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean({"kms": _kms(inp, "kmsMasterKeyId", refs)})


def _subscription(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean({"protocol": inp.get("protocol"), "topic": refs.label(inp.get("topic"), [rt.SNS_TOPIC])})


def _backup_plan(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    rules = []
    for rule in items(inp.get("rules")):
        lifecycle = mapping(rule.get("lifecycle"))
        text = f"{rule.get('ruleName')}: {rule.get('schedule')} keep {_num(lifecycle.get('deleteAfter'))}d"
        if truthy(rule.get("enableContinuousBackup")):
            text += " (continuous/PITR)"
        text += f" in {refs.label(rule.get('targetVaultName'), [rt.BACKUP_VAULT])}"
        for copy in items(rule.get("copyActions")):
            clc = mapping(copy.get("lifecycle"))
            dest = refs.resolve(copy.get("destinationVaultArn"), [rt.BACKUP_VAULT])
            where = f"{dest.name} ({dest.region})" if dest else copy.get("destinationVaultArn")
            text += f"; copy to {where} keep {_num(clc.get('deleteAfter'))}d"
        rules.append(text)
    return _clean({"rules": rules})


def _backup_vault(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean({"kms": _kms(inp, "kmsKeyArn", refs)})


def _backup_selection(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean({"resources": refs.label(strings(inp.get("resources"))) or None})


def _kms_key(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean(
        {
            "rotation": truthy(inp.get("enableKeyRotation")),
            "multiRegion": truthy(inp.get("multiRegion")) or None,
            "deletionWindowDays": _num(inp.get("deletionWindowInDays")),
        }
    )


def _sg_rule_text(block: Mapping[str, Any], proto_key: str = "protocol") -> str:
    proto = block.get(proto_key) or "tcp"
    lo, hi = _num(block.get("fromPort")), _num(block.get("toPort"))
    ports = "all" if str(proto) in ("-1", "all") else (f"{lo}" if lo == hi else f"{lo}-{hi}")
    return f"{proto} {ports}"


def _sources(block: Mapping[str, Any], refs: RefIndex) -> list[str]:
    src: list[str] = []
    src += [f"sg:{refs.label(s, [rt.SG])}" for s in strings(block.get("securityGroups"))]
    for key in ("sourceSecurityGroupId", "referencedSecurityGroupId"):
        if is_set(block.get(key)):
            src.append(f"sg:{refs.label(block.get(key), [rt.SG])}")
    for key in ("cidrBlocks", "ipv6CidrBlocks", "cidrIpv4", "cidrIpv6"):
        src += strings(block.get(key))
    if truthy(block.get("self")):
        src.append("self")
    return src


def _sg(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    ingress = [
        f"{_sg_rule_text(b)} from {', '.join(_sources(b, refs)) or '?'}" for b in items(inp.get("ingress"))
    ]
    return _clean({"ingress": ingress or None})


def _sg_rule(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    if r.type == rt.SG_RULE:
        direction = inp.get("type")
        text = _sg_rule_text(inp)
    else:
        direction = "ingress" if r.type == rt.SG_INGRESS_RULE else "egress"
        text = _sg_rule_text(inp, "ipProtocol")
    return _clean(
        {
            "rule": f"{direction} {text} from {', '.join(_sources(inp, refs)) or '?'}",
            "group": refs.label(inp.get("securityGroupId"), [rt.SG]),
        }
    )


def _bucket_sse(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    algo = []
    for rule in items(inp.get("rules")):
        d = rule.get("applyServerSideEncryptionByDefault")
        if isinstance(d, Mapping):
            algo.append(str(d.get("sseAlgorithm")) + (" (CMK)" if is_set(d.get("kmsMasterKeyId")) else ""))
    return _clean({"bucket": refs.label(inp.get("bucket"), [rt.S3_BUCKET]), "sse": algo or None})


def _public_block(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    return _clean(
        {
            "bucket": refs.label(inp.get("bucket"), [rt.S3_BUCKET]),
            "allBlocked": all(truthy(inp.get(f)) for f in flags),
        }
    )


def _versioning(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    cfg = mapping(inp.get("versioningConfiguration"))
    return _clean({"bucket": refs.label(inp.get("bucket"), [rt.S3_BUCKET]), "status": cfg.get("status")})


def _trail(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean(
        {
            "bucket": refs.label(inp.get("s3BucketName"), [rt.S3_BUCKET]),
            "multiRegion": truthy(inp.get("isMultiRegionTrail")),
            "logFileValidation": truthy(inp.get("enableLogFileValidation")),
            "kms": _kms(inp, "kmsKeyId", refs),
        }
    )


def _secret(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean({"kms": _kms(inp, "kmsKeyId", refs)})


def _rotation(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    rules = mapping(inp.get("rotationRules"))
    return _clean(
        {
            "secret": refs.label(inp.get("secretId")),
            "everyDays": _num(rules.get("automaticallyAfterDays")),
            "schedule": rules.get("scheduleExpression"),
        }
    )


def _log_group(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean({"name": inp.get("name"), "retentionDays": _num(inp.get("retentionInDays"))})


def _provider(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean({"region": inp.get("region")})


def _vpc(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean({"cidr": inp.get("cidrBlock"), "az": inp.get("availabilityZone")})


def _subnet_group(inp: Mapping[str, Any], refs: RefIndex, r: RegisteredResource) -> Settings:
    return _clean({"subnets": len(strings(inp.get("subnetIds"))) or None})


SUMMARISERS: dict[str, Summariser] = {
    rt.RDS_INSTANCE: _rds_instance,
    rt.RDS_CLUSTER: _rds_cluster,
    rt.RDS_CLUSTER_INSTANCE: _rds_cluster_instance,
    rt.RDS_PARAMETER_GROUP: _param_group,
    rt.RDS_CLUSTER_PARAMETER_GROUP: _param_group,
    rt.RDS_PROXY: _proxy,
    rt.RDS_PROXY_TARGET_GROUP: _proxy_tg,
    rt.RDS_PROXY_TARGET: _proxy_target,
    rt.RDS_PROXY_ENDPOINT: _proxy_endpoint,
    rt.CACHE_GROUP: _cache_group,
    rt.CACHE_GLOBAL: _cache_global,
    rt.METRIC_ALARM: _alarm,
    rt.SNS_TOPIC: _topic,
    "aws:sns/topicSubscription:TopicSubscription": _subscription,
    rt.BACKUP_PLAN: _backup_plan,
    rt.BACKUP_VAULT: _backup_vault,
    rt.BACKUP_SELECTION: _backup_selection,
    "aws:kms/key:Key": _kms_key,
    rt.SG: _sg,
    rt.SG_RULE: _sg_rule,
    rt.SG_INGRESS_RULE: _sg_rule,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _sg_rule,
    rt.S3_SSE[0]: _bucket_sse,
    rt.S3_SSE[1]: _bucket_sse,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _public_block,
    "aws:s3/bucketVersioning:BucketVersioning": _versioning,
    "aws:s3/bucketVersioningV2:BucketVersioningV2": _versioning,
    "aws:cloudtrail/trail:Trail": _trail,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:secretsmanager/secretRotation:SecretRotation": _rotation,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "pulumi:providers:aws": _provider,
    "aws:ec2/vpc:Vpc": _vpc,
    "aws:ec2/subnet:Subnet": _vpc,
    "aws:rds/subnetGroup:SubnetGroup": _subnet_group,
    "aws:elasticache/subnetGroup:SubnetGroup": _subnet_group,
}


def summarise(resource: RegisteredResource, refs: RefIndex) -> Settings:
    """The settings that matter for ``resource`` (empty for types without a summariser)."""
    fn = SUMMARISERS.get(resource.type)
    if fn is None:
        return {}
    try:
        return mask(fn(resource.inputs, refs, resource))
    except (TypeError, ValueError, AttributeError) as exc:  # odd inputs must not break the plan
        return {"note": f"settings unavailable ({exc.__class__.__name__})"}
