"""The numbers the papers printed, in one place.

Only published numbers (and crowd-kit's reference accuracies) live here; the
experiments put them beside ours (:mod:`kdcore.experiments.report.compare` says
where the two agree and where they differ). Nothing here is tuned to make a
table match.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["MNIST_TABLE", "DEEP_TABLE", "MNIST_GAMMA", "CROWDKIT_REAL"]

#: Mandal, Lin, Srikant (L4DC 2025), Experiment 1 (docs/maths.md A.5): MNIST "digit > 4",
#: two-layer ReLU, teacher 512 neurons; test accuracy (%). ``variant``: "full" (all digits)
#: or "reduced" (digits 1, 7, 4, 9 removed).
MNIST_TABLE = pd.DataFrame(
    [
        ("reduced", 8, 98.75, 97.19, 97.67),
        ("reduced", 6, 98.75, 96.84, 97.26),
        ("reduced", 4, 98.75, 93.04, 95.83),
        ("full", 8, 98.34, 95.77, 96.58),
        ("full", 6, 98.34, 95.33, 96.00),
        ("full", 4, 98.34, 88.84, 95.62),
    ],
    columns=["variant", "m", "teacher", "hard", "soft"],
)

#: Experiment 2 (docs/maths.md A.5): CIFAR-10 cat vs dog, VGG 8+3 teacher, VGG 2+3 student, Gaussian pixel
#: noise; test accuracy (%) read off the paper's figure (about +-0.3).
DEEP_TABLE = pd.DataFrame(
    [
        (0.01, 82.5, 74.6, 76.0),
        (0.03, 78.4, 74.2, 75.2),
        (0.05, 79.1, 73.7, 74.2),
        (0.10, 77.7, 67.1, 75.0),
        (0.20, 73.4, 62.1, 70.4),
    ],
    columns=["noise_var", "teacher", "hard", "soft"],
)

#: Reference accuracies on the real crowd data (crowd-kit 1.4.2 MajorityVote and
#: DawidSkene(n_iter=100, tol=1e-5), measured on the data kdcore reads); not the paper's, a
#: widely used implementation's.
CROWDKIT_REAL = pd.DataFrame(
    [
        ("bluebirds", 0.759, 0.889),
        ("rte", 0.875, 0.928),
        ("temp", 0.939, 0.942),
        ("product", 0.897, 0.940),
        ("wsd", 0.994, 0.994),
        ("dog", 0.812, 0.843),
        ("web", 0.688, 0.829),
        ("face", 0.634, 0.640),
        ("adult2", 0.766, 0.766),
    ],
    columns=["dataset", "crowdkit_mv", "crowdkit_ds"],
)

#: The margin gamma the paper sampled on MNIST digit pairs (docs/maths.md A.4), by (digit a, digit b).
MNIST_GAMMA = {(0, 1): 0.13, (3, 5): 0.05, (4, 9): 0.05}
