"""Typed Pulumi ComponentResources for the commerce-db database tier."""
