"""The IMDb Large Movie Review Dataset (Maas et al., 2011): find or download it, read it, encode it, cache it.

The dataset holds 50,000 labelled reviews, 25,000 for training and 25,000 for testing, each split half
positive (rating >= 7 of 10) and half negative (<= 4), in the official layout
``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``. Where it comes from, in this order:

1. a folder passed as ``data_dir``, or named by the environment variable ``RNN_COURSE_IMDB_DIR``;
2. ``<cache>/aclImdb``, where :func:`download` puts it; the cache is ``RNN_COURSE_CACHE_DIR`` if set, else
   ``$XDG_CACHE_HOME/rnn-course``, else ``~/.cache/rnn-course``;
3. with ``download=True``, the official archive (streamed with a progress bar, resumed after an interruption
   with an HTTP Range request, verified by its SHA-256, its labelled splits extracted into a temporary folder
   that is renamed into place only when complete).

Parsed texts and encoded token ids are cached under ``<cache>/parsed`` and ``<cache>/encoded``, keyed by a hash
of the files and the settings, so a second load takes a few seconds. Nothing is ever written inside the
repository.

Experiments on these data (presets, training runs, ensembles, result records, the command line) live in
:mod:`course_lib.imdb_runs`; ``python -m course_lib.imdb`` runs its command line, so
``python -m course_lib.imdb download`` fetches the data.

The download machinery is not specific to IMDb and other chapters reuse it: :func:`cache_dir` (the course's
cache folder), :func:`download_file` (a streamed, resumable download verified by size and SHA-256, renamed
into place only when complete), :func:`file_sha256`, and ``_atomic_write``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm.auto import tqdm

from .text import TOKENIZER_VERSION, SequenceDataset, Vocabulary, tokenize

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
SIZE = 84_125_825
ENV_DATA_DIR = "RNN_COURSE_IMDB_DIR"
ENV_CACHE_DIR = "RNN_COURSE_CACHE_DIR"
SPLITS = ("train", "test")
LABELS = ("neg", "pos")  # label 0, label 1
_REVIEW = re.compile(r"^(\d+)_(\d+)\.txt$")
_MEMBER = re.compile(r"^aclImdb/(?:(?:train|test)/(?:pos|neg)/\d+_\d+\.txt|README|imdb\.vocab)$")


class DatasetError(RuntimeError):
    """The dataset cannot be found, downloaded, verified, extracted or read; the message says why and what to do."""


# ----------------------------------------------------------------------------------------------- locations
def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The course's cache folder: ``path``, else ``$RNN_COURSE_CACHE_DIR``, ``$XDG_CACHE_HOME/rnn-course``,
    or ``~/.cache/rnn-course``."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "rnn-course"


def check_layout(root: str | os.PathLike) -> Path:
    """Return ``root`` if it holds ``train`` and ``test``, each with non-empty ``pos`` and ``neg``; else raise."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"the IMDb folder {root} does not exist (expected the official aclImdb layout)")
    for split in SPLITS:
        for label in LABELS:
            folder = root / split / label
            if not folder.is_dir() or not any(_REVIEW.match(n) for n in os.listdir(folder)):
                raise DatasetError(f"the IMDb folder {root} lacks the split {split}/{label} "
                                   f"(expected reviews named <id>_<rating>.txt in {folder})")
    return root


def locate(
    data_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    download: bool = False,
    progress: bool = True,
) -> Path:
    """The folder of the dataset: ``data_dir``, ``$RNN_COURSE_IMDB_DIR``, the cache, or (``download=True``) a
    fresh download. Raises :class:`DatasetError` if none is found."""
    if data_dir is None and os.environ.get(ENV_DATA_DIR):
        data_dir = os.environ[ENV_DATA_DIR]
    if data_dir is not None:
        return check_layout(Path(data_dir).expanduser())
    cached = cache_dir(cache) / "aclImdb"
    if cached.exists():
        return check_layout(cached)
    if download:
        return globals()["download"](cache=cache, progress=progress)
    raise DatasetError(f"IMDb data not found: set {ENV_DATA_DIR} to an aclImdb folder, or download it with "
                       f"`python -m course_lib.imdb download` (into {cached})")


