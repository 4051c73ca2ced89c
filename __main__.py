"""Pulumi entry point: the whole program lives in components.program."""

from commerce_db_components.program import run

run()
