"""Complexity signals: each scores a request from 0 (trivial) to 100 (frontier-hard)."""

from pointsman.signals.base import ComplexityScorer, Signal

__all__ = ["ComplexityScorer", "Signal"]
