"""How pulumi-aws resources are spelt in Terraform: resource types, attribute names, block shapes.

pulumi-aws is bridged from the Terraform AWS provider, so every resource and attribute has a
Terraform name. Three facts are needed to write a registered resource as Terraform would:

* the Terraform resource type of each Pulumi type token (:data:`TF_TYPES`);
* attribute names: Pulumi's camelCase is Terraform's snake_case, except that the bridge pluralises
  list blocks (``rule`` -> ``rules``): :data:`RENAMED` undoes that per Terraform type;
* block shapes: a Terraform block with ``MaxItems: 1`` is a single object in Pulumi but still a
  list of one in Terraform's JSON. That is read from the installed pulumi-aws SDK's own type
  annotations (a ``Sequence[...Args]`` field is a list block, a bare ``...Args`` field a
  ``MaxItems: 1`` block, a ``Mapping`` a map attribute), so it follows the installed version.

Source of :data:`TF_TYPES` and :data:`RENAMED`: ``provider/cmd/pulumi-resource-aws/bridge-metadata.json``
of pulumi/pulumi-aws (``renames.resources`` and ``renames.renamedProperties``; commit 07d08a0, the
7.x line), which records the Terraform name behind every Pulumi token and renamed property.
A type missing here raises :class:`UnmappedTypeError`: the export never guesses a type.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from dataclasses import dataclass
from typing import Any, Literal

AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"
RANDOM_PROVIDER = "registry.terraform.io/hashicorp/random"

# Pulumi type token -> Terraform resource type (bridge-metadata.json, renames.resources).
TF_TYPES: dict[str, str] = {
    "aws:backup/plan:Plan": "aws_backup_plan",
    "aws:route53/healthCheck:HealthCheck": "aws_route53_health_check",
    "aws:route53/record:Record": "aws_route53_record",
    "aws:route53/zone:Zone": "aws_route53_zone",
    "aws:route53/zoneAssociation:ZoneAssociation": "aws_route53_zone_association",
    "aws:route53recoverycontrol/cluster:Cluster": "aws_route53recoverycontrolconfig_cluster",
    "aws:route53recoverycontrol/controlPanel:ControlPanel": "aws_route53recoverycontrolconfig_control_panel",
    "aws:route53recoverycontrol/routingControl:RoutingControl": (
        "aws_route53recoverycontrolconfig_routing_control"
    ),
    "aws:route53recoverycontrol/safetyRule:SafetyRule": "aws_route53recoverycontrolconfig_safety_rule",
    "aws:backup/restoreTestingPlan:RestoreTestingPlan": "aws_backup_restore_testing_plan",
    "aws:backup/restoreTestingSelection:RestoreTestingSelection": "aws_backup_restore_testing_selection",
    "aws:backup/selection:Selection": "aws_backup_selection",
    "aws:backup/vault:Vault": "aws_backup_vault",
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration": "aws_backup_vault_lock_configuration",
    "aws:cloudtrail/trail:Trail": "aws_cloudtrail",
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": "aws_cloudwatch_composite_alarm",
    "aws:cloudwatch/dashboard:Dashboard": "aws_cloudwatch_dashboard",
    "aws:cloudwatch/eventRule:EventRule": "aws_cloudwatch_event_rule",
    "aws:cloudwatch/eventTarget:EventTarget": "aws_cloudwatch_event_target",
    "aws:cloudwatch/logGroup:LogGroup": "aws_cloudwatch_log_group",
    "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter": "aws_cloudwatch_log_subscription_filter",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "aws_cloudwatch_metric_alarm",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup": (
        "aws_elasticache_global_replication_group"
    ),
    "aws:elasticache/parameterGroup:ParameterGroup": "aws_elasticache_parameter_group",
    "aws:elasticache/replicationGroup:ReplicationGroup": "aws_elasticache_replication_group",
    "aws:elasticache/subnetGroup:SubnetGroup": "aws_elasticache_subnet_group",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": "aws_kinesis_firehose_delivery_stream",
    "aws:kms/alias:Alias": "aws_kms_alias",
    "aws:kms/key:Key": "aws_kms_key",
    "aws:kms/replicaKey:ReplicaKey": "aws_kms_replica_key",
    "aws:lambda/function:Function": "aws_lambda_function",
    "aws:lambda/invocation:Invocation": "aws_lambda_invocation",
    "aws:rds/cluster:Cluster": "aws_rds_cluster",
    "aws:rds/clusterInstance:ClusterInstance": "aws_rds_cluster_instance",
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": "aws_rds_cluster_parameter_group",
    "aws:rds/eventSubscription:EventSubscription": "aws_db_event_subscription",
    "aws:rds/globalCluster:GlobalCluster": "aws_rds_global_cluster",
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": (
        "aws_db_instance_automated_backups_replication"
    ),
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/proxy:Proxy": "aws_db_proxy",
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": "aws_db_proxy_default_target_group",
    "aws:rds/proxyEndpoint:ProxyEndpoint": "aws_db_proxy_endpoint",
    "aws:rds/proxyTarget:ProxyTarget": "aws_db_proxy_target",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:s3/bucket:Bucket": "aws_s3_bucket",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "aws_s3_bucket_lifecycle_configuration"
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "aws_s3_bucket_ownership_controls",
    "aws:s3/bucketPolicy:BucketPolicy": "aws_s3_bucket_policy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "aws_s3_bucket_public_access_block",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "aws_s3_bucket_server_side_encryption_configuration"
    ),
    "aws:s3/bucketVersioning:BucketVersioning": "aws_s3_bucket_versioning",
    "aws:secretsmanager/secret:Secret": "aws_secretsmanager_secret",
    "aws:secretsmanager/secretRotation:SecretRotation": "aws_secretsmanager_secret_rotation",
    "aws:secretsmanager/secretVersion:SecretVersion": "aws_secretsmanager_secret_version",
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": (
        "aws_serverlessapplicationrepository_cloudformation_stack"
    ),
    "aws:sns/topic:Topic": "aws_sns_topic",
    "aws:sns/topicPolicy:TopicPolicy": "aws_sns_topic_policy",
    "aws:sns/topicSubscription:TopicSubscription": "aws_sns_topic_subscription",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "aws_vpc_security_group_egress_rule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "aws_vpc_security_group_ingress_rule",
    "random:index/randomPassword:RandomPassword": "random_password",
}

# Terraform type -> {pluralised Pulumi (snake_case) name: Terraform block name}; applies at any
# depth inside that resource (bridge-metadata.json, renames.renamedProperties).
RENAMED: dict[str, dict[str, str]] = {
    "aws_backup_plan": {
        "rules": "rule",
        "copy_actions": "copy_action",
        "advanced_backup_settings": "advanced_backup_setting",
    },
    "aws_backup_selection": {"selection_tags": "selection_tag", "conditions": "condition"},
    "aws_cloudtrail": {
        "event_selectors": "event_selector",
        "data_resources": "data_resource",
        "advanced_event_selectors": "advanced_event_selector",
        "insight_selectors": "insight_selector",
        "field_selectors": "field_selector",
    },
    "aws_cloudwatch_metric_alarm": {"metric_queries": "metric_query"},
    "aws_db_parameter_group": {"parameters": "parameter"},
    "aws_rds_cluster_parameter_group": {"parameters": "parameter"},
    "aws_elasticache_parameter_group": {"parameters": "parameter"},
    "aws_elasticache_replication_group": {"log_delivery_configurations": "log_delivery_configuration"},
    "aws_db_proxy": {"auths": "auth"},
    "aws_s3_bucket_lifecycle_configuration": {
        "rules": "rule",
        "transitions": "transition",
        "noncurrent_version_transitions": "noncurrent_version_transition",
    },
    "aws_s3_bucket_server_side_encryption_configuration": {"rules": "rule"},
    "aws_secretsmanager_secret": {"replicas": "replica"},
    "aws_iam_role": {"inline_policies": "inline_policy"},
    "aws_vpc_endpoint": {"subnet_configurations": "subnet_configuration"},
    "aws_route53_zone": {"vpcs": "vpc"},
    "aws_route53_record": {
        "aliases": "alias",
        "weighted_routing_policies": "weighted_routing_policy",
        "failover_routing_policies": "failover_routing_policy",
        "geolocation_routing_policies": "geolocation_routing_policy",
        "latency_routing_policies": "latency_routing_policy",
    },
}

Kind = Literal["scalar", "map", "list_block", "block"]


class UnmappedTypeError(KeyError):
    """A registered Pulumi type has no Terraform type in :data:`TF_TYPES`."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token

    def __str__(self) -> str:
        return (
            f"no Terraform type known for {self.token}: add it to commerce_db.plan.tfschema.TF_TYPES "
            "(from pulumi-aws bridge-metadata.json renames.resources)"
        )


