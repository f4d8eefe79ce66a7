"""Model registry. A model maps (n_users, n_items, train interactions, params) to user and item tables.

Every model exposes `forward() -> (user_table, item_table)`; scores are their dot products, so the
training loop, the evaluator and the spectral analysis never need to know which model they handle.
Adding a model = one module with a registered class + one import line below.
"""

from specrec.registry import Registry

MODELS: Registry = Registry("model")

from specrec.models import kgcn, lightgcn, mf, popularity  # noqa: E402,F401  (registration side effects)

__all__ = ["MODELS"]
