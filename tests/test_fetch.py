"""The data fetcher against a real HTTP server on 127.0.0.1 serving the data folder:
byte-identical downloads, checksum failures and interrupted transfers that leave
nothing in the cache, retries, the loaders' download on first use, and the
``kdcore datasets fetch`` command."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest

from kdcore import _fetch
from kdcore._data import data_home as resolve


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the data folder; ``server.mode`` bends the responses for the failure cases."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        srv = self.server
        srv.requests.append(self.path)
        mode = srv.mode
        if mode == "ok" or (mode == "interrupt-once" and srv.interrupted >= 1):
            return super().do_GET()
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return super().do_GET()
        body = path.read_bytes()
        if mode == "regzip":  # the same content, compressed differently (as a public mirror serves MNIST)
            body = gzip.compress(gzip.decompress(body), compresslevel=1, mtime=1)
        elif mode == "corrupt":  # right length, one byte flipped in the middle
            mid = len(body) // 2
            body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1 :]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode in ("interrupt", "interrupt-once"):  # close the connection half way through the body
            srv.interrupted += 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server(data_home):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(data_home)))
    srv.mode, srv.requests, srv.interrupted = "ok", [], 0
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(10)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache, no data folder in sight, downloads from nowhere unless a test says so."""
    monkeypatch.setenv("KDCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KDCORE_DATA", raising=False)
    monkeypatch.delenv("KDCORE_FETCH", raising=False)
    monkeypatch.delenv("KDCORE_MNIST_URL", raising=False)
    monkeypatch.setenv("KDCORE_DATA_URL", "http://127.0.0.1:9/")  # the discard port: connection refused
    monkeypatch.chdir(tmp_path)
    return tmp_path / "cache" / "data"


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- registry
def test_registry_matches_the_data_folder(data_home):
    on_disk = sorted(str(p.relative_to(data_home)) for p in data_home.rglob("*") if p.is_file() and p.suffix != ".md")
    assert on_disk == sorted(_fetch.REGISTRY)
    for rel, (size, sha, _) in _fetch.REGISTRY.items():
        assert (data_home / rel).stat().st_size == size and _sha(data_home / rel) == sha, rel
    assert set(_fetch.DATASET_FILES["all"]) == set(_fetch.REGISTRY)


def test_urls_default_and_overridden(monkeypatch):
    monkeypatch.delenv("KDCORE_DATA_URL", raising=False)
    monkeypatch.delenv("KDCORE_MNIST_URL", raising=False)
    rel = "mnist/t10k-labels-idx1-ubyte.gz"
    assert _fetch.url_for(rel) == _fetch.DEFAULT_MNIST_URL + "t10k-labels-idx1-ubyte.gz"
    assert _fetch.url_for("crowd/rte/truth.csv") == _fetch.DEFAULT_DATA_URL + "crowd/rte/truth.csv"
    monkeypatch.setenv("KDCORE_DATA_URL", "http://mirror/kd")
    assert _fetch.url_for("crowd/rte/truth.csv") == "http://mirror/kd/crowd/rte/truth.csv"
    assert _fetch.url_for(rel) == "http://mirror/kd/" + rel
    monkeypatch.setenv("KDCORE_MNIST_URL", "http://digits/")
    assert _fetch.url_for(rel) == "http://digits/t10k-labels-idx1-ubyte.gz"
    assert _fetch.url_for(rel, base_url="http://all") == "http://all/" + rel
    with pytest.raises(ValueError, match="not a kdcore data file"):
        _fetch.url_for("crowd/rte/nope.csv")


# ----------------------------------------------------------------------------- downloads
def test_fetch_is_byte_identical(server, cache, data_home):
    lines = []
    root = _fetch.fetch(["rte", "mnist"], base_url=server.url, progress=False, log=lines.append)
    assert root == cache
    want = sorted(_fetch.DATASET_FILES["rte"] + _fetch.DATASET_FILES["mnist"])
    assert _files(cache) == sorted({*want, "crowd", "crowd/rte", "mnist"})
    for rel in want:
        assert (cache / rel).read_bytes() == (data_home / rel).read_bytes(), rel
    assert len(lines) == 6 and all("sha256 ok" in ln for ln in lines)
    n = len(server.requests)
    _fetch.fetch("rte", base_url=server.url, progress=False)  # present and verified: no request
    assert len(server.requests) == n


def test_fetch_accepts_mnist_compressed_differently(server, cache, data_home):
    server.mode = "regzip"
    _fetch.fetch("mnist", base_url=server.url, progress=False)
    for rel in _fetch.DATASET_FILES["mnist"]:
        got = cache / rel
        assert got.read_bytes() != (data_home / rel).read_bytes()
        assert gzip.decompress(got.read_bytes()) == gzip.decompress((data_home / rel).read_bytes())
    from kdcore.distill.datasets import load_mnist

    images, digits = load_mnist("test", data_home=cache)  # the loader accepts the same content
    assert images.shape == (10000, 28, 28) and digits.shape == (10000,)


def test_corrupted_download_leaves_nothing(server, cache):
    server.mode = "corrupt"
    with pytest.raises(_fetch.FetchError, match="checksum mismatch for crowd/rte/answers.csv"):
        _fetch.fetch("rte", base_url=server.url, progress=False)
    assert _files(cache.parent) == []
    assert len(server.requests) == 1  # a wrong checksum is not retried
    server.mode = "ok"
    _fetch.fetch("rte", base_url=server.url, progress=False)
    assert _fetch.have(cache, "rte")


