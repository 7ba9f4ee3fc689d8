"""Interactive Brokers (via ib_async; ib_insync also works). Work in progress: config, mapping tables
and the historical-data pacer are here; the adapter itself lands next (see the open issue)."""
