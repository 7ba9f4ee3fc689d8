"""Offline emulators of broker gateways, backed by the paper engine."""
