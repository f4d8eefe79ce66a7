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
    KGFiles,
    RawFile,
    RawTables,
    Remote,
)
from specrec.data.sources.readers import (
    check_unique_ids,
    first_present,
    number_columns,
    raw_path,
    read_csv_records,
    read_fields,
    read_numeric,
    read_numeric_csv,
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
    """ML-1M ratings + movies.dat (title, year, genres) + MeLU extrainfos (credits, synopsis, MPAA rating)."""
    ratings_path = first_present(raw_dir, ML1M_RATINGS)
    names = ["user", "item", "rating"] + (["timestamp"] if ratings_path.name == "ratings.dat" else [])
    ratings = read_numeric(ratings_path, "::", names)
    items = _ml1m_movies(raw_path(raw_dir, "movies.dat"))
    extra = _melu_extrainfos(raw_path(raw_dir, "movies_extrainfos.dat"))
    items = items.merge(extra, on="raw_item", how="left", validate="one_to_one")
    for column in ("directors", "writers", "actors"):
        items[column] = [v if isinstance(v, list) else [] for v in items[column]]
    for column in ("synopsis", "rated"):  # None, not NaN, for the two movies MeLU lacks
        items[column] = items[column].astype(object).where(items[column].notna(), None)
    return RawTables(ratings=ratings, items=items[ITEM_COLUMNS])


def _ml1m_movies(path: Path) -> pd.DataFrame:
    """movies.dat: latin-1, `MovieID::Title (Year)::Genre|Genre`."""
    fields = read_fields(path, "::", 3, "latin-1")
    ids = to_numbers(fields, path, 0, "MovieID")
    fields = fields.loc[ids.index]  # without the lines bad_rows="warn" skipped
    check_unique_ids(ids, path, "MovieID")
    title, year = split_title_year(fields[1])
    genres = split_list(fields[2], "|")
    return pd.DataFrame({"raw_item": ids, "title": title, "year": year, "genres": genres}).reset_index(
        drop=True
    )


def _melu_extrainfos(path: Path) -> pd.DataFrame:
    """MeLU movies_extrainfos.dat: UTF-8, CRLF, 11 `::` fields, "N/A" for missing.

    MovieID::Title::Year::Rated::Released::Genre::Director::Writer::Actors::Plot::Poster

    `rated` is the MPAA rating as MeLU gives it (G, PG, PG-13, R, NC-17, or UNRATED, which is a value:
    the film was released unrated); "N/A" or blank is None.
    """
    fields = read_fields(path, "::", 11, "utf-8")
    ids = to_numbers(fields, path, 0, "MovieID")
    fields = fields.loc[ids.index]
    check_unique_ids(ids, path, "MovieID")
    plot = fields[9].str.strip()
    synopsis = plot.where((plot != MISSING) & (plot != ""), None)
    rated = fields[3].str.strip()
    rated = rated.where((rated != MISSING) & (rated != ""), None)
    return pd.DataFrame(
        {
            "raw_item": ids,
            "directors": split_list(fields[6], ",", strip_credits=True),
            "writers": split_list(fields[7], ",", strip_credits=True),
            "actors": split_list(fields[8], ",", strip_credits=True),
            "synopsis": synopsis.astype(object),
            "rated": rated.astype(object),
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
    fields = fields.loc[index.index]
    if sorted(index) != list(range(len(index))):
        raise ValueError(f"{path}: genre indices must be 0..{len(index) - 1}, got {sorted(index)}")
    return fields[0].str.strip().to_numpy()[np.argsort(index.to_numpy())].tolist()


def _ml100k_items(path: Path, genre_names: list[str]) -> pd.DataFrame:
    """u.item: latin-1, `id|title (year)|release date|video release|IMDb URL|<one 0/1 flag per genre>`."""
    fields = read_fields(path, "|", 5 + len(genre_names), "latin-1")
    # every numeric column in one call: under bad_rows="warn" a bad line goes from all of them at once
    flag_names = [f"flag {g!r}" for g in genre_names]
    numbers = number_columns(fields, path, {0: "movie id"} | {5 + k: f for k, f in enumerate(flag_names)})
    fields = fields.loc[numbers.index]
    ids = numbers["movie id"]
    check_unique_ids(ids, path, "movie id")
    flags = numbers[flag_names].set_axis(genre_names, axis=1)
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
            "rated": pd.Series(None, index=fields.index, dtype=object),
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


# ------------------------------------------------------------------------------ CSV releases (latest, 20M)

ML_CSV_RATINGS_HEADER = ("userId", "movieId", "rating", "timestamp")
ML_CSV_MOVIES_HEADER = ("movieId", "title", "genres")
NO_GENRES = "(no genres listed)"
# compact dtypes: ML-20M has 20 M ratings; ids fit int32 (largest movieId 131262), ratings 0.5..5 in halves
ML_CSV_DTYPES = {"user": np.int32, "item": np.int32, "rating": np.float32, "timestamp": np.int64}


def parse_movielens_csv(raw_dir: Path) -> RawTables:
    """The CSV releases (ml-latest-small, ml-20m): ratings.csv + movies.csv (title, year, genres).

    ratings.csv (`userId,movieId,rating,timestamp`, header) is read in blocks into compact dtypes, so
    ML-20M's 20 M lines take about 400 MB; movies.csv is UTF-8 with quoted titles (`movieId,title,genres`,
    genres `|`-separated, "(no genres listed)" for none).
    """
    ratings = read_numeric_csv(
        raw_path(raw_dir, "ratings.csv"),
        list(ML_CSV_DTYPES),
        ML_CSV_DTYPES,
        header=ML_CSV_RATINGS_HEADER,
    )
    return RawTables(ratings=ratings, items=_movies_csv(raw_path(raw_dir, "movies.csv")))


def _movies_csv(path: Path) -> pd.DataFrame:
    fields = read_csv_records(path, 3, "utf-8", header=ML_CSV_MOVIES_HEADER)
    ids = to_numbers(fields, path, 0, "movieId")
    fields = fields.loc[ids.index]
    check_unique_ids(ids, path, "movieId")
    title, year = split_title_year(fields[1])
    genres = fields[2].where(fields[2].str.strip() != NO_GENRES, "")
    return pd.DataFrame(
        {
            "raw_item": ids,
            "title": title,
            "year": year,
            "genres": split_list(genres, "|"),
            "directors": [[] for _ in fields.index],
            "writers": [[] for _ in fields.index],
            "actors": [[] for _ in fields.index],
            "synopsis": pd.Series(None, index=fields.index, dtype=object),
            "rated": pd.Series(None, index=fields.index, dtype=object),
        }
    ).reset_index(drop=True)


ML_LATEST_SMALL_ZIP = Remote(
    # GroupLens regenerates ml-latest-small now and then, so no checksum is pinned: the first download is
    # recorded in the checksum lock file (trust on first use) and later downloads must match it
    "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
    None,
)

DATASETS.register("ml-latest-small")(
    DatasetSource(
        name="ml-latest-small",
        needs=(
            (
                RawFile(
                    "ratings.csv",
                    "ml-latest-small/ratings.csv",
                    # the mirror's September 2018 release (SOURCE.md); not imposed on a fresh download
                    "sha256:aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
                    Remote(ML_LATEST_SMALL_ZIP.url, None, "ml-latest-small/ratings.csv"),
                ),
            ),
            (
                RawFile(
                    "movies.csv",
                    "ml-latest-small/movies.csv",
                    "sha256:5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
                    Remote(ML_LATEST_SMALL_ZIP.url, None, "ml-latest-small/movies.csv"),
                ),
            ),
        ),
        parser=parse_movielens_csv,
        default_rating_threshold=None,  # every rating is a positive interaction, as for ML-1M
    )
)

ML20M_ZIP = Remote(
    # GroupLens' published MD5 (its ml-20m.zip.md5 sidecar reads "MD5 (ml-20m.zip) = cd245b17..."); the
    # same value is pinned by many independent public download scripts (e.g. datamaestro's MovieLens)
    "https://files.grouplens.org/datasets/movielens/ml-20m.zip",
    "md5:cd245b17a1ae2cc31bb14903e1204af3",
)

# KGCN's Satori KG of ML-20M (paper 1's KG): `head<TAB>relation<TAB>tail` with Satori entity ids and
# relation names such as "film.film.genre"; the item map gives ML-20M movieId -> Satori id. GitHub raw
# files have no published checksum: the first download is recorded in the checksum lock file (TOFU).
KGCN_MOVIE = "https://raw.githubusercontent.com/hwwang55/KGCN/master/data/movie"
ML20M_KG = KGFiles(
    triples=RawFile("kg.txt", "ml-20m/kg.txt", None, Remote(f"{KGCN_MOVIE}/kg.txt", None)),
    item_map=RawFile(
        "item_index2entity_id.txt",
        "ml-20m/item_index2entity_id.txt",
        None,
        Remote(f"{KGCN_MOVIE}/item_index2entity_id.txt", None),
    ),
)

DATASETS.register("ml-20m")(
    DatasetSource(
        name="ml-20m",
        needs=(
            # not in the offline mirror; the mirror paths say where a copy would go
            (
                RawFile(
                    "ratings.csv",
                    "ml-20m/ratings.csv",
                    None,
                    Remote(ML20M_ZIP.url, ML20M_ZIP.checksum, "ml-20m/ratings.csv"),
                ),
            ),
            (
                RawFile(
                    "movies.csv",
                    "ml-20m/movies.csv",
                    None,
                    Remote(ML20M_ZIP.url, ML20M_ZIP.checksum, "ml-20m/movies.csv"),
                ),
            ),
        ),
        parser=parse_movielens_csv,
        default_rating_threshold=4.0,  # paper 1: a rating >= 4 is a positive interaction
        kg=ML20M_KG,
    )
)
