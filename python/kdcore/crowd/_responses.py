"""The crowd response data model: an immutable set of (task, worker, label) answers.

Every aggregator takes a :class:`Responses`. Original task ids, worker ids and
label values (ints, strings, any hashable) are kept; internally answers are
dense 0-based int32 codes with two compressed views built in O(N) by the compiled
core (or, when it is not built, by its numpy twins in
:mod:`kdcore.crowd._reference_responses`): task-major (``task_indptr``, ``task_worker``, ``task_label``) and
worker-major (``worker_indptr``, ``worker_task``, ``worker_label``).
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
import pandas as pd

from ..backends import _core
from . import _reference_responses

__all__ = ["Responses"]

#: the index kernels (factorize_int64, find_duplicates, build_csr): compiled, or their numpy twins
_index = _core if _core is not None else _reference_responses

_MAX_CODES = 2**31 - 1
_DUP_MODES = {"error": 0, "keep_first": 1, "keep_last": 2, "keep_all": -1}  # keep_all: every answer counts
_MAX_DENSE_CELLS = 200_000_000  # to_matrix() refuses larger (it would need > 800 MB)


def _column(values: Any, what: str) -> Any:
    """Turn a user column into a numpy array or pandas object we can factorise."""
    if isinstance(values, (pd.Series, pd.Index)):
        return values
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return pd.Series(values)
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{what} must be 1-d, got an array of shape {values.shape}")
        return values
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{what} must be an array-like of ids, got {type(values).__name__}")
    arr = (
        np.asarray(values)
        if not isinstance(values, list) or not values or not isinstance(values[0], (list, tuple, dict, set))
        else None
    )
    if arr is None or arr.ndim != 1:
        arr = pd.Series(list(values), dtype=object).to_numpy()
    elif arr.dtype.kind == "f" and all(isinstance(v, numbers.Integral) for v in values):
        # Python ints beyond int64 (e.g. [2**63, -1]) become float64 in numpy and distinct
        # ids would collide: keep them exact as objects
        arr = pd.Series(list(values), dtype=object).to_numpy()
    elif arr.dtype.kind in "US" and not all(isinstance(v, (str, bytes)) for v in values):
        # numpy turns [0, "a"] into ["0", "a"]: the int id 0 would come back as "0", and
        # [1, "1"] would become one id. Keep the values as given.
        arr = pd.Series(list(values), dtype=object).to_numpy()
    return arr


def _check_missing(values: Any, what: str) -> None:
    if isinstance(values, (pd.Series, pd.Index)) and isinstance(values.dtype, np.dtype) and values.dtype.kind in "fc":
        values = values.to_numpy()  # pd.isna does not flag inf
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return
    if isinstance(values, np.ndarray) and values.dtype.kind in "fc":
        bad = ~np.isfinite(values)
    else:
        bad = np.asarray(pd.isna(values), dtype=bool)
        if isinstance(values, np.ndarray) and values.dtype == object and not bad.any():
            # floats hidden in object columns: inf is as bad as NaN
            flt = np.fromiter((isinstance(v, float) and not np.isfinite(v) for v in values), bool, len(values))
            bad = bad | flt
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what} has {int(bad.sum())} missing or non-finite values (NaN/None/inf); first at row {pos}")


def factorize_column(values: Any, what: str, *, is_label: bool) -> tuple[np.ndarray, pd.Index]:
    """Dense sorted int32 codes and the distinct values, for ids or labels."""
    _check_missing(values, what)
    if getattr(values, "dtype", None) == np.float16:  # pandas has no float16 index
        values = values.astype(np.float32)
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) and values.dtype.kind in "iufb" else values
    if isinstance(arr, np.ndarray) and arr.dtype.kind == "c":
        raise TypeError(f"{what} has complex dtype {arr.dtype}; ids and labels must be ints or strings")
    if isinstance(arr, np.ndarray) and arr.dtype.kind == "f":
        frac = arr != np.floor(arr)
        if frac.any():
            if is_label:
                pos = int(np.flatnonzero(frac)[0])
                raise ValueError(
                    f"{what} has non-integer float values (e.g. {_show(arr[pos])} at row {pos}); "
                    "class labels must be integers or strings"
                )
        elif np.abs(arr).max(initial=0) < 2**53:
            codes, uniq = _index.factorize_int64(np.ascontiguousarray(arr, dtype=np.int64))
            return codes, pd.Index(uniq.astype(arr.dtype))
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "iub":
        if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > np.iinfo(np.int64).max:
            pass  # ids beyond int64: factorised by pandas below
        else:
            codes, uniq = _index.factorize_int64(np.ascontiguousarray(arr, dtype=np.int64))
            return codes, pd.Index(uniq.astype(arr.dtype))
    try:
        codes, uniq = pd.factorize(values, sort=True)
    except TypeError:  # mixed, unorderable types: order of first appearance
        codes, uniq = pd.factorize(values, sort=False)
    if len(uniq) > _MAX_CODES:
        raise ValueError(f"{what} has {len(uniq)} distinct values; kdcore indexes at most 2^31 - 1")
    return codes.astype(np.int32, copy=False), pd.Index(uniq)


def _show(value: Any) -> str:
    """repr of an id or label as the user wrote it (1, 'a'), not numpy's np.int64(1)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


