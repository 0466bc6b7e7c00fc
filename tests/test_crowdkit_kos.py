"""kdcore.crowdkit's KOS against live crowd-kit 1.4.2 on the binary datasets.

The random starts differ (kdcore's Generator, crowd-kit's global RandomState), so this
is an agreement check, not a step-by-step one; on these datasets the labels are equal.
"""

from __future__ import annotations

import pandas as pd
import pytest

from _crowdkit_oracle import answers, quiet

ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit 1.4.2 (the oracle) is not installed")

from kdcore.crowdkit import aggregation as kc  # noqa: E402


@pytest.mark.parametrize("name", ["bluebirds", "rte", "temp", "product"])
def test_kos_labels_equal_crowdkit(data_home, name):
    df = answers(data_home, name)
    a, b = quiet(ck.KOS().fit_predict, df), kc.KOS().fit_predict(df)
    assert (a == b.reindex(a.index)).mean() >= 0.99
    pd.testing.assert_series_equal(a, b)


@pytest.mark.parametrize("name", ["wsd", "dog"])
def test_kos_refuses_multiclass_as_crowdkit(data_home, name):
    df = answers(data_home, name)
    for lib in (ck, kc):
        with pytest.raises(ValueError, match="binary classification only"):
            quiet(lib.KOS().fit, df)
