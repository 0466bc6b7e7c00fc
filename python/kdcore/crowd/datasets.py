"""Real crowdsourcing datasets with gold labels, read in place from the shared data folder.

Each dataset folder holds ``answers.csv`` (task, worker, label) and ``truth.csv``
(task, truth), ids and labels as strings as the source wrote them.
"""

from __future__ import annotations

import os

import pandas as pd

from .._data import data_home as _data_home
from ._responses import Responses

__all__ = ["list_datasets", "load", "DATASETS"]

# name -> (kind, responses in answers.csv, tasks, workers, classes, gold tasks answered); ../shared/data/README.md
DATASETS = {
    "bluebirds": ("binary", 4212, 108, 39, 2, 108),
    "rte": ("binary", 8000, 800, 164, 2, 800),
    "temp": ("binary", 4620, 462, 76, 2, 462),
    "product": ("binary", 24945, 8315, 176, 2, 8315),
    "wsd": ("multiclass", 1770, 177, 34, 3, 177),
    "dog": ("multiclass", 8070, 807, 109, 4, 807),
    "web": ("multiclass", 15567, 2665, 177, 5, 2653),
    "face": ("multiclass", 5242, 584, 27, 4, 584),
    "adult2": ("multiclass", 92721, 11040, 825, 4, 333),
}


def list_datasets(kind: str | None = None) -> list[str]:
    """Names of the real crowd datasets (``kind`` = "binary" or "multiclass" to filter)."""
    return [n for n, spec in DATASETS.items() if kind is None or spec[0] == kind]


def load(
    name: str,
    data_home: str | os.PathLike | None = None,
    *,
    duplicates: str = "keep_first",
    download: bool | None = None,
) -> tuple[Responses, pd.Series]:
    """Load a real dataset as ``(responses, truth)``.

    ``truth`` is a Series of gold labels indexed by task id, restricted to the
    tasks that have answers. Duplicate (task, worker) answers (adult2 has 2,922)
    are dropped keeping the first, as crowd-kit's reference numbers were made;
    ``responses.n_duplicates_`` says how many.

    The files are read from ``data_home``, else ``$KDCORE_DATA``, else a ``shared/data``
    folder above the working directory, else the cache; when none has them they are
    downloaded into the cache first (checksums verified) unless ``download=False`` or
    ``$KDCORE_FETCH=0`` (see :func:`kdcore._data.data_home`).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list_datasets()}")
    folder = _data_home(data_home, f"crowd/{name}", download=download)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder {folder} does not exist")
    answers = pd.read_csv(folder / "answers.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(folder / "truth.csv", dtype=str, keep_default_na=False)
    responses = Responses.from_dataframe(answers, duplicates=duplicates)
    gold = truth.drop_duplicates("task").set_index("task")["truth"]
    gold = gold[gold.index.isin(responses.task_ids)]
    gold.name = "truth"
    return responses, gold
