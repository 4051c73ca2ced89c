"""Sub-commands of the ``commerce-db`` console script, one module each."""
