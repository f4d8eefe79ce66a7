"""Recipes: a named loss with its sampler, optimiser and regularisers, as the papers train them.

The config defines base recipes (`recipes: {directau: {loss: align, regularizers: {uniformity: 1.0}}}`) and
composable regularisers (`regularizers: {sr_warm: {regularizer: stable_rank, gamma: 1.0, warm_epochs: 5}}`);
a run names `base+addon+...~grid setting` (e.g. `directau+sr_warm`). `resolve` turns the name into one plain
dict (stored with the run, part of its fingerprint); `Recipe.from_resolved` builds the callables.

Phases follow StableRankReg's warm start: a recipe with a warm regulariser trains its first `warm_epochs`
epochs (one more with `warm_count_from: 0`, as its code counts them; or, with `warm_until: stall`, until
validation stops improving) with the base loss plus the warm regularisers only; afterwards with the base
loss plus its own regularisers (DirectAU's uniformity). Add-ons without `warm_epochs` apply throughout.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from specrec.losses import LOSSES, REGULARIZERS, Batch, TermContext, loss_parameters
from specrec.runs import RunName
from specrec.tuning import configured_grids, setting_values

# a recipe's own values of `train:` settings (DirectSpec's batch size and learning rate, StableRankReg's
# N(0, 1) initialisation): they replace the config's for the recipe's runs, in one place (train.RunSpec)
SETTING_KEYS = ("init_std", "lr", "weight_decay", "batch_size", "epochs")
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
    "epochs",
)


# the recipe keys a Recipe keeps (the settings reach the run through RunSpec, the terms are built apart)
OWN_KEYS = tuple(key for key in RECIPE_KEYS if key not in ("regularizers", *SETTING_KEYS))

# the keys of an add-on that schedule it; the rest configures the term itself
ADDON_KEYS = ("regularizer", "gamma", "warm_epochs", "warm_until", "warm_count_from")


NO_RECIPE = "none"  # the recipe of models that are fitted, not trained (popularity)


class RecipeError(ValueError):
    pass


def resolve(config: dict, name: str, model: str | None = None) -> dict:
    """The one resolve step from a config to a run's recipe: a run name such as `directau+sr_warm` or
    `bpr~lr=0.01` with its grid setting written in, its add-ons and its `per_model` overrides for `model`,
    as the plain dict that the train job receives, stores in metrics.json and builds with
    `Recipe.from_resolved` ({} for `none`)."""
    if name == NO_RECIPE:
        return {}
    run = RunName.parse(name)
    values = setting_values(name, configured_grids(config))
    recipes, addons = with_setting(run.recipe, values, config["recipes"], config["regularizers"])
    return resolve_recipe(run.recipe, recipes, addons, model)


def with_setting(recipe: str, values: dict, recipes: dict, addons: dict) -> tuple[dict, dict]:
    """Copies of the recipe and add-on tables with a setting written into the run's entries."""
    parsed = RunName.parse(recipe)
    base, extra = parsed.base, parsed.addons
    recipes, addons = copy.deepcopy(recipes), copy.deepcopy(addons)
    for key, value in values.items():
        head, _, rest = key.partition(".")
        if rest and head in extra:
            target, path = addons[head], rest.split(".")
        else:
            target, path = recipes[base], key.split(".")
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return recipes, addons


