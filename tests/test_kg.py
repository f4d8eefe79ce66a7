"""Item knowledge graphs (specrec.kg): the metadata builder on a hand-made items table, KGCN's sampled
neighbourhood against a direct reference, the Satori loaders on invented files in the real formats
(tests/fixtures/kg/), the KG download through the checksum lock, the KG columns of the datasets table,
and the ML-1M KG of the real mirror when it is present."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from local_http import QuietHandler, local_http_server
from specrec import tables
from specrec.data.download import ChecksumError, ChecksumLock, materialize
from specrec.data.sources import DATASETS, Remote
from specrec.data.sources.base import KGFiles
from specrec.kg import (
    DEFAULT_RELATIONS,
    ITEM_RELATIONS,
    KG,
    build_item_kg,
    item_decade,
    load_kg,
    load_satori_kg,
    neighbour_sample,
    write_dataset_kg,
)

FIXTURES = Path(__file__).parent / "fixtures" / "kg"


def toy_items() -> pd.DataFrame:
    """Four items as prepare writes them; item 3 repeats a genre and has a blank actor and rating."""
    return pd.DataFrame(
        {
            "item": np.arange(4, dtype=np.int32),
            "raw_item": [10, 20, 30, 40],
            "title": ["A", "B", "C", "D"],
            "year": pd.array([1995, 1999, None, 2001], dtype="Int16"),
            "genres": [["Comedy", "Drama"], ["Comedy"], [], ["Drama", "Drama"]],
            "directors": [["Ann"], [], ["Cy"], ["Ann"]],
            "writers": [["Ann", "Bob"], ["Bob"], [], []],
            "actors": [["Tom"], ["Tom", "Zoe"], [], ["  "]],
            "synopsis": [None, None, None, None],
            "rated": ["PG", None, "R", ""],
        }
    )


# worked out by hand: attribute entities by (relation, value) after the 4 items
TOY_ENTITIES = [
    ("genre", "Comedy"), ("genre", "Drama"), ("director", "Ann"), ("director", "Cy"), ("writer", "Ann"),
    ("writer", "Bob"), ("actor", "Tom"), ("actor", "Zoe"), ("decade", "1990s"), ("decade", "2000s"),
    ("rated", "PG"), ("rated", "R"),
]  # fmt: skip
TOY_TRIPLES = [
    (0, 0, 4), (0, 0, 5), (0, 1, 6), (0, 2, 8), (0, 2, 9), (0, 3, 10), (0, 4, 12), (0, 5, 14),
    (1, 0, 4), (1, 2, 9), (1, 3, 10), (1, 3, 11), (1, 4, 12),
    (2, 1, 7), (2, 5, 15),
    (3, 0, 5), (3, 1, 6), (3, 4, 13),
]  # fmt: skip


def triples_of(kg: KG) -> list[tuple[int, int, int]]:
    return [tuple(map(int, row)) for row in kg.triples[["head", "relation", "tail"]].to_numpy()]


# ------------------------------------------------------------------------------------- metadata builder


def test_build_item_kg_on_a_hand_made_table():
    kg = build_item_kg(toy_items())
    assert kg.n_items == 4 and kg.n_entities == 16 and kg.n_relations == 6
    assert kg.relations["name"].tolist() == list(DEFAULT_RELATIONS)
    assert kg.relations["relation"].tolist() == list(range(6))
    assert kg.entities["entity"].tolist() == list(range(16))
    assert kg.entities["kind"].tolist()[:4] == ["item"] * 4
    assert kg.entities["name"].tolist()[:4] == ["10", "20", "30", "40"]  # entity id == item id
    assert list(zip(kg.entities["kind"][4:], kg.entities["name"][4:], strict=True)) == TOY_ENTITIES
    assert triples_of(kg) == TOY_TRIPLES
    assert all(str(kg.triples[c].dtype) == "int32" for c in ("head", "relation", "tail"))
    assert kg.stats().to_dict("records") == [
        {"entities": 16, "relations": 6, "triples": 18, "items_with_triples": 4}
    ]


def test_missing_values_give_no_triple():
    kg = build_item_kg(toy_items())
    names = dict(zip(kg.entities["entity"], kg.entities["name"], strict=True))
    tails = {(h, r): [] for h in range(4) for r in range(6)}
    for h, r, t in triples_of(kg):
        tails[(h, r)].append(names[t])
    assert tails[(2, 0)] == [] and tails[(2, 4)] == []  # no genres, unknown year
    assert tails[(1, 5)] == [] and tails[(3, 5)] == []  # rated None and blank
    assert tails[(3, 3)] == []  # a blank actor name
    assert tails[(3, 0)] == ["Drama"]  # a value listed twice gives one triple
    assert "" not in kg.entities["name"].tolist()


def test_parquet_arrays_give_the_same_kg(tmp_path):
    """prepare's items.parquet reads list columns back as numpy arrays, not lists."""
    toy_items().to_parquet(tmp_path / "items.parquet", index=False)
    items = pd.read_parquet(tmp_path / "items.parquet")
    assert isinstance(items.loc[0, "genres"], np.ndarray)
    assert triples_of(build_item_kg(items)) == TOY_TRIPLES


