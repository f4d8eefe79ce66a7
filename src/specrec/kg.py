"""Item knowledge graphs for KGCN (paper 1): built from item metadata, or loaded from a published Satori KG.

Entity ids put the items first, entity id == item id (0..n_items-1), so a model indexes an item's entity
with the item id; the other entities follow. For ML-1M the graph is built from the MeLU metadata
(`build_item_kg`: item -> genre, director, writer, actor, decade, MPAA rating); for ML-20M and
Book-Crossing it is the Satori extract that KGCN and RippleNet publish (`load_satori_kg`).
`neighbour_sample` draws KGCN's fixed neighbourhood of every entity.

On disk (`KG.write`, `load_kg`): triples.parquet (head, relation, tail), entities.parquet (entity, kind,
name), relations.parquet (relation, name) and stats.csv (one row: entities, relations, triples,
items_with_triples; specrec.tables.dataset_table adds it to the datasets table).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from specrec import io
from specrec.data.sources import get_source
from specrec.data.sources.readers import read_fields
from specrec.registry import Registry

PathLike = str | os.PathLike
ITEM_KIND = "item"
SATORI_KIND = "entity"  # a Satori entity that is none of our items (a person, a genre, an unrated film)
DEFAULT_RELATIONS = ("genre", "director", "writer", "actor", "decade", "rated")
STATS_COLUMNS = ["entities", "relations", "triples", "items_with_triples"]
FILES = ("triples.parquet", "entities.parquet", "relations.parquet", "stats.csv")

# relation name -> the values of each item (a list, a scalar, or missing), one per row of the items table
ITEM_RELATIONS: Registry[Callable[[pd.DataFrame], pd.Series]] = Registry("item relation")


@dataclass
class KG:
    """An item knowledge graph: int32 triples (head, relation, tail) over entities 0..n_entities-1.

    entities: entity, kind ("item", a relation name such as "genre", or "entity" for other Satori
    entities), name (the raw item id, the attribute value, or the Satori id); items come first, so
    entity e < n_items is item e. relations: relation, name, with ids 0..n_relations-1.
    """

    triples: pd.DataFrame
    entities: pd.DataFrame
    relations: pd.DataFrame
    n_items: int

    def __post_init__(self) -> None:
        ids = self.entities["entity"].to_numpy()
        if not np.array_equal(ids, np.arange(len(ids))):
            raise ValueError("entity ids must be 0..n_entities-1 in order")
        if (self.entities["kind"].to_numpy()[: self.n_items] != ITEM_KIND).any():
            raise ValueError(f"the first n_items={self.n_items} entities must be the items")
        ends = self.triples[["head", "tail"]].to_numpy()
        if len(ends) and (ends.min() < 0 or ends.max() >= len(ids)):
            raise ValueError("a triple names an entity outside 0..n_entities-1")
        rels = self.triples["relation"].to_numpy()
        if len(rels) and (rels.min() < 0 or rels.max() >= len(self.relations)):
            raise ValueError("a triple names a relation outside 0..n_relations-1")

    @property
    def n_entities(self) -> int:
        return len(self.entities)

    @property
    def n_relations(self) -> int:
        return len(self.relations)

    def stats(self) -> pd.DataFrame:
        """One row: entities, relations, triples, and items that are the head or tail of some triple."""
        ends = self.triples[["head", "tail"]].to_numpy().ravel()
        items_with_triples = len(np.unique(ends[ends < self.n_items]))
        counts = [self.n_entities, self.n_relations, len(self.triples), items_with_triples]
        return pd.DataFrame([counts], columns=STATS_COLUMNS)

    def write(self, directory: PathLike) -> None:
        """triples/entities/relations.parquet and stats.csv under `directory`, each written atomically."""
        directory = Path(directory)
        io.write_parquet(directory / "triples.parquet", self.triples)
        io.write_parquet(directory / "entities.parquet", self.entities)
        io.write_parquet(directory / "relations.parquet", self.relations)
        io.write_csv(directory / "stats.csv", self.stats())


def load_kg(directory: PathLike) -> KG:
    """The KG that KG.write left in `directory`."""
    directory = Path(directory)
    entities = pd.read_parquet(directory / "entities.parquet")
    return KG(
        triples=pd.read_parquet(directory / "triples.parquet"),
        entities=entities,
        relations=pd.read_parquet(directory / "relations.parquet"),
        n_items=int((entities["kind"] == ITEM_KIND).sum()),
    )


# ------------------------------------------------------------------------------------ from item metadata


def _column(name: str) -> Callable[[pd.DataFrame], pd.Series]:
    def values(items: pd.DataFrame) -> pd.Series:
        if name not in items:
            raise KeyError(
                f"the items table has no {name!r} column; an items.parquet written before it existed "
                "must be prepared again"
            )
        return items[name]

    return values


# relations read straight from a column of the items table (lists for credits and genres)
RELATION_COLUMNS = {
    "genre": "genres",
    "director": "directors",
    "writer": "writers",
    "actor": "actors",
    "rated": "rated",
}
for _relation, _name in RELATION_COLUMNS.items():
    ITEM_RELATIONS.register(_relation)(_column(_name))


@ITEM_RELATIONS.register("decade")
def item_decade(items: pd.DataFrame) -> pd.Series:
    """Decade of release, 10 * floor(year / 10) written "1990s"; an unknown year gives no value."""
    decade = (items["year"].astype("Int64") // 10 * 10).astype("string") + "s"
    return decade.astype(object).where(decade.notna(), None)


def build_item_kg(items: pd.DataFrame, relations: Sequence[str] = DEFAULT_RELATIONS) -> KG:
    """The KG of an items table (as prepare writes it): one triple (item, relation, value) per value.

    Entities: the items (entity = item, name = raw_item), then one entity per distinct (relation, value),
    e.g. ("genre", "Comedy"), ordered by relation (in the given order) and value. A director who also
    wrote is two entities, ("director", x) and ("writer", x): the relation kind is part of the entity, as
    in MeLU's separate vocabularies. Relation ids follow `relations`. Missing values (None, NaN, empty
    lists, blank strings) give no triple; a value listed twice for one item gives one triple.
    """
    _check_item_ids(items)
    relations = list(relations)
    if len(set(relations)) != len(relations):
        raise ValueError(f"relations must be distinct, got {relations}")
    pairs = pd.concat(
        [_item_values(items, name).assign(relation=r) for r, name in enumerate(relations)], ignore_index=True
    )
    # one entity per (relation, value), numbered after the items in (relation order, value) order
    attributes = pairs[["relation", "value"]].drop_duplicates().sort_values(["relation", "value"])
    attributes = attributes.assign(entity=len(items) + np.arange(len(attributes)))
    triples = pairs.merge(attributes, on=["relation", "value"], how="left", validate="many_to_one")
    triples = pd.DataFrame(
        {
            "head": triples["item"].to_numpy(dtype=np.int32),
            "relation": triples["relation"].to_numpy(dtype=np.int32),
            "tail": triples["entity"].to_numpy(dtype=np.int32),
        }
    )
    kinds = np.asarray(relations, dtype=object)[attributes["relation"].to_numpy()]
    entities = _entities(items, kinds, attributes["value"].to_numpy(dtype=object))
    return KG(_sorted(triples), entities, _relations(relations), n_items=len(items))


def _check_item_ids(items: pd.DataFrame) -> None:
    """Entity id == item id needs the item ids to be exactly 0..n_items-1, in row order."""
    if not np.array_equal(items["item"].to_numpy(), np.arange(len(items))):
        raise ValueError("items must have item ids 0..n_items-1 in row order (prepare's items.parquet)")


def _item_values(items: pd.DataFrame, relation: str) -> pd.DataFrame:
    """(item, value) pairs of one relation, lists exploded, missing and blank values dropped."""
    values = ITEM_RELATIONS[relation](items)
    pairs = pd.DataFrame({"item": items["item"].to_numpy(), "value": values.to_numpy(dtype=object)})
    pairs = pairs.explode("value")  # an empty list becomes NaN, a scalar stays as it is
    pairs = pairs[pairs["value"].notna()]
    pairs = pairs.assign(value=pairs["value"].astype(str).str.strip())
    return pairs[pairs["value"] != ""].drop_duplicates(ignore_index=True)


def _entities(items: pd.DataFrame, kinds: np.ndarray, names: np.ndarray) -> pd.DataFrame:
    """Items first (name = raw item id as text), then the other entities with their kinds and names."""
    n = len(items) + len(names)
    return pd.DataFrame(
        {
            "entity": np.arange(n, dtype=np.int32),
            "kind": np.concatenate([np.full(len(items), ITEM_KIND, dtype=object), kinds.astype(object)]),
            "name": np.concatenate([items["raw_item"].astype(str).to_numpy(dtype=object), names]),
        }
    )


def _relations(names: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"relation": np.arange(len(names), dtype=np.int32), "name": np.asarray(names, dtype=object)}
    )


def _sorted(triples: pd.DataFrame) -> pd.DataFrame:
    return triples.sort_values(["head", "relation", "tail"], kind="stable", ignore_index=True)


# ------------------------------------------------------------------------------- Satori (KGCN, RippleNet)


def load_satori_kg(kg_path: PathLike, item_map_path: PathLike, items: pd.DataFrame) -> KG:
    """A published Satori KG remapped to our ids: our items first, the other Satori entities after.

    kg_path: `head<TAB>relation<TAB>tail` lines (KGCN's kg.txt: Satori ids and relation names such as
    "film.film.genre"; RippleNet's kg_rehashed.txt: integers throughout), all read as text.
    item_map_path: `raw_item<TAB>satori_id` lines (item_index2entity_id*.txt: ML-20M movieId or ISBN).

    An item of `items` whose raw_item (compared as text) the map lists is that Satori entity; items the
    map lacks are entities without triples. Map lines for raw items we do not have (below the rating
    threshold, never rated) are dropped: their Satori entity stays in the graph as an ordinary entity,
    as in KGCN's preprocess.py, which keeps every kg.txt line. Other entities and the relations are
    numbered in order of first appearance (head before tail, line by line), as KGCN numbers them;
    every line is one triple (duplicates kept, as KGCN keeps them).
    """
    _check_item_ids(items)
    lines = _read_tab(kg_path, ["head", "relation", "tail"])
    item_map = _read_tab(item_map_path, ["raw_item", "satori"])
    satori_of_item = _satori_ids_of_items(item_map, items, item_map_path)

    # every Satori id -> entity id: mapped items -> their item id, the rest -> n_items + first appearance
    ends = pd.Index(lines[["head", "tail"]].to_numpy(dtype=object).ravel())
    others = ends[~ends.isin(satori_of_item.to_numpy())].unique().to_numpy(dtype=object)
    satori = pd.Index(np.concatenate([satori_of_item.to_numpy(dtype=object), others]))
    entity_of = np.concatenate([satori_of_item.index.to_numpy(), len(items) + np.arange(len(others))])
    relation, relation_names = pd.factorize(lines["relation"], sort=False)
    triples = pd.DataFrame(
        {
            "head": entity_of[satori.get_indexer(lines["head"])].astype(np.int32),
            "relation": relation.astype(np.int32),
            "tail": entity_of[satori.get_indexer(lines["tail"])].astype(np.int32),
        }
    )
    kinds = np.full(len(others), SATORI_KIND, dtype=object)
    entities = _entities(items, kinds, np.asarray(others, dtype=object))
    return KG(triples, entities, _relations(list(relation_names)), n_items=len(items))


def _read_tab(path: PathLike, columns: list[str]) -> pd.DataFrame:
    """Tab-separated text fields, stripped (the files may end lines with \\r\\n)."""
    fields = read_fields(Path(path), "\t", len(columns), "utf-8")
    fields = fields.apply(lambda column: column.str.strip()).astype(object)
    return fields.set_axis(columns, axis=1).reset_index(drop=True)


def _satori_ids_of_items(item_map: pd.DataFrame, items: pd.DataFrame, path: PathLike) -> pd.Series:
    """Satori id of each of our items the map lists, indexed by item id; a map must be one-to-one."""
    for column in ("raw_item", "satori"):
        repeated = item_map[column][item_map[column].duplicated()]
        if len(repeated):
            raise ValueError(f"{path}: {column} {repeated.iloc[0]!r} is listed more than once")
    raw_to_item = pd.Series(items["item"].to_numpy(), index=items["raw_item"].astype(str).to_numpy())
    kept = item_map[item_map["raw_item"].isin(raw_to_item.index)]
    return pd.Series(kept["satori"].to_numpy(dtype=object), index=raw_to_item[kept["raw_item"]].to_numpy())


# ---------------------------------------------------------------------------------- sampled neighbourhood


def neighbour_sample(kg: KG, n_neighbours: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """KGCN's fixed receptive field: K = n_neighbours (entity, relation) neighbours for every entity.

    The KG is undirected: triple (h, r, t) makes t a neighbour of h and h one of t, both through r. An
    entity with at least K neighbours gets K of them drawn uniformly without replacement, one with fewer
    gets K drawn uniformly with replacement (KGCN's data_loader.construct_adj:
    np.random.choice(n, K, replace=n < K)). An entity without neighbours gets itself K times through the
    extra relation id n_relations ("self"), so a model needs n_relations + 1 relation embeddings.
    Returns (adj_entity, adj_relation), int64 tensors of shape (n_entities, K).

    Vectorised: the directed edges are sorted by (source, random key), which puts each entity's
    neighbours in a uniformly random order; the first K of that order are a uniform sample without
    replacement, and uniform offsets into it sample with replacement.
    """
    if n_neighbours < 1:
        raise ValueError(f"n_neighbours must be >= 1, got {n_neighbours}")
    rng = np.random.default_rng(seed)
    head, relation, tail = (kg.triples[c].to_numpy(dtype=np.int64) for c in ("head", "relation", "tail"))
    source = np.concatenate([head, tail])
    order = np.lexsort((rng.random(len(source)), source))
    # one padding slot at the end gives isolated entities a valid (ignored) index
    target = np.append(np.concatenate([tail, head])[order], 0)
    via = np.append(np.concatenate([relation, relation])[order], 0)

    n, k = kg.n_entities, n_neighbours
    degree = np.bincount(source, minlength=n)[:, None]
    start = np.cumsum(degree) - degree[:, 0]
    with_replacement = np.floor(rng.random((n, k)) * degree).astype(np.int64)
    offset = np.where(degree >= k, np.arange(k)[None, :], with_replacement)
    isolated = degree == 0
    index = np.where(isolated, len(target) - 1, start[:, None] + offset)
    adj_entity = np.where(isolated, np.arange(n)[:, None], target[index])
    adj_relation = np.where(isolated, kg.n_relations, via[index])
    return torch.from_numpy(adj_entity.astype(np.int64)), torch.from_numpy(adj_relation.astype(np.int64))


# ------------------------------------------------------------------------------------------ per dataset


def write_dataset_kg(
    dataset: str,
    item_meta: PathLike,
    out_dir: PathLike,
    relations: Sequence[str] = DEFAULT_RELATIONS,
    kg_raw_dir: PathLike | None = None,
) -> KG:
    """Build `dataset`'s KG and write it to out_dir: its published Satori KG when its source declares
    one (files in kg_raw_dir, from download.materialize(source.kg_download(), kg_raw_dir)), else the
    metadata KG of `relations`."""
    items = pd.read_parquet(item_meta)
    files = get_source(dataset).kg
    if files is None:
        kg = build_item_kg(items, relations)
    elif kg_raw_dir is None:
        raise ValueError(f"{dataset} has a published KG: pass the folder its files were downloaded to")
    else:
        raw = Path(kg_raw_dir)
        kg = load_satori_kg(raw / files.triples.name, raw / files.item_map.name, items)
    kg.write(out_dir)
    return kg
