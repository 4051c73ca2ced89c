"""Entry point of the ``commerce`` Pulumi plugin: serves the multi-language component wrappers.

The Pulumi CLI's Python language host runs ``python <this directory> ENGINE_ADDRESS`` inside the
plugin's ``venv``; the wrappers come from the installed ``commerce-db`` distribution.
"""

from commerce_db_components.multilang import serve

if __name__ == "__main__":
    serve()
