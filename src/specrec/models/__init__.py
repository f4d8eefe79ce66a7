"""Model registry. A model maps (n_users, n_items, train interactions, params) to user and item tables.

Every model exposes `forward() -> (user_table, item_table)`; scores are their dot products, so the
training loop, the evaluator and the spectral analysis never need to know which model they handle.
Adding a model = one module with a registered class + one import line below.
"""

import inspect

from specrec.registry import Registry

MODELS: Registry = Registry("model")

# what the training job passes to every model from the data and the train settings, never from model_options
SUPPLIED = frozenset(
    "n_users n_items dim init_std train_users train_items adj_entity adj_relation n_relations".split()
)


def option_names(name: str) -> list[str]:
    """The keys `model_options` may set for a model: its constructor's keyword parameters that the training
    job does not supply, and the options the job reads for it (`job_options`, e.g. KGCN's n_neighbours)."""
    model = MODELS[name]
    parameters = inspect.signature(model.__init__).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    own = [p.name for p in parameters if p.kind in named and p.name != "self" and p.name not in SUPPLIED]
    return sorted([*own, *getattr(model, "job_options", ())])


from specrec.models import kgcn, lightgcn, mf, popularity  # noqa: E402,F401  (registration side effects)

__all__ = ["MODELS", "option_names"]
