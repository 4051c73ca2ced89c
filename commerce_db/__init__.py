"""commerce-db tooling: offline plan, local demo, benchmarks and operator commands."""

__version__ = "0.2.0"