class Responses:
    """An immutable set of crowd answers (task, worker, label).

    Build one with :meth:`from_dataframe`, :meth:`from_arrays` or :meth:`read_csv`.

    Parameters of the constructors
    ------------------------------
    duplicates : {"error", "keep_first", "keep_last", "keep_all"}
        What to do when a worker answered the same task more than once ("keep_all":
        every answer is a vote of its own, as crowd-kit counts them).
    classes : sequence, optional
        The label values, in order. By default the sorted distinct labels seen;
        give them to declare a class nobody answered (or a binary task where
        every answer happens to be the same).

    Examples
    --------
    >>> import pandas as pd
    >>> from kdcore.crowd import Responses
    >>> df = pd.DataFrame({"task": ["a", "a", "b"], "worker": [1, 2, 1], "label": ["y", "n", "y"]})
    >>> r = Responses.from_dataframe(df)
    >>> r.n_tasks, r.n_workers, list(r.classes_)
    (2, 2, ['n', 'y'])
    """

    __slots__ = (
        "task",
        "worker",
        "label",
        "task_ids",
        "worker_ids",
        "classes_",
        "task_indptr",
        "task_worker",
        "task_label",
        "worker_indptr",
        "worker_task",
        "worker_label",
        "n_duplicates_",
        "_frozen",
    )

    # the slots, set once by _from_codes and then frozen (arrays read-only)
    task: np.ndarray  #: (N,) int32 task code of each answer, in input order
    worker: np.ndarray  #: (N,) int32 worker code of each answer
    label: np.ndarray  #: (N,) int32 class code of each answer
    task_ids: pd.Index  #: original task id of each task code
    worker_ids: pd.Index  #: original worker id of each worker code
    classes_: np.ndarray  #: original label value of each class code
    task_indptr: np.ndarray  #: (n_tasks + 1,) int64 offsets of the task-major view
    task_worker: np.ndarray  #: worker code of each answer, task-major
    task_label: np.ndarray  #: class code of each answer, task-major
    worker_indptr: np.ndarray  #: (n_workers + 1,) int64 offsets of the worker-major view
    worker_task: np.ndarray  #: task code of each answer, worker-major
    worker_label: np.ndarray  #: class code of each answer, worker-major
    n_duplicates_: int  #: duplicate answers dropped at construction

    # ------------------------------------------------------------------ construction
    def __init__(self, *args, **kwargs):
        raise TypeError("use Responses.from_dataframe, Responses.from_arrays or Responses.read_csv")

    @classmethod
    def _from_codes(cls, task, worker, label, task_ids, worker_ids, classes, n_duplicates=0) -> Responses:
        self = object.__new__(cls)
        n_tasks, n_workers = len(task_ids), len(worker_ids)
        set_ = object.__setattr__
        set_(self, "_frozen", False)
        self.task, self.worker, self.label = task, worker, label
        self.task_ids, self.worker_ids = task_ids, worker_ids
        self.classes_ = classes
        self.task_indptr, self.task_worker, self.task_label = _index.build_csr(task, worker, label, n_tasks)
        self.worker_indptr, self.worker_task, self.worker_label = _index.build_csr(worker, task, label, n_workers)
        self.n_duplicates_ = int(n_duplicates)
        _readonly(
            self.task,
            self.worker,
            self.label,
            self.task_indptr,
            self.task_worker,
            self.task_label,
            self.worker_indptr,
            self.worker_task,
            self.worker_label,
        )
        if isinstance(self.classes_, np.ndarray):
            self.classes_.flags.writeable = False
        set_(self, "_frozen", True)
        return self

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError("Responses is immutable; build a new one (e.g. with subset_tasks)")
        object.__setattr__(self, name, value)

    @classmethod
    def from_arrays(cls, tasks, workers, labels, *, duplicates: str = "error", classes=None) -> Responses:
        """Build from three equal-length arrays of task ids, worker ids and labels."""
        if duplicates not in _DUP_MODES:
            raise ValueError(f"duplicates must be one of {list(_DUP_MODES)}, got {duplicates!r}")
        cols = [_column(tasks, "tasks"), _column(workers, "workers"), _column(labels, "labels")]
        lens = [len(c) for c in cols]
        if len(set(lens)) != 1:
            raise ValueError(f"tasks, workers and labels must have the same length, got {lens}")
        if lens[0] == 0:
            raise ValueError("no responses: tasks, workers and labels are empty")
        t, task_ids = factorize_column(cols[0], "task ids", is_label=False)
        w, worker_ids = factorize_column(cols[1], "worker ids", is_label=False)
        lab, seen = factorize_column(cols[2], "labels", is_label=True)
        if classes is not None:
            classes_idx = pd.Index(list(classes))
            if classes_idx.has_duplicates:
                raise ValueError(f"classes has repeated values: {list(classes_idx[classes_idx.duplicated()])}")
            pos = classes_idx.get_indexer(seen)
            if (pos < 0).any():
                raise ValueError(
                    f"labels {[_show(v) for v in seen[pos < 0][:5]]} are not among classes={list(classes_idx)}"
                )
            lab = pos.astype(np.int32)[lab]
            seen = classes_idx
        if len(seen) < 2:
            raise ValueError(
                f"only one class ({_show(seen[0])}) appears in the labels; aggregation needs at least two. "
                "Pass classes=[...] to declare the classes if the others were simply never answered"
            )
        mode = _DUP_MODES[duplicates]
        if mode < 0:  # keep_all: nothing to find
            keep, n_dup, first = None, 0, 0
        else:
            keep, n_dup, first = _index.find_duplicates(t, w, len(task_ids), len(worker_ids), mode)
        if n_dup and duplicates == "error":
            raise ValueError(
                f"{n_dup} duplicate (task, worker) answers; the first repeats task {_show(task_ids[t[first]])}, "
                f"worker {_show(worker_ids[w[first]])} at row {first}. Pass duplicates='keep_first' or 'keep_last'"
            )
        if n_dup and keep is not None:
            mask = keep.view(bool)
            t, w, lab = t[mask], w[mask], lab[mask]
        classes_arr = np.asarray(
            seen.to_numpy(dtype=object)
            if seen.dtype == object or str(seen.dtype) in ("str", "string")
            else seen.to_numpy()
        )
        return cls._from_codes(
            np.ascontiguousarray(t, np.int32),
            np.ascontiguousarray(w, np.int32),
            np.ascontiguousarray(lab, np.int32),
            task_ids,
            worker_ids,
            classes_arr,
            n_dup,
        )

    @classmethod
    def from_dataframe(
        cls,
        df: pd.DataFrame,
        task: str = "task",
        worker: str = "worker",
        label: str = "label",
        *,
        duplicates: str = "error",
        classes=None,
    ) -> Responses:
        """Build from a DataFrame with crowd-kit's column names (``task``, ``worker``, ``label``) by default."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in (task, worker, label) if c not in df.columns]
        if missing:
            raise ValueError(
                f"column(s) {missing} not in the DataFrame; it has {list(df.columns)}. "
                "Name them with task=, worker=, label="
            )
        return cls.from_arrays(df[task], df[worker], df[label], duplicates=duplicates, classes=classes)

    @classmethod
    def read_csv(
        cls,
        path: str | os.PathLike,
        task: str = "task",
        worker: str = "worker",
        label: str = "label",
        *,
        duplicates: str = "error",
        classes=None,
        **read_csv_kwargs,
    ) -> Responses:
        """Read a crowd-kit style CSV (one answer per row) and build from it."""
        try:
            df = pd.read_csv(path, **read_csv_kwargs)
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{path}: the file is empty") from exc
        return cls.from_dataframe(df, task, worker, label, duplicates=duplicates, classes=classes)

    # ------------------------------------------------------------------ properties
    @property
    def n_tasks(self) -> int:
        return len(self.task_ids)

    @property
    def n_workers(self) -> int:
        return len(self.worker_ids)

    @property
    def n_classes(self) -> int:
        return len(self.classes_)

    @property
    def n_responses(self) -> int:
        return int(self.task.shape[0])

    def __len__(self) -> int:
        return self.n_responses

    @property
    def task_counts(self) -> pd.Series:
        """Answers per task, indexed by task id."""
        return pd.Series(np.diff(self.task_indptr), index=self.task_ids, name="n_answers")

    @property
    def worker_counts(self) -> pd.Series:
        """Answers per worker, indexed by worker id."""
        return pd.Series(np.diff(self.worker_indptr), index=self.worker_ids, name="n_answers")

    def __repr__(self) -> str:
        return (
            f"Responses(n_responses={self.n_responses}, n_tasks={self.n_tasks}, n_workers={self.n_workers}, "
            f"classes={list(self.classes_)})"
        )

    # ------------------------------------------------------------------ conversions
    def to_dataframe(self) -> pd.DataFrame:
        """The answers with their original ids and label values (crowd-kit's columns)."""
        return pd.DataFrame(
            {
                "task": self.task_ids.take(self.task),
                "worker": self.worker_ids.take(self.worker),
                "label": np.asarray(self.classes_)[self.label],
            }
        )

    def to_matrix(self, fill_value: int = -1) -> np.ndarray:
        """Dense workers x tasks matrix of class codes (``fill_value`` where no answer). Small data only."""
        cells = self.n_workers * self.n_tasks
        if cells > _MAX_DENSE_CELLS:
            raise MemoryError(
                f"to_matrix would need a {self.n_workers} x {self.n_tasks} matrix "
                f"({cells * 4 / 1e9:.1f} GB); use the task-major or worker-major views instead"
            )
        out = np.full((self.n_workers, self.n_tasks), fill_value, dtype=np.int32)
        out[self.worker, self.task] = self.label
        return out

    def subset_tasks(self, mask_or_ids, *, drop_unused_workers: bool = False) -> Responses:
        """Responses restricted to some tasks.

        ``mask_or_ids`` is a boolean mask over ``task_ids`` (in their order) or a
        collection of task ids. Classes are kept (a subset may not use all of
        them); workers are kept too unless ``drop_unused_workers``, so worker
        codes stay aligned with the full data (what per-type fits need).
        """
        m = np.asarray(mask_or_ids) if not isinstance(mask_or_ids, (pd.Series, pd.Index)) else mask_or_ids.to_numpy()
        if m.dtype == bool:
            if m.shape != (self.n_tasks,):
                raise ValueError(f"a boolean task mask must have length n_tasks={self.n_tasks}, got shape {m.shape}")
            keep_task = m
        else:
            pos = self.task_ids.get_indexer(pd.Index(m.ravel()))
            if (pos < 0).any():
                raise ValueError(f"unknown task ids: {list(m.ravel()[pos < 0][:5])}")
            keep_task = np.zeros(self.n_tasks, bool)
            keep_task[pos] = True
        if not keep_task.any():
            raise ValueError("subset_tasks selected no task")
        new_code = np.cumsum(keep_task, dtype=np.int64) - 1
        sel = keep_task[self.task]
        t = new_code[self.task[sel]].astype(np.int32)
        w, lab = self.worker[sel], self.label[sel]
        worker_ids = self.worker_ids
        if drop_unused_workers:
            used = np.zeros(self.n_workers, bool)
            used[w] = True
            wcode = np.cumsum(used, dtype=np.int64) - 1
            w = wcode[w].astype(np.int32)
            worker_ids = worker_ids[used]
        return Responses._from_codes(
            np.ascontiguousarray(t),
            np.ascontiguousarray(w, np.int32),
            np.ascontiguousarray(lab, np.int32),
            self.task_ids[keep_task],
            worker_ids,
            np.array(self.classes_, copy=True),
        )

    @staticmethod
    def coerce(data, **kwargs) -> Responses:
        """Accept a Responses or a crowd-kit style DataFrame (what every aggregator's ``fit`` takes)."""
        if isinstance(data, Responses):
            return data
        if isinstance(data, pd.DataFrame):
            return Responses.from_dataframe(data, **kwargs)
        raise TypeError(
            f"expected kdcore.crowd.Responses or a pandas DataFrame with task/worker/label columns, "
            f"got {type(data).__name__}"
        )
