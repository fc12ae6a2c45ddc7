"""The validation cut of the IMDb training reviews: grouped by movie where the archive says the movie, else random.

The official archive's ``train/urls_pos.txt`` and ``train/urls_neg.txt`` give, on line ``i``, the IMDb address of
the movie that the review file ``i_<rating>.txt`` of ``train/pos`` (or ``train/neg``) is about. The test split's
movies are disjoint from the training split's, so a validation split that shares movies with the reviews a model
fits on measures something easier than the test split does (actors' names, a film's plot words). Where those files
are present, :func:`fit_val_split` holds out whole movies (no movie in both parts, about the same fraction);
where they are not (a copy of the reviews without them), it keeps the random cut of
:func:`course_lib.imdb.fit_val_split`, and says which it used: ``"by_movie"`` or ``"random"``.

:func:`extract_urls` copies the URL lists out of the archive, which :func:`course_lib.imdb.download` does not
extract; :func:`download` does both.
"""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path

import numpy as np

from . import imdb
from .text import SequenceDataset

SPLIT_KINDS = ("by_movie", "random")
_TITLE = re.compile(r"/title/(tt\d+)")
_URLS = re.compile(r"^aclImdb/(train|test)/urls_(pos|neg)\.txt$")


def movie_ids(root: str | os.PathLike, split: str = "train") -> np.ndarray | None:
    """The movie of every review of ``split`` (strings such as ``"tt0453418"``), in the order in which
    :func:`course_lib.imdb.load_imdb` encodes them (label, then review id); None when ``urls_pos.txt`` or
    ``urls_neg.txt`` is missing from ``<root>/<split>``. Raises :class:`course_lib.imdb.DatasetError` when a
    review has no line in its URL list."""
    root = Path(root)
    files = [root / split / f"urls_{name}.txt" for name in imdb.LABELS]
    if not all(f.is_file() for f in files):
        return None
    urls = [f.read_text(encoding="utf-8").splitlines() for f in files]
    out = []
    for label, rid, _, path in imdb._listing(root, split):
        if rid >= len(urls[label]):
            raise imdb.DatasetError(f"{files[label]} has no line for the review {path.name}")
        line = urls[label][rid].strip()
        m = _TITLE.search(line)
        out.append(m.group(1) if m else line)
    return np.array(out)


def group_split(groups: np.ndarray, fraction: float, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(fit, val)`` (sorted) of a cut that keeps each group whole: the groups are shuffled with ``seed``
    and taken into validation while that brings its size closer to ``round(fraction * len(groups))``."""
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(names))
    target = int(round(fraction * len(groups)))
    sizes = np.concatenate([[0], np.cumsum(counts[order])])
    k = int(np.argmin(np.abs(sizes - target)))  # the first k shuffled groups go to validation
    in_val = np.zeros(len(names), dtype=bool)
    in_val[order[:k]] = True
    mask = in_val[inverse]
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def fit_val_split(train: SequenceDataset, train_limit: int | None, val_fraction: float, seed: int,
                  movies: np.ndarray | None = None) -> tuple[SequenceDataset, SequenceDataset, str]:
    """``(fit, val, how)``: the training reviews a run fits on, its validation reviews, and ``"by_movie"`` or
    ``"random"``. ``movies`` (:func:`movie_ids`, aligned with ``train``) given: ``train_limit`` reviews drawn
    with ``seed`` as :func:`course_lib.imdb.fit_val_split` draws them, then whole movies held out
    (:func:`group_split`); None: :func:`course_lib.imdb.fit_val_split`'s random cut."""
    if movies is None:
        return (*imdb.fit_val_split(train, train_limit, val_fraction, seed), "random")
    if len(movies) != len(train):
        raise ValueError(f"{len(movies)} movie ids for {len(train)} reviews")
    keep = np.arange(len(train))
    if train_limit is not None and train_limit < len(train):
        keep = np.sort(np.random.default_rng(seed).permutation(len(train))[:train_limit])
    fit, val = group_split(np.asarray(movies)[keep], val_fraction, seed)
    return train.subset(keep[fit]), train.subset(keep[val]), "by_movie"


def split_for(data: imdb.ImdbData, train_limit: int | None, val_fraction: float, seed: int):
    """:func:`fit_val_split` of ``data.train``, by movie when ``data.root`` has the training split's URL lists."""
    return fit_val_split(data.train, train_limit, val_fraction, seed, movie_ids(data.root, "train"))


def extract_urls(archive: str | os.PathLike, root: str | os.PathLike) -> list[Path]:
    """Copy ``{train,test}/urls_{pos,neg}.txt`` from the official archive into the aclImdb folder ``root``."""
    written = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            m = _URLS.match(member.name)
            if m and member.isfile():
                target = Path(root) / m.group(1) / f"urls_{m.group(2)}.txt"
                data = tar.extractfile(member).read()
                imdb._atomic_write(target, lambda f, data=data: f.write(data))
                written.append(target)
    return written


def download(cache=None, progress: bool = True, url: str = imdb.URL, **kwargs) -> Path:
    """:func:`course_lib.imdb.download` (``url`` and ``kwargs`` passed on: ``sha256``, ``size``, ``timeout``)
    with the URL lists extracted too; the archive is deleted afterwards."""
    final = imdb.cache_dir(cache) / "aclImdb"
    if final.exists():
        return imdb.check_layout(final)
    root = imdb.download(url, cache=cache, progress=progress, keep_archive=True, **kwargs)
    archive = imdb.cache_dir(cache) / "downloads" / url.rsplit("/", 1)[-1]
    extract_urls(archive, root)
    archive.unlink(missing_ok=True)
    return root
