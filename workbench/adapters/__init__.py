"""Broker adapters: the async contract (:mod:`.base`), the factory, and one package per broker."""
