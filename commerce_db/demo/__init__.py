"""``commerce-db demo``: the data plane on one machine under a short flash-sale traffic mix."""
