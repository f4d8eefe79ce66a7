"""MovieLens (GroupLens) datasets, and ML-1M's synopses and credits from MeLU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from specrec.data.sources.base import (
    DATASETS,
    ITEM_COLUMNS,
    MISSING,
    DatasetSource,
    RawFile,
    RawTables,
    Remote,
)
from specrec.data.sources.readers import (
    check_unique_ids,
    first_present,
    raw_path,
    read_fields,
    read_numeric,
    split_list,
    split_title_year,
    to_numbers,
)

# ------------------------------------------------------------------------------------------------ ML-1M

ML1M_ZIP = Remote(
    "https://files.grouplens.org/datasets/movielens/ml-1m.zip", "md5:c4d9eecfca2ab87c1945afe126590906"
)
MELU_EXTRAINFOS_URL = (
    "https://raw.githubusercontent.com/hoyeoplee/MeLU/master/movielens/ml-1m/movies_extrainfos.dat"
)
MELU_EXTRAINFOS_SHA256 = "sha256:18432b1713b66a5262c11f6d929801a6e6f414d861cd2adf191dfba61e45c74d"
ML1M_RATINGS = ("ratings.dat", "ratings_no_timestamp.dat")


def parse_ml1m(raw_dir: Path) -> RawTables:
    """ML-1M ratings + movies.dat (title, year, genres) + MeLU extrainfos (credits, synopsis)."""
    ratings_path = first_present(raw_dir, ML1M_RATINGS)
    names = ["user", "item", "rating"] + (["timestamp"] if ratings_path.name == "ratings.dat" else [])
    ratings = read_numeric(ratings_path, "::", names)
    items = _ml1m_movies(raw_path(raw_dir, "movies.dat"))
    extra = _melu_extrainfos(raw_path(raw_dir, "movies_extrainfos.dat"))
    items = items.merge(extra, on="raw_item", how="left", validate="one_to_one")
    for column in ("directors", "writers", "actors"):
        items[column] = [v if isinstance(v, list) else [] for v in items[column]]
    items["synopsis"] = items["synopsis"].astype(object).where(items["synopsis"].notna(), None)
    return RawTables(ratings=ratings, items=items[ITEM_COLUMNS])


def _ml1m_movies(path: Path) -> pd.DataFrame:
    """movies.dat: latin-1, `MovieID::Title (Year)::Genre|Genre`."""
    fields = read_fields(path, "::", 3, "latin-1")
    ids = to_numbers(fields, path, 0, "MovieID")
    check_unique_ids(ids, path, "MovieID")
    title, year = split_title_year(fields[1])
    genres = split_list(fields[2], "|")
    return pd.DataFrame({"raw_item": ids, "title": title, "year": year, "genres": genres}).reset_index(
        drop=True
    )


def _melu_extrainfos(path: Path) -> pd.DataFrame:
    """MeLU movies_extrainfos.dat: UTF-8, CRLF, 11 `::` fields, "N/A" for missing.

    MovieID::Title::Year::Rated::Released::Genre::Director::Writer::Actors::Plot::Poster
    """
    fields = read_fields(path, "::", 11, "utf-8")
    ids = to_numbers(fields, path, 0, "MovieID")
    check_unique_ids(ids, path, "MovieID")
    plot = fields[9].str.strip()
    synopsis = plot.where((plot != MISSING) & (plot != ""), None)
    return pd.DataFrame(
        {
            "raw_item": ids,
            "directors": split_list(fields[6], ",", strip_credits=True),
            "writers": split_list(fields[7], ",", strip_credits=True),
            "actors": split_list(fields[8], ",", strip_credits=True),
            "synopsis": synopsis.astype(object),
        }
    ).reset_index(drop=True)


DATASETS.register("ml-1m")(
    DatasetSource(
        name="ml-1m",
        needs=(
            (
                RawFile(
                    "ratings.dat",
                    "ml-1m/ratings.dat",
                    None,
                    Remote(ML1M_ZIP.url, ML1M_ZIP.checksum, "ml-1m/ratings.dat"),
                ),
                # the mirror's reconstruction (no timestamps); it exists nowhere upstream, hence no remote
                RawFile(
                    "ratings_no_timestamp.dat",
                    "ml-1m/ratings_no_timestamp.dat",
                    "sha256:b153e8821b3b52d168f67097d5c24c737eeacae03fdf3500a3ce232b872f144e",
                ),
            ),
            (
                RawFile(
                    "movies.dat",
                    "ml-1m/movies.dat",
                    "sha256:0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
                    Remote(ML1M_ZIP.url, ML1M_ZIP.checksum, "ml-1m/movies.dat"),
                ),
            ),
            (
                RawFile(
                    "movies_extrainfos.dat",
                    "ml-1m-melu-extrainfos/movies_extrainfos.dat",
                    MELU_EXTRAINFOS_SHA256,
                    Remote(MELU_EXTRAINFOS_URL, MELU_EXTRAINFOS_SHA256),
                ),
            ),
        ),
        parser=parse_ml1m,
        default_rating_threshold=None,  # every rating is a positive interaction
    )
)


# ---------------------------------------------------------------------------------------------- ML-100K

ML100K_ZIP = Remote(
    "https://files.grouplens.org/datasets/movielens/ml-100k.zip", "md5:0e33842e24a9c977be4e0107933c0723"
)


def parse_ml100k(raw_dir: Path) -> RawTables:
    """ML-100K: u.data (tab-separated, with timestamps), u.item + u.genre (title, year, genres)."""
    ratings = read_numeric(raw_path(raw_dir, "u.data"), "\t", ["user", "item", "rating", "timestamp"])
    genre_names = _ml100k_genres(raw_path(raw_dir, "u.genre"))
    items = _ml100k_items(raw_path(raw_dir, "u.item"), genre_names)
    return RawTables(ratings=ratings, items=items)


def _ml100k_genres(path: Path) -> list[str]:
    """u.genre: `name|index` lines; the index is the position of the flag in u.item."""
    fields = read_fields(path, "|", 2, "latin-1")
    index = to_numbers(fields, path, 1, "genre index")
    if sorted(index) != list(range(len(index))):
        raise ValueError(f"{path}: genre indices must be 0..{len(index) - 1}, got {sorted(index)}")
    return fields[0].str.strip().to_numpy()[np.argsort(index.to_numpy())].tolist()


def _ml100k_items(path: Path, genre_names: list[str]) -> pd.DataFrame:
    """u.item: latin-1, `id|title (year)|release date|video release|IMDb URL|<one 0/1 flag per genre>`."""
    fields = read_fields(path, "|", 5 + len(genre_names), "latin-1")
    ids = to_numbers(fields, path, 0, "movie id")
    check_unique_ids(ids, path, "movie id")
    flags = pd.DataFrame(
        {g: to_numbers(fields, path, 5 + k, f"flag {g!r}") for k, g in enumerate(genre_names)}
    )
    flags.columns.name = "genre"
    flags.index.name = "line"
    long = flags.stack()
    long = long[long == 1]  # (line, genre) of every set flag, genres in u.genre order
    genres = long.reset_index("genre").groupby(level="line", sort=False)["genre"].agg(list)
    title, year = split_title_year(fields[1])
    # a title without "(year)" still has a release date "01-Jan-1995"; use its year when there is one
    release_year = pd.to_numeric(fields[2].str.strip().str[-4:], errors="coerce").astype("Int16")
    return pd.DataFrame(
        {
            "raw_item": ids,
            "title": title,
            "year": year.fillna(release_year),
            "genres": [genres.get(line, []) for line in fields.index],
            "directors": [[] for _ in fields.index],
            "writers": [[] for _ in fields.index],
            "actors": [[] for _ in fields.index],
            "synopsis": pd.Series(None, index=fields.index, dtype=object),
        }
    ).reset_index(drop=True)


DATASETS.register("ml-100k")(
    DatasetSource(
        name="ml-100k",
        needs=(
            (
                RawFile(
                    "u.data",
                    "ml-100k/u.data",
                    "sha256:06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
                    Remote(ML100K_ZIP.url, ML100K_ZIP.checksum, "ml-100k/u.data"),
                ),
            ),
            (
                RawFile(
                    "u.item",
                    "ml-100k/u.item",
                    "sha256:553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
                    Remote(ML100K_ZIP.url, ML100K_ZIP.checksum, "ml-100k/u.item"),
                ),
            ),
            (
                RawFile(
                    "u.genre",
                    "ml-100k/u.genre",
                    "sha256:9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
                    Remote(ML100K_ZIP.url, ML100K_ZIP.checksum, "ml-100k/u.genre"),
                ),
            ),
        ),
        parser=parse_ml100k,
        default_rating_threshold=None,
    )
)
