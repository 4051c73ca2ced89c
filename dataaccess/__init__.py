"""asyncio data access (asyncpg + redis-py) for the commerce-db tier."""
