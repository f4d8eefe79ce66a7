"""Recipes: a named loss with its sampler, optimiser and regularisers, as the papers train them.

The config defines base recipes (`recipes: {directau: {loss: align, regularizers: {uniformity: 1.0}}}`) and
composable regularisers (`regularizers: {sr_warm: {regularizer: stable_rank, gamma: 1.0, warm_epochs: 5}}`);
a run names `base+addon+...` (e.g. `directau+sr_warm`). `resolve_recipe` turns the name into one plain dict
(stored with the run, part of its fingerprint); `Recipe.from_resolved` builds the callables.

Phases follow StableRankReg's warm start: a recipe with a warm regulariser trains its first `warm_epochs`
epochs (or, with `warm_until: stall`, until validation stops improving) with the base loss plus the warm
regularisers only; afterwards with the base loss plus its own regularisers (DirectAU's uniformity). Add-ons
without `warm_epochs` apply throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from specrec.losses import LOSSES, REGULARIZERS, Batch

RECIPE_KEYS = (
    "init_std",
    "n_negatives",
    "sampler",
    "regularizers",
    "optimizer",
    "lr",
    "weight_decay",
    "lr_decay",
    "batching",
    "batch_size",
)


class RecipeError(ValueError):
    pass


def resolve_recipe(name: str, recipes: dict, addons: dict) -> dict:
    """`base+addon+...` -> {"loss": {...}, "regularizers": [...], "warm": {...} | None, ...}."""
    base, *extra = name.split("+")
    if base not in recipes:
        raise RecipeError(f"unknown recipe {base!r} in {name!r}; valid names: {', '.join(sorted(recipes))}")
    entry = dict(recipes[base])
    loss = {"name": entry.pop("loss")} | {k: v for k, v in entry.items() if k not in RECIPE_KEYS}
    regularizers = [
        {"name": reg, "gamma": float(gamma), "phase": "tune"}
        for reg, gamma in entry.get("regularizers", {}).items()
    ]
    warm = None
    for addon in extra:
        if addon not in addons:
            valid = ", ".join(sorted(addons))
            raise RecipeError(f"unknown regularizer {addon!r} in {name!r}; valid names: {valid}")
        spec = addons[addon]
        is_warm = "warm_epochs" in spec
        regularizers.append(
            {
                "name": spec["regularizer"],
                "gamma": float(spec.get("gamma", 1.0)),
                "phase": "warm" if is_warm else "all",
            }
        )
        if is_warm:
            warm = {"epochs": int(spec["warm_epochs"]), "until": spec.get("warm_until", "epochs")}
    return {
        "loss": loss,
        "regularizers": regularizers,
        "warm": warm,
        **{key: entry[key] for key in RECIPE_KEYS if key in entry and key != "regularizers"},
    }


@dataclass
class Term:
    name: str
    function: object
    gamma: float
    phase: str  # "tune": outside the warm phase; "warm": only in it; "all": always


@dataclass
class Recipe:
    loss: object
    terms: list[Term] = field(default_factory=list)
    warm_epochs: int = 0
    warm_until: str = "epochs"
    n_negatives: int = 0
    sampler: str = "uniform"
    batching: str = "edges"
    batch_size: int | None = None
    init_std: float | None = None
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    lr_decay: float = 1.0

    @classmethod
    def from_resolved(cls, resolved: dict) -> Recipe:
        params = dict(resolved["loss"])
        name = params.pop("name")
        try:
            loss = LOSSES[name](**params)
        except TypeError as error:
            raise RecipeError(f"bad parameters for loss {name!r}: {error}") from None
        terms = [
            Term(r["name"], REGULARIZERS[r["name"]], r["gamma"], r["phase"]) for r in resolved["regularizers"]
        ]
        warm = resolved.get("warm") or {}
        options = {key: resolved[key] for key in RECIPE_KEYS if key in resolved and key != "regularizers"}
        recipe = cls(
            loss=loss,
            terms=terms,
            warm_epochs=warm.get("epochs", 0),
            warm_until=warm.get("until", "epochs"),
            **options,
        )
        if getattr(loss, "needs_negatives", False) and recipe.n_negatives < 1:
            raise RecipeError(f"loss {name!r} needs sampled negatives: set n_negatives >= 1")
        return recipe

    @property
    def has_warm_phase(self) -> bool:
        return self.warm_epochs > 0

    def parts(self, batch: Batch, warm: bool) -> dict[str, torch.Tensor]:
        """Named loss parts of one batch: the base loss, then gamma * (reg(users) + reg(items)) / 2 for every
        regulariser active in this phase."""
        parts = self.loss(batch)
        for term in self.terms:
            if term.phase == "all" or (term.phase == "warm") == warm:
                value = (term.function(batch.unique_user_emb()) + term.function(batch.unique_item_emb())) / 2
                parts[f"{term.name}_{term.phase}"] = term.gamma * value
        return parts