def test_decade():
    years = pd.DataFrame({"year": pd.array([1990, 1999, 2000, 1919, None], dtype="Int16")})
    assert item_decade(years).tolist() == ["1990s", "1990s", "2000s", "1910s", None]


def test_relations_in_the_given_order():
    kg = build_item_kg(toy_items(), relations=("rated", "genre"))
    assert kg.relations["name"].tolist() == ["rated", "genre"]
    assert kg.entities["name"].tolist()[4:] == ["PG", "R", "Comedy", "Drama"]
    assert triples_of(kg) == [(0, 0, 4), (0, 1, 6), (0, 1, 7), (1, 1, 6), (2, 0, 5), (3, 1, 7)]
    assert kg.stats()["items_with_triples"].item() == 4


def test_builder_errors():
    with pytest.raises(KeyError, match="unknown item relation 'studio'.*actor, decade"):
        build_item_kg(toy_items(), relations=("genre", "studio"))
    with pytest.raises(ValueError, match="distinct"):
        build_item_kg(toy_items(), relations=("genre", "genre"))
    with pytest.raises(ValueError, match="0..n_items-1"):
        build_item_kg(toy_items().iloc[[1, 0, 2, 3]])
    with pytest.raises(KeyError, match="'rated' column.*prepared again"):
        build_item_kg(toy_items().drop(columns="rated"))


def test_schema_lists_the_registered_relations():
    import yaml

    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    relations = schema["properties"]["kg"]["properties"]["relations"]
    assert relations["items"]["enum"] == ITEM_RELATIONS.names()
    assert relations["default"] == list(DEFAULT_RELATIONS)


def test_write_and_load(tmp_path):
    kg = build_item_kg(toy_items())
    kg.write(tmp_path / "kg")
    assert sorted(p.name for p in (tmp_path / "kg").iterdir()) == [
        "entities.parquet", "relations.parquet", "stats.csv", "triples.parquet"
    ]  # fmt: skip
    assert pd.read_csv(tmp_path / "kg" / "stats.csv").to_dict("records") == kg.stats().to_dict("records")
    back = load_kg(tmp_path / "kg")
    assert back.n_items == 4
    pd.testing.assert_frame_equal(back.triples, kg.triples)
    pd.testing.assert_frame_equal(back.entities, kg.entities, check_dtype=False)
    pd.testing.assert_frame_equal(back.relations, kg.relations, check_dtype=False)


def test_kg_rejects_inconsistent_tables():
    kg = build_item_kg(toy_items())
    with pytest.raises(ValueError, match="outside 0..n_entities-1"):
        KG(kg.triples.assign(tail=kg.triples["tail"] + 100), kg.entities, kg.relations, kg.n_items)
    with pytest.raises(ValueError, match="relation outside"):
        KG(kg.triples, kg.entities, kg.relations.iloc[:2], kg.n_items)
    with pytest.raises(ValueError, match="first n_items"):
        KG(kg.triples, kg.entities, kg.relations, n_items=5)


# ----------------------------------------------------------------------------------- sampled neighbours


def kg_from(triples: list[tuple[int, int, int]], n_entities: int, n_relations: int, n_items: int) -> KG:
    frame = pd.DataFrame(triples, columns=["head", "relation", "tail"]).astype(np.int32)
    kinds = ["item"] * n_items + ["x"] * (n_entities - n_items)
    entities = pd.DataFrame(
        {"entity": np.arange(n_entities), "kind": kinds, "name": [str(e) for e in range(n_entities)]}
    )
    relations = pd.DataFrame(
        {"relation": np.arange(n_relations), "name": [f"r{r}" for r in range(n_relations)]}
    )
    return KG(frame, entities, relations, n_items)


