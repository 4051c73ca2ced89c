"""asyncio data access (asyncpg + redis-py) for the commerce-db tier.

    from dataaccess import DataAccess, Settings, OutOfStock, NotFound

    da = await DataAccess.connect(Settings(writer_dsn=..., reader_dsns=[...], redis_url=...))
    await da.migrate()

See docs/dataaccess.md.
"""

from .cache import CacheAside, CacheStats
from .credentials import CredentialProvider, IamAuthTokenProvider, SecretsManagerCredentials, StaticPassword
from .errors import (
    Conflict,
    DataAccessError,
    InvalidInput,
    NotFound,
    OutcomeUnknown,
    OutOfStock,
    PoolExhausted,
    QueueFull,
    Unavailable,
    UnknownReference,
    ValidationError,
    from_postgres,
)
from .facade import DataAccess
from .models import Order, OrderLine, Product, User
from .retry import RetryPolicy
from .settings import Settings, SettingsError

__all__ = [
    "CacheAside",
    "CacheStats",
    "Conflict",
    "CredentialProvider",
    "DataAccess",
    "DataAccessError",
    "IamAuthTokenProvider",
    "InvalidInput",
    "NotFound",
    "Order",
    "OrderLine",
    "OutOfStock",
    "OutcomeUnknown",
    "PoolExhausted",
    "Product",
    "QueueFull",
    "RetryPolicy",
    "SecretsManagerCredentials",
    "Settings",
    "SettingsError",
    "StaticPassword",
    "Unavailable",
    "UnknownReference",
    "User",
    "ValidationError",
    "from_postgres",
]
