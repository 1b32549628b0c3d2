"""Subcommands of ``feedfed`` grouped by concern; each module has ``register(sub)``."""
