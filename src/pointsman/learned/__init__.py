"""Learned routers: embedding kNN, logistic regression, matrix factorisation, semantic intent
routes, an LLM-as-router and a hybrid cascade. They register by name in
:mod:`pointsman.learned.register`; this package's ``__init__`` imports nothing heavy so the
config module can import :mod:`pointsman.learned.semantic_config` cheaply.
"""
