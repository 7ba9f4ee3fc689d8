"""Interactive Brokers (via ib_async; ib_insync also works): ``adapter`` (connection lifecycle, orders, account),
``streams`` (quotes), ``events`` (exactly-once fills and order updates), ``convert`` / ``parse`` (pure mappings),
``sdk`` (loading the SDK, routing its logs), ``config``."""