def test_interrupted_download_leaves_nothing_and_a_retry_succeeds(server, cache, data_home):
    server.mode = "interrupt"
    with pytest.raises(_fetch.FetchError, match="interrupted after"):
        _fetch.fetch("cifar10", base_url=server.url, progress=False, retries=0)
    assert _files(cache.parent) == []
    server.mode = "ok"
    _fetch.fetch("cifar10", base_url=server.url, progress=False)
    rel = "cifar10/CIFAR-10-images-jpg.tar.gz"
    assert _sha(cache / rel) == _fetch.REGISTRY[rel][1]


def test_one_interruption_is_retried(server, cache):
    server.mode = "interrupt-once"
    _fetch.fetch("bluebirds", base_url=server.url, progress=False, retries=1)
    assert server.interrupted == 1 and _fetch.have(cache, "bluebirds")
    assert len(server.requests) == 3  # answers.csv twice, truth.csv once


def test_no_server_is_a_fetch_error(cache):
    with pytest.raises(_fetch.FetchError, match="cannot connect"):
        _fetch.fetch("rte", progress=False, retries=0)
    assert _files(cache.parent) == []


def test_a_damaged_copy_in_the_cache_is_replaced(server, cache, data_home):
    _fetch.fetch("rte", base_url=server.url, progress=False)
    (cache / "crowd/rte/truth.csv").write_text("task,truth\nx,1\n")
    _fetch.fetch("rte", base_url=server.url, progress=False)
    assert (cache / "crowd/rte/truth.csv").read_bytes() == (data_home / "crowd/rte/truth.csv").read_bytes()


def test_fetch_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown dataset\(s\) \['imagenet'\]"):
        _fetch.fetch("imagenet")
    with pytest.raises(ValueError, match="retries must be an integer >= 0"):
        _fetch.fetch("rte", retries=-1)


# ----------------------------------------------------------------------------- loaders
def test_loader_downloads_on_first_use(server, cache, monkeypatch, capsys):
    from kdcore.crowd import datasets

    monkeypatch.setenv("KDCORE_DATA_URL", server.url)
    r, truth = datasets.load("rte")
    assert f"no local copy of crowd/rte/; downloading it into {cache}" in capsys.readouterr().err
    assert (r.n_responses, r.n_tasks, len(truth)) == (8000, 800, 800)
    assert _fetch.have(cache, "rte") and not (cache / "crowd" / "dog").exists()
    n = len(server.requests)
    datasets.load("rte")  # the cached copy wins: no request
    assert len(server.requests) == n


def test_kdcore_data_wins_over_the_cache_and_never_downloads(server, cache, monkeypatch, tmp_path):
    monkeypatch.setenv("KDCORE_DATA_URL", server.url)
    monkeypatch.setenv("KDCORE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"\$KDCORE_DATA"):
        resolve(None, "crowd/rte")
    assert server.requests == [] and _files(cache.parent) == []


def test_an_existing_copy_wins(server, cache, monkeypatch, data_home, tmp_path):
    monkeypatch.setenv("KDCORE_DATA_URL", server.url)
    assert resolve(data_home, "mnist") == data_home / "mnist"
    (tmp_path / "shared").symlink_to(data_home.parent)  # shared/data above the working directory
    assert resolve(None, "crowd/rte") == tmp_path / "shared" / "data" / "crowd" / "rte"
    assert server.requests == []


def test_missing_data_when_downloads_are_off_or_impossible(cache, monkeypatch):
    monkeypatch.setenv("KDCORE_FETCH", "0")
    with pytest.raises(FileNotFoundError, match="downloading is off.*kdcore datasets fetch rte"):
        resolve(None, "crowd/rte")
    monkeypatch.delenv("KDCORE_FETCH")
    with pytest.raises(FileNotFoundError, match="the download failed"):
        resolve(None, "crowd/rte", download=True)
    assert _files(cache.parent) == []


# ----------------------------------------------------------------------------- command line
def _kdcore(*args, env):
    import kdcore as _kd

    env = {**os.environ, **env}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(_kd.__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "kdcore.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_datasets_fetch(server, cache, data_home):
    env = {"KDCORE_CACHE": str(cache.parent), "KDCORE_DATA_URL": server.url}
    res = _kdcore("datasets", "fetch", "rte", "wsd", env=env)
    assert res.returncode == 0, res.stderr
    assert "crowd/rte/answers.csv: downloaded 69578 bytes" in res.stdout and str(cache) in res.stdout
    assert (cache / "crowd/wsd/truth.csv").read_bytes() == (data_home / "crowd/wsd/truth.csv").read_bytes()
    server.mode = "corrupt"
    res = _kdcore("datasets", "fetch", "dog", env=env)
    assert res.returncode == 2 and "checksum mismatch" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (cache / "crowd" / "dog").exists()
    res = _kdcore("datasets", "fetch", "imagenet", env=env)
    assert res.returncode == 2 and "invalid choice: 'imagenet'" in res.stderr


def test_a_file_the_server_lacks_is_not_retried(server, cache):
    with pytest.raises(_fetch.FetchError, match="HTTP 404"):
        _fetch.fetch("rte", base_url=server.url + "elsewhere/", progress=False, retries=3)
    assert len(server.requests) == 1 and _files(cache.parent) == []
