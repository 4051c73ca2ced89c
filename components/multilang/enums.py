"""Enums of the multi-language schema.

The frozen Args take ``Literal`` strings, which the schema analyzer cannot describe; each enum here
carries the same values (``coerce`` turns members back into the strings). Member docstrings become
the enum value descriptions of the schema. No ``from __future__ import annotations`` in this
package: the analyzer reads raw annotations.
"""

import enum


class EngineMode(enum.Enum):
    """How PostgreSQL is deployed."""

    RDS = "rds"
    """RDS PostgreSQL instances: a Multi-AZ primary plus read replicas."""
    AURORA = "aurora"
    """An Aurora PostgreSQL cluster with a writer and readers."""


class StorageType(enum.Enum):
    """RDS storage type."""

    GP3 = "gp3"
    """General purpose SSD (baseline 3,000 IOPS; IOPS and throughput settable from 400 GiB)."""
    IO2 = "io2"
    """Provisioned IOPS SSD (needs iops)."""


class DatabaseInsightsMode(enum.Enum):
    """CloudWatch Database Insights mode."""

    STANDARD = "standard"
    """Standard mode."""
    ADVANCED = "advanced"
    """Advanced mode (needs Performance Insights retention of at least 465 days)."""


class CacheEngine(enum.Enum):
    """ElastiCache engine."""

    REDIS = "redis"
    """Redis OSS."""
    VALKEY = "valkey"
    """Valkey."""


class AuthTokenUpdateStrategy(enum.Enum):
    """How a changed ElastiCache AUTH token is applied."""

    ROTATE = "ROTATE"
    """Keep the old token valid next to the new one until the next SET."""
    SET = "SET"
    """Replace the token at once."""
    DELETE = "DELETE"
    """Remove token authentication."""


class ProxyIamAuth(enum.Enum):
    """Client IAM authentication for the proxy's secret-based login."""

    REQUIRED = "REQUIRED"
    """Clients must present an IAM token."""
    DISABLED = "DISABLED"
    """Clients log in with the database password."""


class ProxyDefaultAuthScheme(enum.Enum):
    """How the proxy itself authenticates to the database."""

    NONE = "NONE"
    """With the credentials in the Secrets Manager secret."""
    IAM_AUTH = "IAM_AUTH"
    """End-to-end IAM: no secret lookup per connection."""


class SubscriptionProtocol(enum.Enum):
    """SNS protocol of an alarm topic subscription."""

    EMAIL = "email"
    """E-mail (stays pending until the recipient confirms)."""
    EMAIL_JSON = "email-json"
    """E-mail with the JSON message."""
    HTTPS = "https"
    """HTTPS endpoint (https://...)."""
    SQS = "sqs"
    """SQS queue (ARN)."""
    LAMBDA = "lambda"
    """Lambda function (ARN)."""
    SMS = "sms"
    """SMS (phone number)."""
