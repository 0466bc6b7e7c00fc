"""The reproduction report: the driver on stand-in steps (every promised section,
figures, results.json, failures kept), the paper comparisons, the figure style,
and the real report in its tiny profile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _tol import LSTSQ_EXACT
from kdcore.experiments import paper, plotting
from kdcore.experiments.report import STEPS, Skip, Step, call_with, compare, markdown_table, reproduce

pytest.importorskip("matplotlib")


# ----------------------------------------------------------------------------- stand-ins
def _crowd_run(profile, random_state):
    rng = np.random.default_rng(random_state)
    n = {"tiny": 3, "quick": 5, "full": 8}[profile]
    return pd.DataFrame({"n_workers": np.arange(1, n + 1) * 10, "recovery": np.sort(rng.uniform(0, 1, n))})


def _crowd_plot(table):
    fig, ax = plotting.figure()
    ax.plot(table["n_workers"], table["recovery"], marker="o", label="ours")
    plotting.style(ax, xlabel="workers n", ylabel="exact recovery rate", logx=True)
    return fig


def _mnist_run(profile, random_state, progress=False):
    t = paper.MNIST_TABLE[["variant", "m"]].copy()
    t["hard"] = paper.MNIST_TABLE["hard"].to_numpy() + 0.1  # agrees
    t["soft"] = paper.MNIST_TABLE["soft"].to_numpy()
    t.loc[t.index[-1], "soft"] = 90.0  # differs by 5.6 points
    t["soft_std"] = 0.2
    return t


def _mnist_compare(table):
    merged, st = compare.side_by_side(
        table, paper.MNIST_TABLE, ["variant", "m"], {"hard": "hard", "soft": "soft"}, spread={"soft": "soft_std"}
    )
    return merged, st + compare.gap_statement(merged, ["variant", "m"], "soft", "hard", "paper soft", "paper hard")


def _broken_run(profile):
    raise RuntimeError("boom in the experiment")


def _skipping_run():
    raise Skip("no data here")


STANDINS = [
    Step(
        "crowd.phase",
        "crowd",
        "Exact type recovery as workers grow",
        "Recovery once n ~ C log d.",
        _crowd_run,
        plots=[_crowd_plot],
    ),
    Step("crowd.broken", "crowd", "A step that fails", "Nothing.", _broken_run),
    Step(
        "distill.mnist",
        "distill",
        "MNIST table",
        "Soft beats hard at small widths.",
        _mnist_run,
        compare=_mnist_compare,
        plots=[
            lambda table: plotting.paper_vs_ours(
                table[table.variant == "full"],
                x="m",
                ours=["hard", "soft"],
                paper=["paper hard", "paper soft"],
                xlabel="student width m",
                ylabel="test accuracy (%)",
            )
        ],
    ),
    Step("distill.skipme", "distill", "A skipped step", "Needs data.", _skipping_run),
]


def test_report_has_every_promised_section(tmp_path):
    res = reproduce(("crowd", "distill"), "tiny", tmp_path / "rep", progress=False, seed=3, steps=STANDINS)
    text = Path(res["report"]).read_text()
    for h in [
        "# kdcore reproduction report",
        "## Crowdsourcing with hard and easy tasks",
        "## Soft-label vs hard-label training",
        "### Exact type recovery as workers grow",
        "### MNIST table",
        "### A step that fails",
        "### A skipped step",
        "## Run summary",
        "## Environment",
    ]:
        assert h in text, h
    assert res["failed"] == ["crowd.broken"] and res["skipped"] == ["distill.skipme"]
    assert "**FAILED**: RuntimeError: boom in the experiment" in text
    assert "**Skipped**: no data here" in text
    # the paper's numbers beside ours, and the plain statement where they differ
    assert "| variant | m | hard | paper hard | soft | paper soft | soft std |" in text
    assert "11 of 12 numbers agree with the paper" in text
    assert "variant=full, m=4: our soft 90.00 vs the paper's 95.62 (-5.62 points): differs." in text
    # figures exist, are PNGs and are linked
    assert res["n_figures"] == 2
    for rel in ("figures/crowd_phase.png", "figures/distill_mnist.png"):
        assert f"]({rel})" in text
        assert (tmp_path / "rep" / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_json_records_versions_seeds_timings_tables(tmp_path):
    reproduce("crowd", "tiny", tmp_path, progress=False, seed=7, steps=STANDINS)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["profile"] == "tiny" and res["seed"] == 7 and res["parts"] == ["crowd"]
    env = res["environment"]
    assert env["versions"]["kdcore"] and env["versions"]["numpy"] == np.__version__
    assert env["backend"] in env["backends"]
    assert set(res["steps"]) == {"crowd.phase", "crowd.broken"}  # distill steps not run
    st = res["steps"]["crowd.phase"]
    assert st["status"] == "ok" and st["seed"] == 7 and st["seconds"] >= 0
    assert st["table"]["columns"] == ["n_workers", "recovery"] and len(st["table"]["rows"]) == 3
    assert res["timings"]["crowd.phase"] == st["seconds"]
    assert "Traceback" in res["steps"]["crowd.broken"]["traceback"]


def test_reproduce_is_seeded(tmp_path):
    a = reproduce("crowd", "tiny", tmp_path / "a", progress=False, seed=1, steps=STANDINS[:1])
    b = reproduce("crowd", "tiny", tmp_path / "b", progress=False, seed=1, steps=STANDINS[:1])
    ta = json.loads(Path(a["results"]).read_text())["steps"]["crowd.phase"]["table"]
    tb = json.loads(Path(b["results"]).read_text())["steps"]["crowd.phase"]["table"]
    assert ta == tb


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"parts": ("crowd", "vision")}, "parts must be"),
        ({"parts": ()}, "parts must be"),
        ({"profile": "medium"}, "profile must be one of"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_reproduce_refuses_bad_arguments(tmp_path, kw, match):
    args = {"parts": ("crowd",), "profile": "tiny", "out": tmp_path, "steps": STANDINS} | kw
    with pytest.raises(ValueError, match=match):
        reproduce(**args)


def test_reproduce_refuses_unwritable_out(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="cannot create the output folder"):
        reproduce("crowd", "tiny", f / "sub", steps=STANDINS)


def test_call_with_passes_only_accepted_kwargs():
    assert call_with(lambda profile: profile, profile="tiny", random_state=1) == "tiny"
    assert call_with(lambda random_state, seed=9: seed, random_state=4) == 9  # no synonyms: one spelling
    assert call_with(lambda **kw: sorted(kw), a=1, b=2) == ["a", "b"]


def test_markdown_table_formats_numbers_and_index():
    df = pd.DataFrame({"a": [1, 2], "b": [0.123456, np.nan], "c": ["x|y", True]}).set_index("a")
    lines = markdown_table(df).splitlines()
    assert lines[0] == "| a | b | c |"
    assert lines[2] == "| 1 | 0.1235 | x\\|y |"
    assert lines[3] == "| 2 |  | yes |"


def test_side_by_side_uses_seed_spread():
    ours = pd.DataFrame({"noise_var": [0.01, 0.1], "soft": [74.0, 70.0], "soft_std": [1.5, 0.1]})
    merged, st = compare.side_by_side(
        ours, paper.DEEP_TABLE, ["noise_var"], {"soft": "soft"}, spread={"soft": "soft_std"}
    )
    assert list(merged.columns[:3]) == ["noise_var", "soft", "paper soft"]
    assert merged["paper soft"].tolist() == [76.0, 75.0]
    # 0.01: -2.0 within 2 x 1.5; 0.1: -5.0 beyond max(1, 0.2)
    assert st[0].startswith("1 of 2 numbers agree")
    assert "noise_var=0.1: our soft 70.00 vs the paper's 75.00 (-5.00 points): differs." in st


def test_side_by_side_with_no_common_rows():
    ours = pd.DataFrame({"noise_var": [0.5], "soft": [60.0]})
    _, st = compare.side_by_side(ours, paper.DEEP_TABLE, ["noise_var"], {"soft": "soft"})
    assert st == ["No row of ours matches a row the paper printed: nothing to compare."]


def test_style_refuses_unlabelled_axes(tmp_path):
    fig, ax = plotting.figure()
    with pytest.raises(ValueError, match="axis labels"):
        plotting.style(ax, xlabel="", ylabel="y")
    plotting.save(fig, tmp_path / "unlabelled.png")


def test_power_law_fit_recovers_exponent(tmp_path):
    fig, ax = plotting.figure()
    x = np.array([0.05, 0.1, 0.2, 0.4])
    slope = plotting.power_law(ax, 1 / x, 3.0 * (1 / x) ** 2, label="soft", slope_ref=2)
    assert slope == pytest.approx(2.0, abs=LSTSQ_EXACT)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    plotting.style(ax, xlabel="1/gamma", ylabel="neurons needed")
    path = plotting.save(fig, tmp_path / "p.png")
    assert Path(path).stat().st_size > 1000


def test_figure_of_finds_figures(tmp_path):
    fig, ax = plotting.figure()
    assert plotting.figure_of(fig) is fig
    assert plotting.figure_of(ax) is fig
    assert plotting.figure_of((fig, ax)) is fig
    with pytest.raises(TypeError, match="cannot find a matplotlib figure"):
        plotting.figure_of(42)
    plotting.save(fig, tmp_path / "fig_of.png")


def test_step_tables_from_raw_runs(tmp_path):
    """A step returning one row per run: ``tables`` summarises it (main table first,
    compared with the paper), every table is in the report and in results.json."""

    def runs(profile, random_state):
        rng = np.random.default_rng(random_state)
        return pd.DataFrame(
            {
                "noise_var": np.repeat([0.01, 0.1], 3),
                "model": "soft",
                "test_acc": np.repeat([73.0, 75.0], 3) + rng.normal(0, 0.1, 6),
            }
        )

    def tables(raw):
        g = raw.groupby("noise_var")["test_acc"].agg(["mean", "std"]).reset_index()
        return {"Soft students": g.rename(columns={"mean": "soft", "std": "soft_std"}), "All runs": raw}

    step = Step(
        "distill.deep",
        "distill",
        "Deep",
        "claim",
        runs,
        tables=tables,
        compare=lambda t: compare.side_by_side(
            t, paper.DEEP_TABLE, ["noise_var"], {"soft": "soft"}, spread={"soft": "soft_std"}
        ),
        plots=[
            lambda raw: plotting.paper_vs_ours(
                tables(raw)["Soft students"],
                x="noise_var",
                ours=["soft"],
                paper=[None],
                xlabel="noise variance",
                ylabel="test accuracy (%)",
                logx=True,
            )
        ],
    )
    res = reproduce("distill", "tiny", tmp_path, progress=False, steps=[step])
    text = Path(res["report"]).read_text()
    assert text.index("**Soft students**") < text.index("*Ours vs the paper:*") < text.index("**All runs**")
    assert "- 1 of 2 numbers agree with the paper" in text
    assert "noise_var=0.01: our soft 73.0" in text and "vs the paper's 76.00 (-2." in text
    assert "noise_var=0.1: our soft" not in text  # 75 vs the paper's 75.0: agrees, not listed
    js = json.loads(Path(res["results"]).read_text())["steps"]["distill.deep"]
    assert js["table"]["columns"][:3] == ["noise_var", "soft", "paper soft"]
    assert len(js["tables"]["All runs"]["rows"]) == 6 and res["n_figures"] == 1


def test_interleave_puts_paper_columns_beside_ours():
    t = pd.DataFrame(columns=["k", "hard", "soft", "n", "paper_soft", "paper_hard"])
    out = compare.interleave(t, {"hard": "paper_hard", "soft": "paper_soft", "gap": "paper_gap"})
    assert list(out.columns) == ["k", "hard", "paper_hard", "soft", "paper_soft", "n"]


# ----------------------------------------------------------------------------- the real report, tiny
def test_tiny_report_of_both_papers(tmp_path, data_home):
    """`kdcore reproduce` in its reduced form: every experiment's section, table, statements and figure.
    The deep CIFAR step trains VGG nets (about a minute even when tiny): its wiring is checked on a
    runs table of the same shape below, and the step itself runs in the slow test."""
    todo = [s for s in STEPS if s.key != "distill.deep"]
    res = reproduce(("crowd", "distill"), "tiny", tmp_path, data_home=data_home, progress=False, steps=todo)
    assert res["failed"] == [] and res["skipped"] == []
    text = (tmp_path / "report.md").read_text()
    js = json.loads((tmp_path / "results.json").read_text())
    for s in todo:
        assert f"### {s.title}" in text
        rec = js["steps"][s.key]
        assert rec["status"] == "ok" and rec["table"]["rows"], s.key
        assert rec["statements"] and rec["headline"], s.key  # every step says where we stand vs the paper
        assert rec["figures"] and all((tmp_path / f).is_file() for f in rec["figures"]), s.key
    assert "paper_hard" in js["steps"]["distill.mnist"]["table"]["columns"]
    assert "crowd-kit" in js["steps"]["crowd.real"]["table"]["columns"]


def _fake_deep_runs():
    rows = []
    for nv in (0.01, 0.1):
        for seed in (0, 1):
            for model, acc in (("teacher", 80.0), ("hard", 70.0), ("soft", 74.0)):
                for w in (1.0,) if model == "teacher" else (0.5, 1.0):
                    rows.append(
                        dict(
                            noise_var=nv,
                            seed=seed,
                            model=model,
                            width=w,
                            test_acc=acc + seed,
                            val_acc=acc,
                            epochs=3,
                            best_epoch=2,
                            seconds=1.0,
                            device="cpu",
                        )
                    )
    return pd.DataFrame(rows)


def test_deep_step_wiring_on_a_runs_table(tmp_path):
    pytest.importorskip("torch")
    deep = [s for s in STEPS if s.key == "distill.deep"][0]
    fake = Step(
        deep.key,
        deep.part,
        deep.title,
        deep.claim,
        lambda: _fake_deep_runs(),
        tables=deep.tables,
        compare=deep.compare,
        plots=deep.plots,
    )
    res = reproduce("distill", "tiny", tmp_path, progress=False, steps=[fake])
    assert res["failed"] == [] and res["n_figures"] == 2  # noise figure and width figure
    rec = json.loads((tmp_path / "results.json").read_text())["steps"]["distill.deep"]
    cols = rec["table"]["columns"]
    assert cols.index("paper_soft") == cols.index("soft") + 1  # the paper's number beside ours
    assert any("Soft labels beat hard labels in 2 of 2 rows" in s for s in rec["statements"])
    assert len(rec["tables"]) == 2  # the width sweep table and the spread over runs


@pytest.mark.slow
def test_tiny_report_with_deep_step(tmp_path, data_home):
    res = reproduce(
        "distill",
        "tiny",
        tmp_path,
        data_home=data_home,
        progress=False,
        steps=[s for s in STEPS if s.key == "distill.deep"],
    )
    assert res["failed"] == [] and res["skipped"] == [] and res["n_figures"] >= 1


def test_reproduce_names_steps_skipped_for_missing_data(tmp_path):
    (tmp_path / "empty").mkdir()
    steps = [
        Step("crowd.needy", "crowd", "Needs crowd data", "Nothing.", _crowd_run, needs=("crowd",)),
        Step("crowd.phase", "crowd", "Needs nothing", "Nothing.", _crowd_run),
    ]
    with pytest.warns(UserWarning, match=r"real data missing \(crowd/\).*1 step\(s\).*crowd.needy \(crowd/\)"):
        res = reproduce(parts=("crowd",), profile="tiny", out=tmp_path / "r", steps=steps, data_home=tmp_path / "empty")
    assert res["missing_data"] == {"crowd.needy": "crowd"} and res["skipped"] == ["crowd.needy"]
    data = json.loads(Path(res["results"]).read_text())
    assert data["steps"]["crowd.needy"]["missing_data"] == "crowd"
    assert data["steps"]["crowd.phase"]["status"] == "ok"


# ----------------------------------------------------------------------------- an honest report
def _deep_summary(teacher_at_01: float) -> pd.DataFrame:
    """A deep-step main table (as summarize_deep gives it): the teacher learnt at noise 0.01
    and is at ``teacher_at_01`` % at noise 0.1."""
    t = pd.DataFrame(
        {
            "noise_var": [0.01, 0.1],
            "teacher": [61.3, teacher_at_01],
            "teacher_std": [0.9, 0.9],
            "hard": [64.7, 57.7],
            "hard_std": [0.0, 9.9],
            "soft": [61.3, 49.7],
            "soft_std": [0.9, 3.3],
            "runs": [2, 2],
        }
    )
    t["soft_minus_hard"] = t["soft"] - t["hard"]
    for m in ("teacher", "hard", "soft"):
        t[f"paper_{m}"] = paper.DEEP_TABLE.set_index("noise_var").loc[t["noise_var"], m].to_numpy()
    t["paper_soft_minus_hard"] = t["paper_soft"] - t["paper_hard"]
    return t


@pytest.mark.parametrize(
    "acc, learnt", [(47.7, False), (50.0, False), (54.9, False), (55.0, True), (61.3, True), (float("nan"), False)]
)
def test_teacher_learnt_needs_a_margin_above_chance(acc, learnt):
    assert compare.teacher_learnt([acc]).tolist() == [learnt]
    assert compare.teacher_learnt([acc], chance=10.0).tolist() == [bool(np.isfinite(acc))]


def test_no_soft_minus_hard_gap_from_a_teacher_at_chance():
    """The deep quick profile's teacher at 47.7 % at noise 0.1: that row's soft accuracy and gap are
    blanked, the statements say why, and neither the gap statements nor the headline use the row."""
    deep = [s for s in STEPS if s.key == "distill.deep"][0]
    shown, statements, head = deep.compare(_deep_summary(47.7))
    row = shown.set_index("noise_var")
    assert np.isnan(row.loc[0.1, "soft"]) and np.isnan(row.loc[0.1, "soft_minus_hard"])
    assert row.loc[0.01, "soft_minus_hard"] == pytest.approx(61.3 - 64.7)
    assert list(row["teacher learnt"]) == [True, False]
    assert any("noise_var=0.1: the teacher is at 47.7 % (chance 50 %" in s for s in statements)
    assert any("Soft labels beat hard labels in 0 of 1 rows" in s for s in statements)
    assert "-8.0" not in " ".join(statements) + head and "-3.40 to -3.40" in head
    md = markdown_table(shown)
    assert "| 0.1 | 47.70 |" in md and "teacher learnt" in md
    # every row at chance: no soft-vs-hard headline at all
    both = _deep_summary(47.7)
    both["teacher"] = [49.0, 47.7]
    _, statements, head = deep.compare(both)
    assert head.startswith("No soft-vs-hard result: the teacher did not learn")
    assert not any(s.startswith("Soft labels beat hard labels") for s in statements)
    # a teacher that learnt keeps its row
    shown, statements, _ = deep.compare(_deep_summary(70.0))
    assert shown["soft_minus_hard"].notna().all() and not any("carry no signal" in s for s in statements)


def test_deep_width_table_blanks_soft_arms_of_a_teacher_at_chance():
    deep = [s for s in STEPS if s.key == "distill.deep"][0]
    rows = []
    for nv, t_acc in ((0.01, 70.0), (0.1, 48.0)):
        for seed in (0, 1):
            rows.append(dict(noise_var=nv, seed=seed, model="teacher", width=0.25, test_acc=t_acc))
            for w in (0.5, 1.0):
                rows += [
                    dict(noise_var=nv, seed=seed, model="hard", width=w, test_acc=60.0),
                    dict(noise_var=nv, seed=seed, model="soft", width=w, test_acc=58.0),
                ]
    tabs = deep.tables(pd.DataFrame(rows))
    width = next(t for name, t in tabs.items() if name.startswith("Student width"))
    bad = width["noise_var"] == 0.1
    assert width.loc[bad, ["soft", "soft_minus_hard"]].isna().all().all()
    assert (width.loc[~bad, "soft_minus_hard"] == -2.0).all() and width.loc[~bad, "teacher learnt"].all()


def test_tables_round_fit_noise_to_zero_and_keep_a_column_precision():
    t = pd.DataFrame(
        {
            "slope": [-4.32e-16, 1.24e-14, -2.0],  # exact fits through equal points, and a real slope
            "noise_slope": [-4.32e-16, 1.24e-14, 2.16e-16],  # a column of noise only
            "gap": [-0.6, 1.2, -0.001],
            "lr": [1e-4, 0.5, 0.02],
        }
    )
    lines = markdown_table(t).splitlines()
    assert lines[0] == "| slope | noise slope | gap | lr |"
    assert lines[2:] == ["| 0.00 | 0 | -0.60 | 0.0001 |", "| 0.00 | 0 | 1.20 | 0.5 |", "| -2.00 | 0 | 0.00 | 0.02 |"]
    assert "e-1" not in markdown_table(t)


def test_mnist_table_fits_a_terminal():
    """The MNIST step's main table keeps ours beside the paper's in at most 12 columns (about 120
    characters); the seed spread and the kernel-limit teacher are in a table of their own."""
    mnist = [s for s in STEPS if s.key == "distill.mnist"][0]
    p = paper.MNIST_TABLE
    raw = pd.DataFrame({"variant": p["variant"], "m": p["m"], "radius": 1.0})
    raw["teacher"], raw["paper_teacher"] = 97.0, np.nan
    raw["hard"], raw["hard_std"], raw["paper_hard"] = p["hard"].to_numpy() - 1, 0.4, p["hard"].to_numpy()
    raw["T1"], raw["T1_std"], raw["paper_soft"] = p["soft"].to_numpy() - 1, 0.3, p["soft"].to_numpy()
    raw["kernel"], raw["kernel_std"] = 90.0, 0.5
    raw["soft_minus_hard"] = raw["T1"] - raw["hard"]
    raw["paper_soft_minus_hard"] = raw["paper_soft"] - raw["paper_hard"]
    raw["gamma2"], raw["seeds"], raw["steps"] = 0.07, 3, 1000
    tabs = mnist.tables(raw)
    shown, statements, _ = mnist.compare(next(iter(tabs.values())))
    assert shown.shape[1] <= 12 and "kernel" not in shown and "hard_std" not in shown
    detail = list(tabs.values())[1]
    assert {"hard_std", "soft_std", "soft (kernel)"} <= set(detail.columns)
    for table in (shown, detail):
        assert max(len(line) for line in markdown_table(table).splitlines()) <= 125


def test_piped_reproduce_writes_one_line_per_step_on_stderr(tmp_path, capsys):
    """Not on a terminal (pytest captures stderr): a line when each step starts and ends, with the
    status and the reason of a skip or a failure; progress=False stays silent."""
    res = reproduce(parts=("crowd", "distill"), profile="tiny", out=tmp_path / "a", steps=STANDINS)
    err = capsys.readouterr().err.splitlines()
    n = len(STANDINS)
    assert err[0] == f"[1/{n}] crowd.phase: running"
    assert err[1].startswith(f"[1/{n}] crowd.phase: ok in ") and err[1].endswith(" s")
    assert any(e.startswith(f"[2/{n}] crowd.broken: failed in ") and "boom in the experiment" in e for e in err)
    assert any(e.startswith(f"[{n}/{n}] distill.skipme: skipped in ") and e.endswith("(no data here)") for e in err)
    assert len(err) == 2 * n and res["failed"] == ["crowd.broken"]
    reproduce(parts=("crowd",), profile="tiny", out=tmp_path / "b", steps=STANDINS, progress=False)
    assert capsys.readouterr().err == ""


def test_series_keep_their_colour_across_figures():
    assert plotting.color("soft") == plotting.color("soft (T1)") == plotting.color("soft B=1")
    assert plotting.color("hard") != plotting.color("soft")
    assert plotting.color("type_aware_guard") == plotting.color("DS type-aware (guard)")
    assert plotting.color("some new method") == plotting.color("some new method")  # stable for unknown names
    assert plotting.display_name("type_aware_no_guard") == "type-aware (no guard)"
