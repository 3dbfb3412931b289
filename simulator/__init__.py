"""Numpy simulation core: projects a compiled rulebook over a merchant population.

Depends on `rules` only; nothing here knows about gRPC or durable_rules.
"""