def resolve_recipe(name: str, recipes: dict, addons: dict, model: str | None = None) -> dict:
    """`base+addon+...` -> {"loss": {...}, "regularizers": [...], "warm": {...} | None, ...}.

    A recipe's `per_model` entry overrides its keys for one model (DirectSpec's LightGCN code decays the
    learning rate by 0.9999 and adds a norm penalty where its MF code does neither)."""
    parsed = RunName.parse(name)
    base, extra = parsed.base, parsed.addons
    if base not in recipes:
        raise RecipeError(f"unknown recipe {base!r} in {name!r}; valid names: {', '.join(sorted(recipes))}")
    entry = dict(recipes[base])
    entry |= entry.pop("per_model", {}).get(model, {})
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
        term = {
            "name": spec["regularizer"],
            "gamma": float(spec.get("gamma", 1.0)),
            "phase": "warm" if is_warm else "all",
        }
        options = {key: value for key, value in spec.items() if key not in ADDON_KEYS}
        regularizers.append(term | ({"options": options} if options else {}))
        if is_warm:
            warm = {
                "epochs": int(spec["warm_epochs"]),
                "until": spec.get("warm_until", "epochs"),
                "count_from": int(spec.get("warm_count_from", 1)),
            }
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
    warm_count_from: int = 1  # 0: StableRankReg counts epochs from 0 and warms while epoch <= warm_epochs
    n_negatives: int = 0
    sampler: str = "uniform"
    batching: str = "edges"
    optimizer: str | None = None
    lr_decay: float = 1.0

    @classmethod
    def from_resolved(cls, resolved: dict, context: TermContext | None = None) -> Recipe:
        loss = build_loss(resolved["loss"])
        name = resolved["loss"]["name"]
        terms = [
            Term(r["name"], build_term(r, context), r["gamma"], r["phase"]) for r in resolved["regularizers"]
        ]
        warm = resolved.get("warm") or {}
        options = {key: resolved[key] for key in OWN_KEYS if key in resolved}
        recipe = cls(
            loss=loss,
            terms=terms,
            warm_epochs=warm.get("epochs", 0),
            warm_until=warm.get("until", "epochs"),
            warm_count_from=warm.get("count_from", 1),
            **options,
        )
        if getattr(loss, "needs_negatives", False) and recipe.n_negatives < 1:
            raise RecipeError(f"loss {name!r} needs sampled negatives: set n_negatives >= 1")
        return recipe

    @property
    def has_warm_phase(self) -> bool:
        return self.warm_epochs > 0

    @property
    def last_warm_epoch(self) -> int:
        """The last epoch (counted from 1) of the warm phase: warm_epochs, or warm_epochs + 1 where epochs
        are counted from 0 (StableRankReg's `epoch > warm_start_epochs` switch: 5 means 6 epochs)."""
        return self.warm_epochs + 1 - self.warm_count_from

    def modules(self) -> list[torch.nn.Module]:
        """Loss parts with parameters of their own (the contrastive task's text projection): the training
        loop moves them to the device, optimises them with the model and keeps them in checkpoints."""
        parts = [self.loss, *(term.function for term in self.terms)]
        return [part for part in parts if isinstance(part, torch.nn.Module)]

    def compile(self) -> None:
        """Put the base loss and the table regularisers through torch.compile (`train.compile`): it fuses
        a loss's element-wise work on the gathered rows into a few loops. Values equal the eager ones within
        float rounding. Parts with parameters (the contrastive task's projection) stay eager: a compiled
        module renames its parameters, and checkpoints would no longer load."""
        if not isinstance(self.loss, torch.nn.Module):
            self.loss = torch.compile(self.loss)
        for term in self.terms:
            if not isinstance(term.function, torch.nn.Module):
                # the in-batch unique rows differ in number every batch: compiled for any number at once
                term.function = torch.compile(term.function, dynamic=True)

    def parts(self, batch: Batch, warm: bool) -> dict[str, torch.Tensor]:
        """Named loss parts of one batch: the base loss, then for every term active in this phase
        gamma * (reg(users) + reg(items)) / 2 for a table regulariser, or gamma * term(batch) for a term on
        the whole batch (the item-item contrastive task)."""
        parts = self.loss(batch)
        for term in self.terms:
            if term.phase == "all" or (term.phase == "warm") == warm:
                if getattr(term.function, "on_batch", False):
                    value = term.function(batch)
                else:
                    users, items = batch.unique_user_emb(), batch.unique_item_emb()
                    value = (term.function(users) + term.function(items)) / 2
                parts[f"{term.name}_{term.phase}"] = term.gamma * value
        return parts


def build_loss(resolved_loss: dict):
    """The loss object of a resolved recipe's `loss` entry ({"name": ..., **parameters}). The loss's
    dataclass fields are its parameters: any other key is refused, naming the valid ones, and a value
    given as text (`--config`) is read as the field's type."""
    params = dict(resolved_loss)
    name = params.pop("name")
    if name not in LOSSES:
        raise RecipeError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES.names())}")
    accepted = loss_parameters(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise RecipeError(
            f"bad parameters for loss {name!r}: it takes no {', '.join(map(repr, unknown))}; its parameters: "
            f"{', '.join(accepted) or 'none'}; a recipe's other keys: {', '.join(RECIPE_KEYS)}"
        )
    try:
        return LOSSES[name](**{key: _read(value, accepted[key]) for key, value in params.items()})
    except (TypeError, ValueError) as error:
        raise RecipeError(f"bad parameters for loss {name!r}: {error}") from None


def _read(value, kind: type):
    """A parameter given as text (`--config recipes='{ssm: {temperature: 0.5}}'`) as the field's type."""
    if isinstance(value, str) and kind in (int, float):
        return kind(value)
    return value


def build_term(resolved_term: dict, context: TermContext | None):
    """The callable of a regulariser: a plain function of a table, or a module a builder makes from the
    data (`builds_term`), configured by the add-on's extra keys."""
    name, options = resolved_term["name"], resolved_term.get("options", {})
    function = REGULARIZERS[name]
    if not getattr(function, "builds_term", False):
        if options:
            raise RecipeError(f"regularizer {name!r} takes no options, got {sorted(options)}")
        return function
    if context is None:
        raise RecipeError(f"regularizer {name!r} is built from the data: pass a TermContext")
    try:
        return function(context, **options)
    except TypeError as error:
        raise RecipeError(f"bad options for regularizer {name!r}: {error}") from None
