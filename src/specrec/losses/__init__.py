"""Loss registry and recipes.

A loss is a small callable on a batch of embeddings, `loss(users, positives, negatives) -> {part: tensor}`:
users and positives are (B x d), negatives (B x N x d) or None. It declares how many sampled negatives it
needs in `n_negatives`. A *recipe* is a named configuration of a loss in the config file
(`recipes: {bpr: {loss: bpr, n_negatives: 1}}`). Adding a loss = one module + one import line below.
"""

from __future__ import annotations

from collections.abc import Mapping

from specrec.registry import Registry

LOSSES: Registry = Registry("loss")

from specrec.losses import bpr, ssm  # noqa: E402,F401  (registration side effects)


def build_loss(recipe: Mapping):
    """Instantiate the loss of a recipe: {'loss': name, **its parameters}."""
    params = dict(recipe)
    name = params.pop("loss")
    try:
        return LOSSES[name](**params)
    except TypeError as error:
        raise ValueError(f"bad parameters for loss {name!r}: {error}") from None


__all__ = ["LOSSES", "build_loss"]