@dataclass(frozen=True)
class Field:
    """One argument of a resource or nested block, as the SDK declares it."""

    kind: Kind
    block: Any = None
    """For ``block``/``list_block``: the SDK ``...Args`` class describing the nested block."""


def tf_type(token: str) -> str:
    """The Terraform resource type of a Pulumi type token (raises :class:`UnmappedTypeError`)."""
    try:
        return TF_TYPES[token]
    except KeyError:
        raise UnmappedTypeError(token) from None


def provider_of(token: str) -> str:
    """The Terraform provider address that owns ``token``'s resource."""
    return RANDOM_PROVIDER if token.startswith("random:") else AWS_PROVIDER


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """``kmsKeyId`` -> ``kms_key_id`` (Pulumi names are the bridge's camelCase of Terraform's)."""
    return _CAMEL.sub(r"_\1", name).lower()


def tf_attribute(tf_type_name: str, python_name: str) -> str:
    """The Terraform name of SDK field ``python_name`` inside a ``tf_type_name`` resource."""
    return RENAMED.get(tf_type_name, {}).get(python_name, python_name)


_ARGS_REF = re.compile(r"ForwardRef\('(\w+Args)'\)")


def _classify(annotation: Any) -> tuple[Kind, str | None]:
    text = str(annotation)
    m = _ARGS_REF.search(text)
    if m:
        seq = text.find("Sequence[")
        return ("list_block" if 0 <= seq < m.start() else "block"), m.group(1)
    if "Mapping[" in text:
        return "map", None
    return "scalar", None


