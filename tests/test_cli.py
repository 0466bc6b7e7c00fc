"""The ``kdcore`` command through subprocess, as a user runs it: exit codes,
output files, and one-line errors (never a traceback) for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def kdcore(*args, cwd=None, timeout=120, env=None, unset=()):
    import kdcore as _kd

    env = {**os.environ, **(env or {})}
    for name in unset:
        env.pop(name, None)
    # the same kdcore as this test process (the source tree with a dev build, or the installed wheel)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(_kd.__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    env.pop("KDCORE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "kdcore.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def assert_user_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    err = res.stderr.strip()
    assert "Traceback" not in res.stderr
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    """A small simulated Dawid-Skene data set with gold labels, as CSV files."""
    from kdcore.crowd import simulate

    d = tmp_path_factory.mktemp("cli")
    r, truth = simulate.dawid_skene(120, 12, 2, answers_per_task=7, random_state=0)
    df = r.to_dataframe()
    df["task"] = "t" + df["task"].astype(str)
    df["worker"] = "w" + df["worker"].astype(str)
    df.to_csv(d / "answers.csv", index=False)
    pd.DataFrame({"task": "t" + truth.index.astype(str), "truth": truth.to_numpy()}).to_csv(
        d / "truth.csv", index=False
    )
    return d


# ----------------------------------------------------------------------------- help and info
def test_help_through_the_console_entry():
    res = kdcore("--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: kdcore")
    for sub in ("aggregate", "types", "distill", "reproduce", "info", "datasets"):
        assert sub in res.stdout


@pytest.mark.parametrize(
    "sub",
    [
        ["aggregate"],
        ["types"],
        ["distill"],
        ["distill", "sweep"],
        ["reproduce"],
        ["info"],
        ["datasets"],
        ["datasets", "fetch"],
    ],
)
def test_every_subcommand_has_help(sub, capsys):
    from kdcore.cli import main

    with pytest.raises(SystemExit) as exc:  # in-process: argparse exits 0 after --help
        main([*sub, "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: kdcore {' '.join(sub)}")


def test_info_prints_config():
    res = kdcore("info")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("kdcore ") and "backends :" in res.stdout


def test_no_subcommand_is_a_usage_error():
    res = kdcore()
    assert_user_error(res, "kdcore: error:")


# ----------------------------------------------------------------------------- aggregate
def test_aggregate_writes_labels_probas_skills_and_scores(answers, tmp_path):
    out, proba, skills = tmp_path / "labels.csv", tmp_path / "p.csv", tmp_path / "s.csv"
    res = kdcore(
        "aggregate",
        answers / "answers.csv",
        "--method",
        "ds",
        "--out",
        out,
        "--proba",
        proba,
        "--skills",
        skills,
        "--truth",
        answers / "truth.csv",
    )
    assert res.returncode == 0, res.stderr
    assert "840 answers, 120 tasks, 12 workers, 2 classes [0, 1]" in res.stdout
    assert "method: ds (DawidSkene)" in res.stdout and "converged: yes" in res.stdout
    acc = float(res.stdout.split("accuracy: ")[1].split()[0])
    assert acc > 0.85  # 7 answers a task from workers of skill 0.6-0.9
    labels = pd.read_csv(out)
    assert list(labels.columns) == ["task", "agg_label"] and len(labels) == 120
    p = pd.read_csv(proba, index_col="task")
    assert p.shape == (120, 2) and np.allclose(p.sum(axis=1), 1)
    s = pd.read_csv(skills, index_col="worker")
    assert len(s) == 12 and ((s.to_numpy() >= 0) & (s.to_numpy() <= 1)).all()


def test_aggregate_parquet_and_custom_columns(answers, tmp_path):
    pytest.importorskip("pyarrow")
    df = pd.read_csv(answers / "answers.csv").rename(columns={"task": "item", "worker": "annotator", "label": "y"})
    df.to_parquet(tmp_path / "a.parquet")
    res = kdcore(
        "aggregate",
        tmp_path / "a.parquet",
        "--task-col",
        "item",
        "--worker-col",
        "annotator",
        "--label-col",
        "y",
        "--method",
        "mv",
        "--out",
        tmp_path / "l.parquet",
    )
    assert res.returncode == 0, res.stderr
    assert len(pd.read_parquet(tmp_path / "l.parquet")) == 120


def test_aggregate_missing_columns(answers, tmp_path):
    res = kdcore("aggregate", answers / "answers.csv", "--label-col", "answer")
    assert_user_error(res, "missing column(s) ['answer']", "--label-col")


def test_aggregate_duplicates(answers, tmp_path):
    df = pd.read_csv(answers / "answers.csv")
    pd.concat([df, df.iloc[[5]]]).to_csv(tmp_path / "dup.csv", index=False)
    assert_user_error(kdcore("aggregate", tmp_path / "dup.csv"), "1 duplicate (task, worker)", "--duplicates")
    res = kdcore("aggregate", tmp_path / "dup.csv", "--method", "mv", "--duplicates", "keep_first")
    assert res.returncode == 0 and "1 duplicates dropped" in res.stdout


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "name, data, needle",
    [
        ("empty.csv", b"", "the file is empty"),
        ("header.csv", b"task,worker,label\n", "has a header (task, worker, label) but no rows"),
        ("blank.csv", b"\n\n", "no columns"),
        ("binary.csv", bytes(range(256)) * 4, "looks like a binary file"),
        ("latin1.csv", "task,worker,label\nt\xe9,w,1\n".encode("latin-1"), "not UTF-8 text"),
        ("ragged.csv", b"task,worker,label\nt1,w1,1\nt2,w2,1,extra,more\n", "malformed CSV"),
        ("huge.csv", b"task,worker,label\nt1,w1," + b"x" * 100_000 + b"\n", "a field of 100000 characters"),
        ("missing.csv", b"task,worker,label\nt1,w1,1\nt2,,0\n", "1 empty value(s) in column 'worker'"),
        ("oneclass.csv", b"task,worker,label\nt1,w1,1\nt2,w1,1\n", "only one class"),
        ("fake.parquet", b"task,worker,label\nt1,w1,1\n", "not a Parquet file"),
    ],
)
def test_aggregate_bad_files(tmp_path, name, data, needle):
    assert_user_error(kdcore("aggregate", _write(tmp_path / name, data), "--method", "mv"), needle)


def test_aggregate_missing_file_and_folder(tmp_path):
    assert_user_error(kdcore("aggregate", tmp_path / "nope.csv"), "no such file")
    assert_user_error(kdcore("aggregate", tmp_path), "is a folder")


def test_aggregate_unknown_method(answers):
    assert_user_error(
        kdcore("aggregate", answers / "answers.csv", "--method", "magic"), "unknown method 'magic'", "mv, ds, onecoin"
    )


def test_aggregate_bad_truth(answers, tmp_path):
    _write(tmp_path / "t.csv", b"task,truth\nzzz,1\n")
    assert_user_error(
        kdcore("aggregate", answers / "answers.csv", "--truth", tmp_path / "t.csv"),
        "no task of the answers has a gold label",
    )
    _write(tmp_path / "t2.csv", b"id,a,b\n1,2,3\n")
    assert_user_error(
        kdcore("aggregate", answers / "answers.csv", "--truth", tmp_path / "t2.csv"), "missing column 'task'"
    )


def test_aggregate_unwritable_output(answers, tmp_path):
    (tmp_path / "f").write_text("x")
    assert_user_error(
        kdcore("aggregate", answers / "answers.csv", "--method", "mv", "--out", tmp_path / "f" / "o.csv"),
        "cannot write",
    )


def test_bad_option_values_are_one_line():
    assert_user_error(kdcore("distill", "sweep", "--widths", "3,5"), "even integers")
    assert_user_error(kdcore("reproduce", "vision"), "invalid choice: 'vision'")
    assert_user_error(kdcore("types", "x.csv", "--types", "0"), "--types must be >= 2")


# ----------------------------------------------------------------------------- distill sweep
def test_distill_sweep_margin(tmp_path):
    res = kdcore(
        "distill",
        "sweep",
        "--data",
        "margin",
        "--widths",
        "2,8",
        "--seeds",
        "1",
        "--steps",
        "20",
        "--n",
        "60",
        "--d",
        "5",
        "--gamma",
        "0.1",
        "--out",
        tmp_path / "sweep.csv",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    assert "hard test err %" in res.stdout and "neuron requirement" in res.stdout
    t = pd.read_csv(tmp_path / "sweep.csv")
    assert t["width m"].tolist() == [2, 8]
    errs = t[["hard test err %", "soft test err %"]].to_numpy()
    assert ((errs >= 0) & (errs <= 100)).all()


# ----------------------------------------------------------------------------- task types
@pytest.fixture(scope="module")
def two_type(tmp_path_factory):
    from kdcore.crowd import simulate

    d = tmp_path_factory.mktemp("types")
    r, truth, types, _ = simulate.two_type(300, 20, 0.4, regime="specialist", random_state=1)
    r.to_dataframe().to_csv(d / "answers.csv", index=False)
    truth.rename_axis("task").rename("truth").to_frame().to_csv(d / "truth.csv")
    return d, types


def test_types_writes_the_clustering(two_type, tmp_path):
    d, _ = two_type
    res = kdcore("types", d / "answers.csv", "--out", tmp_path / "types.csv")
    assert res.returncode == 0, res.stderr
    assert "types: 2 types, sizes " in res.stdout and "separation " in res.stdout
    t = pd.read_csv(tmp_path / "types.csv")
    assert list(t.columns) == ["task", "type"] and len(t) == 300 and set(t["type"]) == {0, 1}


def test_aggregate_with_types_prints_the_diagnostic(two_type, tmp_path):
    d, _ = two_type
    res = kdcore(
        "aggregate",
        d / "answers.csv",
        "--types",
        "2",
        "--method",
        "ds",
        "--truth",
        d / "truth.csv",
        "--skills",
        tmp_path / "s.csv",
        "--out",
        tmp_path / "l.csv",
    )
    assert res.returncode == 0, res.stderr
    assert "wrapped in TypeAware(2 types)" in res.stdout
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("types: ")][0]
    assert "separation" in line and any(
        s in line for s in ("per-type aggregation used", "plain aggregator kept", "soft two-type model used")
    )
    assert "accuracy: " in res.stdout and len(pd.read_csv(tmp_path / "l.csv")) == 300
    assert pd.read_csv(tmp_path / "s.csv").columns[0] == "worker"
    assert_user_error(kdcore("aggregate", d / "answers.csv", "--types", "1"), "--types must be >= 2")


@pytest.mark.parametrize(
    "method",
    [
        "mv",
        "onecoin",
        "spectral-em",
        "te",
        "kos",
        "roe",
        "glad",
        "mace",
        "bayes",
        "community",
        "wawa",
        "zbs",
        "mmsr",
        "auto",
    ],
)
def test_aggregate_every_method(answers, method, capsys):
    from kdcore.cli import main  # in-process (the subprocess path is covered above): every --method runs

    assert (
        main(["aggregate", str(answers / "answers.csv"), "--method", method, "--truth", str(answers / "truth.csv")])
        == 0
    )
    out = capsys.readouterr().out
    assert float(out.split("accuracy: ")[1].split()[0]) > 0.7
    if method == "auto":  # the winner and every candidate's held-out score are printed
        chosen = [ln for ln in out.splitlines() if ln.startswith("chosen: ")][0]
        assert "held-out log-likelihood per answer" in chosen and "ds " in chosen


# ----------------------------------------------------------------------------- reproduce
def test_reproduce_one_step_tiny(tmp_path, data_home):
    res = kdcore(
        "reproduce",
        "crowd",
        "--profile",
        "tiny",
        "--only",
        "crowd.real",
        "--out",
        tmp_path / "rep",
        "--data-home",
        data_home,
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    assert "wrote " in res.stdout and "report.md" in res.stdout
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "### Real datasets: plain vs type-aware aggregation" in text and "## Environment" in text
    assert (tmp_path / "rep" / "results.json").is_file() and (tmp_path / "rep" / "figures" / "crowd_real.png").is_file()


def test_reproduce_errors(tmp_path):
    assert_user_error(
        kdcore("reproduce", "crowd", "--only", "crowd.nope", "--out", tmp_path), "unknown step(s) ['crowd.nope']"
    )
    (tmp_path / "f").write_text("x")
    assert_user_error(kdcore("reproduce", "crowd", "--out", tmp_path / "f" / "r"), "cannot create the output folder")


def test_distill_sweep_mnist(tmp_path, data_home):
    res = kdcore(
        "distill",
        "sweep",
        "--data",
        "mnist-reduced",
        "--widths",
        "4",
        "--seeds",
        "1",
        "--steps",
        "10",
        "--n",
        "100",
        "--radius",
        "0",
        "--data-home",
        data_home,
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    assert "neuron requirement" in res.stdout


# ----------------------------------------------------------------------------- no silent bad input
@pytest.mark.parametrize("k", ["0", "-1", "1", "two"])
def test_cli_types_below_two_is_refused_before_any_output(answers, k):
    res = kdcore("aggregate", answers / "answers.csv", "--types", k)
    assert_user_error(res, "--types must be")
    assert res.stdout == ""


def test_cli_truth_needs_a_truth_column(answers, tmp_path):
    df = pd.read_csv(answers / "answers.csv")
    df[["task", "worker"]].drop_duplicates("task").to_csv(tmp_path / "tw.csv", index=False)
    res = kdcore("aggregate", answers / "answers.csv", "--truth", tmp_path / "tw.csv")
    assert_user_error(res, "missing column 'truth'", "['task', 'worker']", "--truth-col")
    assert res.stdout == ""  # refused before the fit
    gold = pd.read_csv(answers / "truth.csv").rename(columns={"truth": "gold"})
    gold.to_csv(tmp_path / "gold.csv", index=False)
    ok = kdcore("aggregate", answers / "answers.csv", "--truth", tmp_path / "gold.csv", "--truth-col", "gold")
    assert ok.returncode == 0, ok.stderr
    assert float(ok.stdout.split("accuracy: ")[1].split()[0]) > 0.85


@pytest.mark.parametrize("flag", ["--out", "--proba", "--skills"])
def test_cli_unknown_output_type_is_refused(answers, tmp_path, flag):
    target = tmp_path / "labels.xlsx"
    res = kdcore("aggregate", answers / "answers.csv", flag, target)
    assert_user_error(res, f"{flag} {target}: unknown file type '.xlsx'", ".csv or .parquet")
    assert res.stdout == "" and not target.exists()
    assert_user_error(kdcore("types", answers / "answers.csv", "--out", tmp_path / "t.txt"), "unknown file type '.txt'")


def test_cli_types_takes_the_same_flag_as_aggregate(two_type, tmp_path):
    d, _ = two_type
    res = kdcore("types", d / "answers.csv", "--types", "3", "--out", tmp_path / "t.csv")
    assert res.returncode == 0, res.stderr
    assert "types: 3 types" in res.stdout and set(pd.read_csv(tmp_path / "t.csv")["type"]) == {0, 1, 2}
    old = kdcore("types", d / "answers.csv", "--n-types", "2")
    assert old.returncode == 0 and "types: 2 types" in old.stdout
    assert "--n-types is deprecated, use --types" in old.stderr


def test_cli_reader_keeps_label_types_like_read_csv(answers):
    from kdcore.cli import read_answers
    from kdcore.crowd import Responses

    a, b = read_answers(answers / "answers.csv"), Responses.read_csv(answers / "answers.csv")
    assert list(a.classes_) == list(b.classes_) == [0, 1]
    assert all(isinstance(c, (int, np.integer)) for c in a.classes_)
    assert list(a.task_ids) == list(b.task_ids) and np.array_equal(a.label, b.label)


def test_cli_chance_agreement_on_planted_labelings():
    from kdcore.cli import chance_agreement

    rng = np.random.default_rng(0)
    ref = pd.Series(rng.integers(0, 2, 4000), index=[f"t{i}" for i in range(4000)])
    same = chance_agreement(ref, ref)
    assert same[0] == 1.0 and same[2] == 1.0
    indep = chance_agreement(pd.Series(rng.integers(0, 2, 4000), index=ref.index), ref)
    assert abs(indep[0] - 0.5) < 0.05 and abs(indep[1] - 0.5) < 0.01 and abs(indep[2]) < 0.1
    flipped = chance_agreement(1 - ref, ref)
    assert flipped[0] == 0.0 and flipped[2] < -0.9
    with pytest.raises(ValueError, match="share no task"):
        chance_agreement(ref.iloc[:2], ref.iloc[2:4])


def test_cli_warns_when_labels_are_at_chance(data_home):
    rte = data_home / "crowd" / "rte"
    res = kdcore("aggregate", rte / "answers.csv", "--method", "kos", "--truth", rte / "truth.csv")
    assert res.returncode == 0, res.stderr
    assert "warning: the kos labels look no better than chance" in res.stderr and "Cohen's kappa" in res.stderr
    good = kdcore("aggregate", rte / "answers.csv", "--method", "ds")
    assert good.returncode == 0 and "no better than chance" not in good.stderr


# ----------------------------------------------------------------------------- reproduce without its data
def test_cli_reproduce_data_home_pointing_nowhere(tmp_path):
    res = kdcore("reproduce", "--data-home", tmp_path / "nowhere", "--out", tmp_path / "rep")
    assert_user_error(res, "--data-home", "no such folder")
    assert not (tmp_path / "rep").exists()
    res = kdcore("reproduce", "--out", tmp_path / "rep", env={"KDCORE_DATA": str(tmp_path / "nowhere")})
    assert_user_error(res, "$KDCORE_DATA", "no such folder")


def _no_data_env(tmp_path):
    return {"KDCORE_CACHE": str(tmp_path / "cache"), "KDCORE_DATA_URL": "http://127.0.0.1:9/"}


@pytest.mark.parametrize("allow", [False, True])
def test_cli_reproduce_missing_data_warns_and_exits_3(tmp_path, allow):
    args = ["reproduce", "crowd", "--profile", "tiny", "--only", "crowd.real", "--out", tmp_path / "rep", "--quiet"]
    res = kdcore(
        *args,
        *(["--allow-missing-data"] if allow else []),
        cwd=tmp_path,
        env=_no_data_env(tmp_path),
        unset=["KDCORE_DATA"],
    )
    assert res.returncode == (0 if allow else 3), (res.returncode, res.stderr)
    warning = [ln for ln in res.stderr.splitlines() if "warning: real data missing" in ln]
    assert len(warning) == 1 and "crowd.real (crowd/)" in warning[0] and "kdcore datasets fetch" in warning[0]
    assert "**Skipped**" in (tmp_path / "rep" / "report.md").read_text()
    assert not (tmp_path / "cache" / "data" / "crowd").exists()


def test_cli_reproduce_help_documents_the_missing_data_exit_code(capsys):
    from kdcore.cli import main

    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "3 real data missing" in text and "--allow-missing-data" in text


def test_aggregate_mmsr_where_its_skills_are_not_finite_is_one_line(data_home, capsys):
    from kdcore.cli import main

    # product: the workers share too few tasks, MMSR's trimmed means give 0/0 (crowd-kit: NaN skills)
    assert main(["aggregate", str(data_home / "crowd" / "product" / "answers.csv"), "--method", "mmsr"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-finite skills" in err[0] and "use Wawa" in err[0]
