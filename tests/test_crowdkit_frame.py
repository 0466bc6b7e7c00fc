"""kdcore.crowdkit's first-appearance coding against a direct construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdcore.crowdkit._frame import code_answers, first_order


def reference_first_order(codes: np.ndarray, n: int) -> np.ndarray:
    seen: dict[int, None] = {}
    for c in codes.tolist():
        seen.setdefault(c, None)
    return np.array(list(seen), dtype=np.int64)


@pytest.mark.parametrize(
    ("n_rows", "n_values"),
    [(0, 0), (1, 1), (10, 3), (1770, 34), (5000, 4), (20_000, 30), (50_000, 1_000), (100_000, 50_000)],
)
@pytest.mark.parametrize("layout", ["random", "sorted", "late"])
def test_first_order_is_order_of_first_appearance(n_rows, n_values, layout):
    rng = np.random.default_rng(n_rows + n_values)
    codes = rng.integers(0, n_values, n_rows) if n_values else np.zeros(0, np.int64)
    if layout == "sorted":
        codes = np.sort(codes)
    elif layout == "late" and n_rows > 2:  # most values first seen near the end
        codes[: n_rows - n_values] = codes[0]
    np.testing.assert_array_equal(first_order(codes, n_values), reference_first_order(codes, n_values))


def test_code_answers_numbers_ids_by_first_appearance():
    df = pd.DataFrame({"task": [7, 3, 7, 9, 3], "worker": [2, 1, 1, 2, 5], "label": [1, 0, np.nan, 1, 0]})
    c = code_answers(df)
    assert list(c.tasks) == [7, 3, 9] and list(c.workers) == [2, 1, 5] and list(c.classes) == [1.0, 0.0]
    np.testing.assert_array_equal(c.responses.task, [0, 1, 2, 1])
    np.testing.assert_array_equal(c.responses.worker, [0, 1, 0, 2])
    np.testing.assert_array_equal(c.nan_task, [0])
    ordered = pd.DataFrame({"task": [1, 1, 2], "worker": [1, 2, 1], "label": [0, 1, 1]})
    c = code_answers(ordered)  # sorted order is the order of first appearance: no renumbering
    assert list(c.tasks) == [1, 2] and list(c.workers) == [1, 2] and list(c.classes) == [0, 1]