# ----------------------------------------------------------------------------------------------- download
def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, part: Path, size: int | None, progress: bool, timeout: float) -> None:
    """Download ``url`` into ``part``, appending to what it already holds when the server honours a Range."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": "rnn-course"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have and (size is None or have == size):
            return  # the partial file is already complete
        if e.code == 416:
            part.unlink(missing_ok=True)
            raise DatasetError(f"the server refused to resume {url} (HTTP 416); the partial download was "
                               "deleted, run again to start afresh") from e
        raise DatasetError(f"could not download {url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DatasetError(f"could not download {url}: {reason}. Check the network connection, or download the "
                           f"archive by other means and set {ENV_DATA_DIR} to its extracted aclImdb folder") from e
    with response:
        if have and response.status == 206:
            match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                response.close()
                part.unlink(missing_ok=True)
                raise DatasetError(f"the server resumed {url} at the wrong offset; the partial download was "
                                   "deleted, run again to start afresh")
            mode = "ab"
        else:
            have, mode = 0, "wb"  # the server sent the whole file: start again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name.removesuffix(".part"),
                   disable=not progress, mininterval=0.5)
        try:
            with open(part, mode) as f, bar:
                while block := response.read(1 << 16):
                    f.write(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as e:
            got = part.stat().st_size if part.exists() else 0
            raise DatasetError(f"the download of {url} was interrupted after {got:,} bytes ({e!r}); run again "
                               f"to resume it (the partial file is {part})") from e
    got = part.stat().st_size
    if total is not None and got < total:
        raise DatasetError(f"the download of {url} stopped after {got:,} of {total:,} bytes; run again to "
                           f"resume it (the partial file is {part})")


def download_file(
    url: str, dest: str | os.PathLike, sha256: str | None = None, size: int | None = None, progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` unless it is already there; return ``dest``.

    The bytes stream into ``dest.part`` (resumed with an HTTP Range request after an interruption), which is
    checked against ``size`` and ``sha256`` (when given) and only then renamed to ``dest``: ``dest`` is either
    absent or complete and verified. A wrong size or checksum deletes the download. Raises
    :class:`DatasetError` with the reason and what to do.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch(url, part, size, progress, timeout)
    if size is not None and part.stat().st_size != size:
        part.unlink()
        raise DatasetError(f"{url} has {part.stat().st_size if part.exists() else 'another'} bytes, "
                           f"expected {size:,}; the download was deleted")
    if sha256 is not None and (digest := file_sha256(part)) != sha256:
        part.unlink()
        raise DatasetError(f"checksum mismatch for {url}: sha256 {digest}, expected {sha256}; the corrupted "
                           "download was deleted, run again to download it afresh")
    os.replace(part, dest)
    return dest


def _extract(archive: Path, dest: Path) -> None:
    """Write the labelled reviews (and README, imdb.vocab) of ``archive`` under ``dest``, checking every name."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            name = member.name
            parts = PurePosixPath(name).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise DatasetError(f"the archive {archive} holds an unsafe member {name!r} (a path outside the "
                                   "extraction folder); refusing to extract it")
            if not _MEMBER.match(name):
                continue  # unlabelled reviews, bag-of-words files, URL lists
            if not member.isfile():
                raise DatasetError(f"the archive member {name!r} is not a regular file; refusing to extract it")
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            with open(target, "wb") as f:
                shutil.copyfileobj(source, f)
        # tarfile stops quietly at a damaged header; reading the gzip stream to its end checks its CRC and length
        while tar.fileobj.read(1 << 20):
            pass


def download(
    url: str = URL,
    sha256: str | None = SHA256,
    size: int | None = SIZE,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    keep_archive: bool = False,
) -> Path:
    """Download, verify and extract the dataset into ``<cache>/aclImdb``; return that folder.

    An interrupted download leaves ``<cache>/downloads/<archive>.part``, which the next call resumes (or restarts
    if the server ignores the Range request). A wrong checksum deletes the download; a damaged archive is
    deleted too; extraction goes to a temporary folder renamed into place when complete, so ``aclImdb`` is
    either absent or whole. Raises :class:`DatasetError` with the reason.
    """
    root = cache_dir(cache)
    final = root / "aclImdb"
    if final.exists():
        return check_layout(final)
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / url.rsplit("/", 1)[-1]
    download_file(url, archive, sha256, size, progress, timeout)
    tmp = Path(tempfile.mkdtemp(prefix=".aclImdb-", dir=root))
    try:
        try:
            _extract(archive, tmp)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            archive.unlink(missing_ok=True)
            raise DatasetError(f"the archive {archive.name} is damaged or truncated ({e}); it was deleted, run "
                               "again to download it afresh") from e
        check_layout(tmp / "aclImdb")
        os.rename(tmp / "aclImdb", final)
    except DatasetError as e:
        if "lacks the split" in str(e):
            raise DatasetError(f"the archive from {url} is incomplete: {str(e).split('lacks ')[-1]}") from e
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return final


