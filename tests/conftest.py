"""Fixtures shared by several test modules."""

from pathlib import Path

import pandas as pd
import pytest

from smoke import MIRROR, run_smoke
from specrec.data.download import materialize
from specrec.data.prepare import prepare


@pytest.fixture(scope="session")
def ml1m_items(tmp_path_factory) -> pd.DataFrame:
    """ML-1M's items table as prepare writes it, from the offline mirror (skips when it is absent)."""
    if not (MIRROR / "ml-1m").is_dir():
        pytest.skip(f"offline mirror {MIRROR} not present")
    root = tmp_path_factory.mktemp("ml-1m")
    materialize("ml-1m", root / "raw", str(MIRROR))
    prepare("ml-1m", root / "raw", root / "out")
    return pd.read_parquet(root / "out" / "items.parquet")


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory) -> Path:
    """The smoke DAG run locally once per session (skips without the offline mirror)."""
    if not (MIRROR / "ml-100k").is_dir():
        pytest.skip(f"no dataset mirror at {MIRROR}")
    workdir = tmp_path_factory.mktemp("smoke")
    run_smoke(workdir)
    return workdir
