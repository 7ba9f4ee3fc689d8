"""Alpaca (alpaca-py). The adapter module imports the SDK; this package and its ``config`` do not."""