# ----------------------------------------------------------------------------------------------- reading
@dataclass
class Reviews:
    """The raw reviews of one split: texts, labels (1 positive, 0 negative), ratings (1-10) and ids."""

    texts: list[str]
    labels: np.ndarray
    ratings: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


def _listing(root: Path, split: str) -> list[tuple[int, int, int, Path]]:
    """``(label, id, rating, path)`` of every review of a split, sorted by label then id."""
    out = []
    for label, name in enumerate(LABELS):
        folder = root / split / name
        if not folder.is_dir():
            raise DatasetError(f"the IMDb folder {root} lacks the split {split}/{name}")
        for entry in os.scandir(folder):
            if m := _REVIEW.match(entry.name):
                out.append((label, int(m.group(1)), int(m.group(2)), Path(entry.path)))
    return sorted(out, key=lambda r: r[:2])


def _fingerprint(root: Path, split: str) -> str:
    """Hash of a split's file names, sizes and modification times: changes when any file does."""
    digest = hashlib.sha256(str(root.resolve()).encode())
    for label, rid, rating, path in _listing(root, split):
        try:
            st = path.stat()
        except OSError as e:
            raise DatasetError(f"cannot read the review {path}: {e}") from e
        digest.update(f"{label}/{rid}_{rating}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()[:20]


def read_split(root: str | os.PathLike, split: str, progress: bool = False) -> Reviews:
    """Read every review of ``split`` ("train" or "test") from the files (no cache)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    root = Path(root)
    listing = _listing(root, split)
    texts = []
    for _, _, _, path in tqdm(listing, desc=f"reading {split}", disable=not progress, mininterval=1.0):
        try:
            texts.append(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"cannot read the review {path}: {e}") from e
    return Reviews(texts, np.array([r[0] for r in listing], dtype=np.int64),
                   np.array([r[2] for r in listing], dtype=np.int64), np.array([r[1] for r in listing], dtype=np.int64))


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_reviews(
    split: str, data_dir: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
    download: bool = False, progress: bool = False,
) -> Reviews:
    """The reviews of ``split``, from the parse cache when the files have not changed since it was written."""
    root = locate(data_dir, cache, download=download, progress=progress)
    path = cache_dir(cache) / "parsed" / f"{split}-{_fingerprint(root, split)}.json"
    if path.exists():
        d = json.loads(path.read_text(encoding="utf-8"))
        return Reviews(d["texts"], np.array(d["labels"], dtype=np.int64), np.array(d["ratings"], dtype=np.int64),
                       np.array(d["ids"], dtype=np.int64))
    reviews = read_split(root, split, progress)
    payload = {"texts": reviews.texts, "labels": reviews.labels.tolist(), "ratings": reviews.ratings.tolist(),
               "ids": reviews.ids.tolist()}
    _atomic_write(path, lambda f: f.write(json.dumps(payload).encode("utf-8")))
    return reviews


@dataclass
class ImdbData:
    """Both splits encoded with a vocabulary built on the training split."""

    train: SequenceDataset
    test: SequenceDataset
    vocab: Vocabulary
    root: Path


def _ragged_to_flat(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seqs], out=offsets[1:])
    flat = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int32)
    return flat.astype(np.int32), offsets


def _flat_to_ragged(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, offsets[1:-1])


def load_imdb(
    vocab_size: int | None = 10_000,
    min_freq: int = 1,
    data_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    download: bool = False,
    progress: bool = False,
) -> ImdbData:
    """Both splits tokenized (:func:`course_lib.text.tokenize`) and encoded with the ``vocab_size`` most frequent
    training tokens (specials included). The encoded result is cached, keyed by a hash of the files, the
    tokenizer version and the vocabulary settings."""
    root = locate(data_dir, cache, download=download, progress=progress)
    prints = {s: _fingerprint(root, s) for s in SPLITS}
    key = hashlib.sha256(json.dumps([prints, TOKENIZER_VERSION, vocab_size, min_freq]).encode()).hexdigest()[:20]
    path = cache_dir(cache) / "encoded" / f"imdb-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            vocab = Vocabulary.from_dict(json.loads(str(z["vocab"])))
            sets = {s: SequenceDataset(_flat_to_ragged(z[f"{s}_flat"], z[f"{s}_offsets"]), z[f"{s}_labels"])
                    for s in SPLITS}
        return ImdbData(sets["train"], sets["test"], vocab, root)
    reviews = {s: load_reviews(s, root, cache, progress=progress) for s in SPLITS}
    tokens = {s: [tokenize(t) for t in tqdm(reviews[s].texts, desc=f"tokenizing {s}", disable=not progress,
                                            mininterval=1.0)] for s in SPLITS}
    vocab = Vocabulary.build(tokens["train"], max_size=vocab_size, min_freq=min_freq)
    sets = {s: SequenceDataset([vocab.encode(t) for t in tokens[s]], reviews[s].labels) for s in SPLITS}
    arrays = {"vocab": np.array(json.dumps(vocab.to_dict()))}
    for s in SPLITS:
        arrays[f"{s}_flat"], arrays[f"{s}_offsets"] = _ragged_to_flat(sets[s].seqs)
        arrays[f"{s}_labels"] = sets[s].labels
    _atomic_write(path, lambda f: np.savez(f, **arrays))
    return ImdbData(sets["train"], sets["test"], vocab, root)


# ----------------------------------------------------------------------------------------------- a fake dataset
_POSITIVE = "great wonderful superb moving brilliant enjoyable funny touching beautiful excellent".split()
_NEGATIVE = "awful boring terrible dull stupid weak poor waste mess worst".split()
_NEUTRAL = ("the a film movie plot actor story scene and but it was is this that of with director music "
            "character ending camera script cast").split()


def write_fake_dataset(root: str | os.PathLike, n_per_label: int = 20, seed: int = 0) -> Path:
    """Write a small synthetic dataset in the official layout (for tests and offline demos; not real reviews).

    Each review mixes neutral words with a few sentiment words of its label (sometimes one of the other label),
    with ``<br />`` breaks; ``n_per_label`` reviews per split and label. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    rid = 0
    for split in SPLITS:
        for label, name in enumerate(LABELS):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            own, other = (_POSITIVE, _NEGATIVE) if label else (_NEGATIVE, _POSITIVE)
            for _ in range(n_per_label):
                words = list(rng.choice(_NEUTRAL, size=int(rng.integers(5, 40))))
                sentiment = list(rng.choice(own, size=int(rng.integers(2, 5))))
                if rng.random() < 0.3:
                    sentiment.append(str(rng.choice(other)))
                for w in sentiment:
                    words.insert(int(rng.integers(0, len(words) + 1)), w)
                text = " ".join(words).capitalize() + ".<br /><br />" + ("Really!" if rng.random() < 0.5 else "")
                rating = int(rng.integers(7, 11)) if label else int(rng.integers(1, 5))
                (folder / f"{rid}_{rating}.txt").write_text(text, encoding="utf-8")
                rid += 1
    return root


# ----------------------------------------------------------------------------------------------- splits
def fit_val_split(train: SequenceDataset, train_limit: int | None, val_fraction: float, seed: int):
    """The training reviews a run fits on and its validation reviews, as
    :func:`course_lib.imdb_runs.train_run` cuts them: ``train_limit`` reviews drawn with ``seed`` (all if None),
    then a ``val_fraction`` of them held out."""
    if train_limit is not None and train_limit < len(train):
        train = train.subset(np.sort(np.random.default_rng(seed).permutation(len(train))[:train_limit]))
    return train.split(val_fraction, seed=seed)


def main(argv: list[str] | None = None) -> int:
    """The command line of :mod:`course_lib.imdb_runs` (``python -m course_lib.imdb`` runs it too)."""
    from .imdb_runs import main as runs_main

    return runs_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
