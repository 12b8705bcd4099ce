"""Routing policies: how candidates are scored and one is chosen."""
