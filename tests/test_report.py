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
