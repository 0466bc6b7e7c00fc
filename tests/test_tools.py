"""tools/bench_to_markdown.py and tools/update_readme_results.py on tiny fixture JSON files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
if not (TOOLS / "bench_to_markdown.py").is_file():
    pytest.skip("tools/ not found next to tests/ (installed-package run)", allow_module_level=True)
sys.path.insert(0, str(TOOLS))

import bench_to_markdown as b2m  # noqa: E402
import update_readme_results as urr  # noqa: E402


def _bench(group, param, median, iqr=0.0, backend_param=True):
    b = {
        "group": group,
        "name": f"test_em[{param}]",
        "fullname": f"benchmarks/bench_x.py::test_em[{param}]",
        "param": param,
        "params": {"backend": param.split("-")[0] if backend_param else None},
        "stats": {"median": median, "iqr": iqr, "rounds": 5, "mean": median, "min": median},
        "extra_info": {},
    }
    if not backend_param:
        b["params"] = {"case": param}
    return b


@pytest.fixture
def bench_json(tmp_path):
    data = {
        "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}, "python_version": "3.11.7"},
        "datetime": "2026-11-28T00:10:00.000000",
        "version": "4.0.0",
        "benchmarks": [
            _bench("ds-em 10k", "numpy", 0.200, 0.01),
            _bench("ds-em 10k", "cpp", 0.010, 0.001),
            _bench("ds-em 10k", "crowd-kit", 1.5, 0.1, backend_param=False),
            _bench("vote 1k", "cpp", 2e-6),
        ],
    }
    p = tmp_path / "bench.json"
    p.write_text(json.dumps(data))
    return p


def test_bench_tables_have_ratios_to_numpy_and_crowdkit(bench_json):
    md = b2m.render(b2m.load(bench_json), command="pytest benchmarks --benchmark-enable")
    assert "Test CPU, 2 cores; Python 3.11.7" in md and "Command: `pytest benchmarks --benchmark-enable`" in md
    lines = md.splitlines()
    i = lines.index("**ds-em 10k**")
    assert lines[i + 2] == "| backend | median | IQR | rounds | vs numpy | vs crowd-kit |"
    assert lines[i + 4] == "| cpp | 10 ms | 1 ms | 5 | 20.00x | 150.00x |"
    assert lines[i + 5] == "| numpy | 200 ms | 10 ms | 5 | 1.00x | 7.50x |"
    assert lines[i + 6] == "| crowd-kit | 1.5 s | 100 ms | 5 | 0.13x | 1.00x |"
    j = lines.index("**vote 1k**")  # no numpy/crowd-kit timed: no ratio columns
    assert lines[j + 2] == "| backend | median | IQR | rounds |"
    assert lines[j + 4] == "| cpp | 2 us | 0 ns | 5 |"


def test_bench_updates_one_readme_section(bench_json, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# b\n\n## Crowd aggregators\n\n## Task types\n\nkept text\n")
    rc = b2m.main([str(bench_json), "--readme", str(readme), "--section", "Crowd aggregators"])
    assert rc == 0
    once = readme.read_text()
    assert once.index("<!-- bench:Crowd aggregators -->") < once.index("## Task types") < once.index("kept text")
    assert "| cpp | 10 ms |" in once
    b2m.main([str(bench_json), "--readme", str(readme), "--section", "Crowd aggregators"])
    assert readme.read_text() == once  # idempotent: the block is replaced, not added twice


def test_bench_errors(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    assert b2m.main([str(bad)]) == 2
    bad.write_text(json.dumps({"benchmarks": []}))
    assert b2m.main([str(bad)]) == 2
    assert "holds no benchmark" in capsys.readouterr().err


@pytest.fixture
def results_json(tmp_path):
    res = {
        "profile": "quick",
        "parts": ["crowd", "distill"],
        "seed": 0,
        "created": "2026-11-28 01:00 UTC",
        "total_seconds": 480.0,
        "environment": {"versions": {"kdcore": "0.1.0"}, "backend": "cpp", "cores_available": 2},
        "steps": {
            "distill.mnist": {
                "title": "MNIST table",
                "status": "ok",
                "seconds": 120.4,
                "cpu_seconds": 80.2,
                "statements": ["10 of 12 numbers agree with the paper; 2 differ.", "x"],
                "headline": "Soft minus hard labels: ours +0.10 to +1.00 points.",
            },
            "crowd.real": {"title": "Real", "status": "ok", "seconds": 3.0, "statements": ["first", "second"]},
            "distill.deep": {
                "title": "Deep | VGG",
                "status": "skipped",
                "seconds": 0.0,
                "error": "needs torch",
                "statements": [],
            },
        },
    }
    p = tmp_path / "results.json"
    p.write_text(json.dumps(res))
    return p


def test_readme_results_section_is_generated_at_the_end(results_json, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# kdcore\n\nintro\n")
    subprocess.run(
        [sys.executable, str(TOOLS / "update_readme_results.py"), str(results_json), "--readme", str(readme)],
        check=True,
        capture_output=True,
    )
    text = readme.read_text()
    assert text.startswith("# kdcore\n\nintro\n\n" + urr.START)
    assert text.endswith(urr.END + "\n")
    assert "`kdcore reproduce --profile quick` (crowd, distill) on 2 cores in 8.0 min" in text
    assert "| MNIST table | Soft minus hard labels: ours +0.10 to +1.00 points. | 120 s (80 CPU s) |" in text
    assert "| Real | first | 3 s |" in text  # no headline: the first statement
    assert "| Deep \\| VGG | skipped: needs torch | 0 s |" in text
    # text added after it: the section is moved back to the end, once
    readme.write_text(text + "\nlater text\n")
    assert urr.main([str(results_json), "--readme", str(readme)]) == 0
    again = readme.read_text()
    assert again.count(urr.START) == 1 and again.endswith(urr.END + "\n") and "later text" in again
    assert urr.main([str(results_json), "--readme", str(readme), "--check"]) == 0
    readme.write_text("# changed\n")
    assert urr.main([str(results_json), "--readme", str(readme), "--check"]) == 1


def test_readme_results_refuses_bad_json(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# k\n")
    (tmp_path / "r.json").write_text(json.dumps({"profile": "quick"}))
    assert urr.main([str(tmp_path / "r.json"), "--readme", str(readme)]) == 2
    assert "not a kdcore results.json" in capsys.readouterr().err
    assert urr.main([str(tmp_path / "none.json"), "--readme", str(readme)]) == 2
    assert readme.read_text() == "# k\n"