def undirected_neighbours(kg: KG) -> dict[int, list[tuple[int, int]]]:
    """The reference: every triple read both ways, one Python loop."""
    neighbours = defaultdict(list)
    for h, r, t in triples_of(kg):
        neighbours[h].append((t, r))
        neighbours[t].append((h, r))
    return neighbours


# degrees: entity 0: 4; 1: 2; 2: 1; 3: 3; 4: 3 (its self-loop counts twice); 5: 2; 9: 1; 6, 7, 8: none
SMALL = [(0, 0, 3), (0, 1, 4), (0, 0, 5), (1, 1, 3), (0, 2, 1), (2, 1, 3), (4, 2, 4), (5, 0, 9)]


def small_kg() -> KG:
    return kg_from(SMALL, n_entities=10, n_relations=3, n_items=3)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_every_sample_is_an_undirected_edge(k):
    kg = small_kg()
    adj_entity, adj_relation = neighbour_sample(kg, k, seed=7)
    assert adj_entity.shape == adj_relation.shape == (10, k)
    assert adj_entity.dtype == adj_relation.dtype == torch.int64
    neighbours = undirected_neighbours(kg)
    for e in range(10):
        pairs = list(zip(adj_entity[e].tolist(), adj_relation[e].tolist(), strict=True))
        if not neighbours[e]:
            assert pairs == [(e, kg.n_relations)] * k  # itself through the "self" relation
            continue
        assert all(pair in neighbours[e] for pair in pairs)
        if len(neighbours[e]) >= k:  # without replacement: no edge drawn twice
            assert not Counter(pairs) - Counter(neighbours[e])


def test_isolated_entities_point_to_themselves():
    adj_entity, adj_relation = neighbour_sample(small_kg(), 4, seed=0)
    for e in (6, 7, 8):
        assert adj_entity[e].tolist() == [e] * 4 and adj_relation[e].tolist() == [3] * 4


def test_sampling_is_uniform():
    """Over many seeds: without replacement each of d >= K neighbours is in the sample with probability
    K/d, and with replacement (d < K) every slot takes each neighbour with probability 1/d."""
    kg = small_kg()
    draws = 3000
    in_sample, slots = Counter(), Counter()
    for seed in range(draws):
        adj_entity, _ = neighbour_sample(kg, 3, seed)
        in_sample.update(set(adj_entity[0].tolist()))  # entity 0: neighbours 3, 4, 5, 1 (d = 4 >= 3)
        slots.update(adj_entity[1].tolist())  # entity 1: neighbours 3 and 0 (d = 2 < 3)
    assert set(in_sample) == {1, 3, 4, 5}
    assert all(abs(in_sample[n] / draws - 3 / 4) < 0.03 for n in (1, 3, 4, 5))
    assert set(slots) == {0, 3}
    assert all(abs(slots[n] / (3 * draws) - 1 / 2) < 0.03 for n in (0, 3))


