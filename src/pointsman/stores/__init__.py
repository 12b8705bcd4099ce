"""Stores: request log, spend ledger and latency-window backends (memory, SQLite, Redis,
PostgreSQL)."""
