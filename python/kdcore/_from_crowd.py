"""From crowd answers to a trained student in one call (``kdcore distill from-crowd``).

:func:`from_crowd` reads the answers (a ``task,worker,label`` CSV), the features of the
tasks (``.npy`` with a task-id file, or Parquet with a ``task`` column or a task-id
index), aggregates the answers into training targets (``--labels``), trains the two-layer
student of width ``width`` on every answered task (matched to its features by task id),
writes the trained weights and the soft labels used, and returns (and prints) the
student's accuracy on the gold tasks when a truth file is given.

Ids and labels are read as strings, as :func:`kdcore.crowd.datasets.load` does, so the ids
of the three files match whatever their types in the files. Features of tasks nobody
answered are not used (there is no label to train on); an answered task without features
is an error. Rows are scaled to unit norm by default (the student's theory assumes
||x|| <= 1; ``scale="none"`` keeps them as they are).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["LABEL_SOURCES", "from_crowd", "read_features"]

LABEL_SOURCES = ("ds-soft", "ds-map", "mv", "typeaware-soft", "typeaware-map", "crowdlayer")


def read_features(path, task_ids=None) -> pd.DataFrame:
    """Features as a float DataFrame indexed by task id (str).

    ``.npy``: a 2-d array; ``task_ids`` is a file of one id per row (``.npy``, or text with one
    id a line). ``.parquet``: a ``task`` column (or, without one, the index) holds the ids;
    every other column is a feature.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"features file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        X = np.load(path, allow_pickle=False)
        if X.ndim != 2:
            raise ValueError(f"features {path}: expected a 2-d array (tasks x features), got shape {X.shape}")
        if task_ids is None:
            raise ValueError(
                f"features {path} is a .npy array without task ids: give the task-id file (one id per row)"
            )
        tp = Path(task_ids)
        if not tp.exists():
            raise ValueError(f"task-id file {tp} does not exist")
        if tp.suffix.lower() == ".npy":
            ids = np.load(tp, allow_pickle=False).astype(str)
        else:
            ids = np.array([s.strip() for s in tp.read_text().splitlines() if s.strip() != ""], dtype=str)
        if ids.ndim != 1 or ids.shape[0] != X.shape[0]:
            raise ValueError(
                f"task-id file {tp} has {ids.shape[0]} ids but {path} has {X.shape[0]} rows: every row needs its task id"
            )
        df = pd.DataFrame(X, index=pd.Index(ids, name="task"))
    elif suffix in (".parquet", ".pq"):
        if task_ids is not None:
            raise ValueError(
                "a Parquet features file carries its task ids (a 'task' column); do not give a task-id file"
            )
        df = pd.read_parquet(path)
        if "task" in df.columns:
            if df["task"].isna().any():
                raise ValueError(f"features {path}: {int(df['task'].isna().sum())} row(s) have no task id")
            df = df.set_index("task")
        df.index = pd.Index(df.index.astype(str), name="task")
    else:
        raise ValueError(f"features must be a .npy or .parquet file, got {path.name}")
    bad = [c for c in df.columns if df[c].dtype.kind not in "fiu"]
    if bad:
        raise ValueError(f"features {path}: non-numeric column(s) {bad[:5]}")
    if not df.index.is_unique:
        dup = df.index[df.index.duplicated()].unique()
        raise ValueError(f"features {path}: task ids must be unique; repeated: {list(dup[:5])}")
    return df.astype(np.float64)


def _targets(responses, labels: str, seed: int):
    from .crowd import DawidSkene, MajorityVote, TypeAware

    model: DawidSkene | MajorityVote | TypeAware
    if labels in ("ds-soft", "ds-map"):
        model = DawidSkene().fit(responses)
    elif labels == "mv":
        model = MajorityVote(random_state=seed).fit(responses)
    else:
        model = TypeAware(DawidSkene(), random_state=seed).fit(responses)
    if labels.endswith("-soft"):
        return "soft", model.probas_
    return "hard", model.labels_


