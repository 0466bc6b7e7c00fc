"""The papers' experiments: profiles, tables, figures and the reproduction report.

The library (:mod:`kdcore.crowd`, :mod:`kdcore.distill`) holds the estimators,
engines, loaders, simulators and bounds; this package runs them as the two papers
did and sets our numbers beside the published ones. Nothing in the library imports
from here; matplotlib is imported only when a figure is drawn.

- :mod:`.profiles` -- the profile names every experiment takes (tiny, quick, full);
- :mod:`.paper` -- the numbers the papers printed;
- :mod:`.crowd` -- the task-type experiments (docs/maths.md B.6);
- :mod:`.scaling` -- soft vs hard labels: the neuron requirement on synthetic tasks;
- :mod:`.mnist` -- the MNIST two-layer table (``python -m kdcore.experiments.mnist``);
- :mod:`.deep` -- the VGG experiment on CIFAR-10 (``python -m kdcore.experiments.deep``);
- :mod:`.sweep` -- the width sweep behind ``kdcore distill sweep``;
- :mod:`.crowd_students` -- learning from crowds: crowd posteriors as the student's soft labels;
- :mod:`.plotting` -- the figures' shared style;
- :mod:`.report` -- ``kdcore reproduce``: runs the steps, writes report.md and results.json.

Submodules are imported on first use, so ``import kdcore.experiments`` is cheap.
"""

from __future__ import annotations

from .profiles import PROFILES

__all__ = ["PROFILES"]