def _fields(func: Any, module: Any) -> dict[str, Field]:
    out: dict[str, Field] = {}
    for name, param in inspect.signature(func).parameters.items():
        if name in ("self", "resource_name", "opts", "__self__", "__props__"):
            continue
        kind, args_name = _classify(param.annotation)
        block = getattr(module, args_name, None) if args_name else None
        if kind in ("block", "list_block") and block is None:
            kind = "scalar"
        out[name] = Field(kind, block)
    return out


@functools.cache
def resource_fields(token: str) -> dict[str, Field]:
    """The SDK's declared arguments of resource ``token`` by snake_case name (empty if unknown)."""
    pkg, _, rest = token.partition(":")
    module_path, _, cls_name = rest.partition(":")
    mod_name = module_path.split("/")[0]
    try:
        if pkg == "aws":
            module = importlib.import_module(f"pulumi_aws.{'lambda_' if mod_name == 'lambda' else mod_name}")
        elif pkg == "random":
            module = importlib.import_module("pulumi_random")
        else:
            return {}
        cls = getattr(module, cls_name)
    except (ImportError, AttributeError):
        return {}
    return _fields(cls._internal_init, module)


@functools.cache
def has_attribute(token: str, python_name: str) -> bool:
    """Whether resource ``token`` has an output attribute ``python_name`` in the installed SDK."""
    pkg, _, rest = token.partition(":")
    module_path, _, cls_name = rest.partition(":")
    try:
        submodule = module_path.split("/")[0]
        submodule = "lambda_" if submodule == "lambda" else submodule  # a Python keyword
        module = importlib.import_module(f"pulumi_aws.{submodule}" if pkg == "aws" else "pulumi_random")
        cls = getattr(module, cls_name)
    except (ImportError, AttributeError):
        return False
    return isinstance(getattr(cls, python_name, None), property)


@functools.cache
def block_fields(block: Any) -> dict[str, Field]:
    """The declared fields of a nested ``...Args`` block class."""
    module = importlib.import_module(block.__module__)
    return _fields(block.__init__, module)