def from_crowd(
    answers,
    features,
    *,
    width: int,
    out,
    labels: str = "ds-soft",
    truth=None,
    task_ids=None,
    n_steps: int = 500,
    lr: float = 16.0,
    radius: float | None = None,
    scale: str = "unit",
    seed: int = 0,
    backend: str = "auto",
    echo: Callable[[str], None] | None = print,
) -> dict:
    """Aggregate the answers, train the student on the answered tasks, write what was used.

    Parameters
    ----------
    answers : path of a ``task,worker,label`` CSV
    features : path of a ``.npy`` (with ``task_ids``) or ``.parquet`` file (see :func:`read_features`)
    width : int >= 1, the student's width (even: symmetric initialisation)
    out : folder; gets ``weights.npz`` (W, W0, a, scale of the rows), ``soft_labels.csv``
        (task, P(each class) of the targets used; the student's own P for ``crowdlayer``)
        and, for ``crowdlayer``, ``confusions.csv``
    labels : one of :data:`LABEL_SOURCES`
    truth : optional path of a ``task,truth`` CSV; the student's accuracy on the gold tasks is
        printed and returned (the truth's classes must be the answers' classes)
    n_steps, lr, radius, seed, backend : the training (:func:`kdcore.distill.train`)
    scale : ``"unit"`` (every row to norm 1) or ``"none"``

    Returns
    -------
    dict with ``n_tasks``, ``classes``, ``positive``, ``student_accuracy`` (None without truth),
    ``label_accuracy`` (of the targets used, on the gold tasks), ``paths``.
    """
    from ._check import check_int
    from .crowd import Responses
    from .distill import TwoLayerReLU, train

    width = check_int(width, "width", minimum=1)
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {list(LABEL_SOURCES)}, got {labels!r}")
    if scale not in ("unit", "none"):
        raise ValueError(f"scale must be 'unit' or 'none', got {scale!r}")
    ap = Path(answers)
    if not ap.exists():
        raise ValueError(f"answers file {ap} does not exist")
    df = pd.read_csv(ap, dtype=str, keep_default_na=False)
    responses = Responses.from_dataframe(df, duplicates="keep_first")
    if responses.n_classes != 2:
        raise ValueError(
            f"the two-layer student is binary; the answers have {responses.n_classes} classes "
            f"{list(responses.classes_)} (train one student per class with kdcore.distill.targets.one_vs_rest_targets)"
        )
    classes = [str(c) for c in responses.classes_]
    positive = classes[-1]
    gold = None
    if truth is not None:
        tp = Path(truth)
        if not tp.exists():
            raise ValueError(f"truth file {tp} does not exist")
        t = pd.read_csv(tp, dtype=str, keep_default_na=False)
        if not {"task", "truth"} <= set(t.columns):
            raise ValueError(f"truth file {tp} needs columns task,truth; it has {list(t.columns)}")
        gold = t.drop_duplicates("task").set_index("task")["truth"]
        other = sorted(set(gold) - set(classes))
        if other:
            raise ValueError(f"the truth has classes {other} that no answer uses; the answers' classes are {classes}")
    feats = read_features(features, task_ids)
    ids = pd.Index(responses.task_ids.astype(str), name="task")
    missing = ids.difference(feats.index)
    if len(missing):
        raise ValueError(
            f"{len(missing)} answered task(s) have no features (e.g. {list(missing[:5])}); every answered task needs a row"
        )
    X = feats.loc[ids]
    if scale == "unit":
        norms = np.linalg.norm(X.to_numpy(), axis=1)
        if (norms == 0).any():
            raise ValueError(
                f"{int((norms == 0).sum())} task(s) have all-zero features; they cannot be scaled to norm 1"
            )
        X = X.div(norms, axis=0)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    net = TwoLayerReLU(width, X.shape[1], random_state=seed)
    paths = {}
    if labels == "crowdlayer":
        from .distill.crowd_layer import CrowdLayer

        cl = CrowdLayer(width, n_steps=n_steps, lr=lr, radius=radius, random_state=seed).fit(X, responses)
        net = cl.model_
        P = cl.predict_proba(X)
        used = pd.DataFrame(P, index=ids, columns=classes)
        conf = pd.DataFrame(
            cl.confusions_.reshape(len(cl.workers_), 4),
            index=pd.Index(cl.workers_, name="worker"),
            columns=[f"P({lab}|{k})" for k in classes for lab in classes],
        )
        conf.to_csv(out / "confusions.csv")
        paths["confusions"] = str(out / "confusions.csv")
    else:
        kind, tg = _targets(responses, labels, seed)
        tg.index = pd.Index(tg.index.astype(str), name="task")
        if isinstance(tg, pd.DataFrame):
            tg.columns = [str(c) for c in tg.columns]
            used = tg
        else:
            tg = tg.astype(str)
            used = pd.DataFrame({c: (tg == c).astype(float) for c in classes})
        train(net, X, tg, loss=kind, lr=lr, n_steps=n_steps, radius=radius, positive=positive, backend=backend)
    used.index.name = "task"
    used.to_csv(out / "soft_labels.csv")
    np.savez(out / "weights.npz", W=net.W, W0=net.W0, a=net.a, classes=np.array(classes), scale=np.array(scale))
    paths.update(weights=str(out / "weights.npz"), soft_labels=str(out / "soft_labels.csv"))
    res = {
        "n_tasks": int(len(ids)),
        "classes": classes,
        "positive": positive,
        "student_accuracy": None,
        "label_accuracy": None,
        "paths": paths,
    }
    if gold is not None:
        common = ids.intersection(gold.index)
        if len(common) == 0:
            raise ValueError("no answered task has a gold label in the truth file")
        pred = np.where(net.decision_function(X.loc[common].to_numpy()) > 0, positive, classes[0])
        res["student_accuracy"] = float(np.mean(pred == gold.loc[common].to_numpy()))
        lab = np.asarray(classes)[used.loc[common].to_numpy().argmax(1)]
        res["label_accuracy"] = float(np.mean(lab == gold.loc[common].to_numpy()))
        if echo is not None:
            echo(
                f"student (width {width}, {labels}) accuracy on {len(common)} gold tasks: {res['student_accuracy']:.4f} "
                f"(labels used: {res['label_accuracy']:.4f})"
            )
    if echo is not None:
        echo(f"wrote {paths['weights']} and {paths['soft_labels']}")
    return res