def test_sampling_depends_only_on_the_seed():
    rng = np.random.default_rng(1)
    triples = list(
        zip(rng.integers(0, 50, 400), rng.integers(0, 4, 400), rng.integers(50, 200, 400), strict=True)
    )
    kg = kg_from(triples, n_entities=220, n_relations=4, n_items=50)
    first, again, other = neighbour_sample(kg, 4, 3), neighbour_sample(kg, 4, 3), neighbour_sample(kg, 4, 4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


# ---------------------------------------------------------------------------------------- Satori KGs


def movie_items() -> pd.DataFrame:
    return pd.DataFrame(
        {"item": np.arange(4, dtype=np.int32), "raw_item": np.array([1, 2, 5, 7], dtype=np.int64)}
    )


def test_satori_movie_kg():
    kg = load_satori_kg(
        FIXTURES / "ml-20m/kg.txt", FIXTURES / "ml-20m/item_index2entity_id.txt", movie_items()
    )
    # Satori 100, 101, 103 are movies 1, 2, 7 = items 0, 1, 3; movie 5 is not in the map, movie 3 (Satori
    # 102) is not ours; the others in order of first appearance: 500, 600, 102, 501, 700
    assert kg.n_items == 4
    assert kg.entities["name"].tolist() == ["1", "2", "5", "7", "500", "600", "102", "501", "700"]
    assert kg.entities["kind"].tolist() == ["item"] * 4 + ["entity"] * 5
    assert kg.relations["name"].tolist() == [
        "film.film.genre", "film.film.director", "film.genre.films", "film.film.star"
    ]  # fmt: skip
    assert triples_of(kg) == [(0, 0, 4), (1, 0, 4), (0, 1, 5), (6, 1, 5), (7, 2, 3), (3, 3, 8), (0, 0, 4)]
    assert kg.stats().to_dict("records") == [
        {"entities": 9, "relations": 4, "triples": 7, "items_with_triples": 3}
    ]


def book_items() -> pd.DataFrame:
    return pd.DataFrame(
        {"item": np.arange(3, dtype=np.int32), "raw_item": ["0002005018", "034545104X", "9999999999"]}
    )


def test_satori_book_kg():
    kg = load_satori_kg(
        FIXTURES / "book-crossing/kg_rehashed.txt",
        FIXTURES / "book-crossing/item_index2entity_id_rehashed.txt",
        book_items(),
    )
    # entity 1 = ISBN 0002005018 = item 0, entity 0 = 034545104X = item 1; ISBN 0060973129 (entity 2) is
    # not ours; the others by first appearance: 3, 2, 4, 5
    assert kg.entities["name"].tolist() == ["0002005018", "034545104X", "9999999999", "3", "2", "4", "5"]
    assert kg.relations["name"].tolist() == ["0", "1", "2"]
    assert triples_of(kg) == [(1, 0, 3), (0, 0, 3), (4, 1, 5), (0, 1, 5), (3, 2, 6)]
    assert kg.stats()["items_with_triples"].item() == 2


def test_satori_map_must_be_one_to_one(tmp_path):
    (tmp_path / "map.txt").write_text("1\t100\n2\t100\n")
    with pytest.raises(ValueError, match="satori '100' is listed more than once"):
        load_satori_kg(FIXTURES / "ml-20m/kg.txt", tmp_path / "map.txt", movie_items())
    (tmp_path / "map.txt").write_text("1\t100\n1\t101\n")
    with pytest.raises(ValueError, match="raw_item '1'"):
        load_satori_kg(FIXTURES / "ml-20m/kg.txt", tmp_path / "map.txt", movie_items())


def test_satori_bad_line_names_file_and_line(tmp_path):
    (tmp_path / "kg.txt").write_text("100\tfilm.film.genre\t500\n101\tfilm.film.genre\n")
    with pytest.raises(ValueError, match=r"kg\.txt.*line 2"):
        load_satori_kg(tmp_path / "kg.txt", FIXTURES / "ml-20m/item_index2entity_id.txt", movie_items())


def test_write_dataset_kg_picks_the_satori_kg_where_one_is_published(tmp_path):
    movie_items().to_parquet(tmp_path / "items.parquet", index=False)
    kg = write_dataset_kg(
        "ml-20m", tmp_path / "items.parquet", tmp_path / "kg", kg_raw_dir=FIXTURES / "ml-20m"
    )
    assert kg.relations["name"].tolist()[0] == "film.film.genre"
    assert pd.read_csv(tmp_path / "kg" / "stats.csv")["triples"].item() == 7
    with pytest.raises(ValueError, match="published KG"):
        write_dataset_kg("ml-20m", tmp_path / "items.parquet", tmp_path / "kg2")
    toy_items().to_parquet(tmp_path / "toy.parquet", index=False)
    kg = write_dataset_kg("ml-1m", tmp_path / "toy.parquet", tmp_path / "kg3", relations=["genre"])
    assert kg.relations["name"].tolist() == ["genre"] and load_kg(tmp_path / "kg3").n_entities == 6


# ------------------------------------------------------------------------- download through the lock


class Handler(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.server.files.get(self.path)
        self.reply(body, 200) if body is not None else self.reply(b"not found", 404)


def served_kg_source(server: ThreadingHTTPServer, dataset: str):
    """The dataset's KG download with its URLs on the local server, serving the fixtures."""
    files = DATASETS[dataset].kg
    local = {}
    for field in ("triples", "item_map"):
        raw = getattr(files, field)
        path = f"/{dataset}/{raw.name}"
        server.files[path] = (FIXTURES / dataset / raw.name).read_bytes()
        local[field] = replace(raw, remote=Remote(server.url + path, None))
    return replace(DATASETS[dataset], kg=KGFiles(**local)).kg_download()


@pytest.mark.parametrize("dataset", ["ml-20m", "book-crossing"])
def test_kg_download_records_and_then_enforces_checksums(tmp_path, dataset):
    lock = tmp_path / "checksums.lock"
    options = {"lock_path": lock, "retries": 0, "backoff": 0, "timeout": 5}
    with local_http_server(Handler) as server:
        source = served_kg_source(server, dataset)
        assert source.name == f"{dataset}-kg"
        manifest = materialize(source, tmp_path / "raw", **options)
        files = DATASETS[dataset].kg
        assert [f["name"] for f in manifest["files"]] == [files.triples.name, files.item_map.name]
        entries = ChecksumLock(lock).entries()
        for raw in source.raw_files():
            body = (FIXTURES / dataset / raw.name).read_bytes()
            assert entries[raw.remote.url] == "sha256:" + hashlib.sha256(body).hexdigest()
            assert (tmp_path / "raw" / raw.name).read_bytes() == body
        # upstream changes a file: the recorded checksum refuses it
        server.files[f"/{dataset}/{files.triples.name}"] += b"1\t2\t3\n"
        with pytest.raises(ChecksumError, match="recorded in"):
            materialize(source, tmp_path / "raw2", **options)


def test_kg_files_are_optional_extras():
    for dataset in ("ml-20m", "book-crossing"):
        source = DATASETS[dataset]
        kg_names = {source.kg.triples.name, source.kg.item_map.name}
        assert not kg_names & {raw.name for raw in source.raw_files()}  # prepare never needs them
        assert all(raw.remote.checksum is None for raw in source.kg_download().raw_files())  # TOFU
    with pytest.raises(ValueError, match="no published knowledge graph"):
        DATASETS["ml-1m"].kg_download()
    with pytest.raises(TypeError, match="load_satori_kg"):
        DATASETS["ml-20m"].kg_download().parser(Path("raw"))


# ------------------------------------------------------------------------------------ datasets table


def test_dataset_table_adds_kg_columns(tmp_path):
    data = tmp_path / "results" / "data"
    stats = []
    for dataset, users in (("ml-toy", 10), ("books", 20)):
        for sub in ("", "split/seed0/"):
            path = data / dataset / sub / "stats.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"split": ["all"], "users": [users], "items": [5], "interactions": [40]}).to_csv(
                path, index=False
            )
            stats.append(path)
    kg_stats = data / "ml-toy" / "kg" / "stats.csv"
    build_item_kg(toy_items()).write(kg_stats.parent)
    csv, md = tmp_path / "datasets.csv", tmp_path / "datasets.md"
    table = tables.dataset_table(stats, csv, md, kg_stats_files=[kg_stats])
    prepared = table[table["seed"].isna()].set_index("dataset")
    assert prepared.loc["ml-toy", ["entities", "relations", "triples", "items_with_triples"]].tolist() == [
        16,
        6,
        18,
        4,
    ]
    assert prepared.loc["books", ["entities", "triples"]].isna().all()  # no KG given for it
    assert table.loc[table["seed"].notna(), "triples"].isna().all()  # only the as-prepared row
    assert "| ml-toy | as prepared | all | 10 | 5 | 40 | 16 | 6 | 18 | 4 |" in md.read_text()
    with pytest.raises(ValueError, match="KG statistics of ml-toy"):
        tables.dataset_table(stats[1:2], csv, md, kg_stats_files=[kg_stats])


# ------------------------------------------------------------------------------------- the real mirror


def test_real_ml1m_kg(ml1m_items):
    items = ml1m_items
    kg = build_item_kg(items)
    # reference: one Python loop over items and relations
    values = set()
    n_triples = 0
    for row in items.itertuples():
        year = None if pd.isna(row.year) else f"{int(row.year) // 10 * 10}s"
        rated = None if pd.isna(row.rated) else row.rated
        for relation, found in (
            ("genre", row.genres), ("director", row.directors), ("writer", row.writers),
            ("actor", row.actors), ("decade", [year]), ("rated", [rated]),
        ):  # fmt: skip
            kept = {v.strip() for v in found if v is not None and v.strip()}
            values |= {(relation, v) for v in kept}
            n_triples += len(kept)
    assert kg.n_items == len(items) == 3706 and kg.n_relations == 6
    assert kg.n_entities == 3706 + len(values) and len(kg.triples) == n_triples
    assert kg.stats()["items_with_triples"].item() == 3706  # every movie has a genre
    adj_entity, _ = neighbour_sample(kg, 4, seed=0)
    assert adj_entity.shape == (kg.n_entities, 4)
