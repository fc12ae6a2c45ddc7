"""Tests of course_lib.imdb: locating, downloading (from a local HTTP server), extracting, reading and caching.

Every download test serves an archive built here, in the official layout, from a server on 127.0.0.1; no test
touches the network. After each failure the cache must hold nothing half-written: no ``aclImdb`` folder, no
temporary extraction folder, and no partial download unless it can be resumed.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from course_lib import imdb
from course_lib.text import Vocabulary, tokenize

NAME = "aclImdb_v1.tar.gz"
REAL_DATA = os.environ.get(imdb.ENV_DATA_DIR)  # CI points it at the real dataset


@pytest.fixture(autouse=True)
def no_dataset_settings(monkeypatch):
    """The tests below choose their data folders themselves, whatever the environment says."""
    monkeypatch.delenv(imdb.ENV_DATA_DIR, raising=False)
    monkeypatch.delenv(imdb.ENV_CACHE_DIR, raising=False)


def build_archive(tmp: Path, drop: str | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """A small .tar.gz in the official layout (plus unlabelled files that must be skipped)."""
    root = imdb.write_fake_dataset(tmp / "src" / "aclImdb", n_per_label=3, seed=0)
    (root / "imdb.vocab").write_text("the\nmovie\n")
    (root / "README").write_text("fake\n")
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0_0.txt").write_text("unlabelled")
    (root / "train" / "labeledBow.feat").write_text("0 0:1\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root.parent).as_posix()
            if drop and rel.startswith(f"aclImdb/{drop}"):
                continue
            tar.add(path, arcname=rel, recursive=False)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server API)
        server = self.server
        server.requests.append(self.headers.get("Range"))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, match = 0, re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.honour_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if server.cut_after is not None:  # announce everything, send a part, hang up
            self.wfile.write(payload[: server.cut_after])
            server.cut_after = None
            self.close_connection = True
            return
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.requests, httpd.honour_range, httpd.cut_after = {}, [], True, None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/{NAME}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def serve(server, data: bytes) -> dict:
    server.files[f"/{NAME}"] = data
    return {"url": server.url, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "progress": False}


def leftovers(cache: Path) -> list[str]:
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")) if cache.exists() else []


def test_download_file_resumes_verifies_and_renames_into_place(server, tmp_path):
    """The generic download (also used by other chapters' data): dest appears only when complete and verified."""
    payload = bytes(range(256)) * 400
    spec = serve(server, payload)
    dest = tmp_path / "files" / "data.bin"
    server.cut_after = 10_000  # the first attempt is cut off: a resumable partial file stays, dest does not exist
    with pytest.raises(imdb.DatasetError, match="run again to resume"):
        imdb.download_file(spec["url"], dest, spec["sha256"], spec["size"], progress=False)
    assert not dest.exists() and (tmp_path / "files" / "data.bin.part").stat().st_size == 10_000
    assert imdb.download_file(spec["url"], dest, spec["sha256"], spec["size"], progress=False) == dest
    assert dest.read_bytes() == payload and server.requests[-1] == "bytes=10000-"
    assert leftovers(tmp_path / "files") == ["data.bin"]
    assert imdb.download_file(spec["url"], dest, spec["sha256"]) == dest  # already there: no request
    assert len(server.requests) == 2
    other = tmp_path / "files" / "other.bin"
    with pytest.raises(imdb.DatasetError, match="checksum mismatch"):
        imdb.download_file(spec["url"], other, "0" * 64, progress=False)
    assert leftovers(tmp_path / "files") == ["data.bin"]  # the corrupted download was deleted


def test_download_verifies_extracts_labelled_splits_and_cleans_up(server, tmp_path):
    cache = tmp_path / "cache"
    root = imdb.download(cache=cache, **serve(server, build_archive(tmp_path)))
    assert root == cache / "aclImdb"
    assert imdb.check_layout(root) == root
    assert (root / "README").exists() and (root / "imdb.vocab").exists()
    assert not (root / "train" / "unsup").exists() and not (root / "train" / "labeledBow.feat").exists()
    assert [p for p in leftovers(cache) if not p.startswith("aclImdb")] == ["downloads"]  # archive removed
    reviews = imdb.load_reviews("train", cache=cache)
    assert len(reviews) == 6 and reviews.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert all(r <= 4 for r in reviews.ratings[:3]) and all(r >= 7 for r in reviews.ratings[3:])
    # a second call finds the folder and does not download again
    assert imdb.download(cache=cache, **serve(server, b"")) == root and len(server.requests) == 1
    assert imdb.locate(cache=cache) == root


def test_wrong_checksum_is_refused_and_deleted(server, tmp_path):
    cache = tmp_path / "cache"
    spec = serve(server, build_archive(tmp_path)) | {"sha256": "0" * 64}
    with pytest.raises(imdb.DatasetError, match="checksum mismatch"):
        imdb.download(cache=cache, **spec)
    assert leftovers(cache) == ["downloads"]


@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_damaged_archive_with_matching_checksum_fails_cleanly(server, tmp_path, damage):
    data = bytearray(build_archive(tmp_path))
    if damage == "corrupted":
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    else:
        data = data[: len(data) // 2]
    cache = tmp_path / "cache"
    with pytest.raises(imdb.DatasetError, match="damaged or truncated"):
        imdb.download(cache=cache, **serve(server, bytes(data)))
    assert leftovers(cache) == ["downloads"]


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    data = build_archive(tmp_path)
    spec = serve(server, data)
    server.cut_after = 1000
    cache = tmp_path / "cache"
    with pytest.raises(imdb.DatasetError, match="run again to resume"):
        imdb.download(cache=cache, **spec)
    assert leftovers(cache) == ["downloads", f"downloads/{NAME}.part"]
    assert (cache / "downloads" / f"{NAME}.part").stat().st_size == 1000
    root = imdb.download(cache=cache, **spec)
    assert server.requests == [None, "bytes=1000-"]
    assert len(imdb.load_reviews("test", cache=cache)) == 6 and imdb.check_layout(root)


def test_restarts_cleanly_when_the_server_ignores_the_range(server, tmp_path):
    data = build_archive(tmp_path)
    spec = serve(server, data)
    cache = tmp_path / "cache"
    (cache / "downloads").mkdir(parents=True)
    (cache / "downloads" / f"{NAME}.part").write_bytes(b"garbage from an older attempt")
    server.honour_range = False
    imdb.download(cache=cache, **spec)
    assert server.requests == ["bytes=29-"]
    assert [p for p in leftovers(cache) if not p.startswith("aclImdb")] == ["downloads"]


def test_missing_split_in_the_archive(server, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(imdb.DatasetError, match="incomplete.*test/neg"):
        imdb.download(cache=cache, **serve(server, build_archive(tmp_path, drop="test/neg")))
    assert leftovers(cache) == ["downloads", f"downloads/{NAME}"]  # the verified archive is kept


@pytest.mark.parametrize("evil", ["aclImdb/../../evil.txt", "/tmp/evil-rnn-course.txt", "aclImdb/train/../../x"])
def test_path_traversal_members_are_rejected(server, tmp_path, evil):
    cache = tmp_path / "cache"
    with pytest.raises(imdb.DatasetError, match="unsafe member"):
        imdb.download(cache=cache, **serve(server, build_archive(tmp_path, extra={evil: b"owned"})))
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil-rnn-course.txt").exists()
    assert "aclImdb" not in leftovers(cache) and not any(p.startswith(".aclImdb") for p in leftovers(cache))


def test_no_network(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tmp_path / "cache"
    with pytest.raises(imdb.DatasetError, match="could not download.*RNN_COURSE_IMDB_DIR"):
        imdb.download(url=f"http://127.0.0.1:{port}/{NAME}", cache=cache, progress=False, timeout=5)
    assert leftovers(cache) == ["downloads"]


def test_http_error(server, tmp_path):
    with pytest.raises(imdb.DatasetError, match="HTTP 404"):
        imdb.download(url=server.url.replace(NAME, "nothing.tar.gz"), cache=tmp_path, progress=False)


def test_locate_precedence_and_errors(tmp_path, monkeypatch):
    a = imdb.write_fake_dataset(tmp_path / "a", n_per_label=2)
    b = imdb.write_fake_dataset(tmp_path / "b", n_per_label=2)
    monkeypatch.setenv(imdb.ENV_DATA_DIR, str(a))
    assert imdb.locate() == a
    assert imdb.locate(b) == b  # the argument wins over the environment
    monkeypatch.delenv(imdb.ENV_DATA_DIR)
    with pytest.raises(imdb.DatasetError, match="not found.*RNN_COURSE_IMDB_DIR"):
        imdb.locate(cache=tmp_path / "empty")
    with pytest.raises(imdb.DatasetError, match="does not exist"):
        imdb.locate(tmp_path / "nowhere")
    for folder in (b / "test" / "pos").iterdir():
        folder.unlink()
    with pytest.raises(imdb.DatasetError, match="lacks the split test/pos"):
        imdb.locate(b)


def test_cache_dir_settings(tmp_path, monkeypatch):
    monkeypatch.delenv(imdb.ENV_CACHE_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert imdb.cache_dir() == tmp_path / "xdg" / "rnn-course"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert imdb.cache_dir() == tmp_path / "home" / ".cache" / "rnn-course"
    monkeypatch.setenv(imdb.ENV_CACHE_DIR, str(tmp_path / "mine"))
    assert imdb.cache_dir() == tmp_path / "mine"
    assert imdb.cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_unreadable_reviews_are_named(tmp_path):
    root = imdb.write_fake_dataset(tmp_path / "aclImdb", n_per_label=2)
    bad = root / "train" / "pos" / "999_8.txt"
    bad.write_bytes(b"\xff\xfe not utf-8 \xc3")
    with pytest.raises(imdb.DatasetError, match="cannot read the review .*999_8.txt"):
        imdb.read_split(root, "train")
    bad.unlink()
    (root / "train" / "neg" / "998_2.txt").symlink_to(tmp_path / "missing-target")
    with pytest.raises(imdb.DatasetError, match="cannot read the review .*998_2.txt"):
        imdb.load_reviews("train", root, cache=tmp_path / "cache")
    assert imdb.read_split(root, "test").labels.tolist() == [0, 0, 1, 1]


def test_permission_denied(tmp_path, monkeypatch):
    root = imdb.write_fake_dataset(tmp_path / "aclImdb", n_per_label=2)
    path = next((root / "test" / "neg").iterdir())
    path.chmod(0)
    if os.name != "posix" or os.geteuid() == 0:  # root reads any file: fail the read as it fails for a user
        real = Path.read_bytes

        def read_bytes(self):
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(imdb.DatasetError, match="cannot read the review"):
        imdb.read_split(root, "test")


def test_parse_and_encoding_caches(tmp_path, monkeypatch):
    root = imdb.write_fake_dataset(tmp_path / "aclImdb", n_per_label=10)
    cache = tmp_path / "cache"
    data = imdb.load_imdb(vocab_size=30, data_dir=root, cache=cache)
    train = imdb.read_split(root, "train")
    vocab = Vocabulary.build([tokenize(t) for t in train.texts], max_size=30)
    assert data.vocab == vocab and len(vocab) == 30
    assert all(np.array_equal(s, vocab.encode(tokenize(t))) for s, t in zip(data.train.seqs, train.texts, strict=True))
    np.testing.assert_array_equal(data.train.labels, train.labels)
    assert {p.parent.name for p in cache.rglob("*.*")} == {"parsed", "encoded"}
    assert not [p for p in root.rglob("*") if p.suffix not in (".txt", "")]  # nothing written beside the data

    def no_reading(*args, **kwargs):
        raise AssertionError("read the files although the cache is valid")

    monkeypatch.setattr(imdb, "read_split", no_reading)
    again = imdb.load_imdb(vocab_size=30, data_dir=root, cache=cache)
    assert again.vocab == data.vocab
    assert all(np.array_equal(a, b) for a, b in zip(again.test.seqs, data.test.seqs, strict=True))
    assert len(imdb.load_reviews("test", root, cache)) == 20
    other = imdb.load_imdb(vocab_size=20, data_dir=root, cache=cache)  # another setting, from the parse cache
    assert len(other.vocab) == 20
    first = sorted((root / "train" / "pos").iterdir())[0]
    first.write_text("an edited review, so every cache is stale")
    with pytest.raises(AssertionError, match="read the files"):
        imdb.load_imdb(vocab_size=30, data_dir=root, cache=cache)


@pytest.mark.skipif(not REAL_DATA, reason=f"{imdb.ENV_DATA_DIR} is not set")
def test_the_real_dataset_has_the_official_layout():
    root = imdb.locate(REAL_DATA)
    for split in imdb.SPLITS:
        for label in imdb.LABELS:
            assert sum(1 for n in os.listdir(root / split / label) if n.endswith(".txt")) == 12_500


# ----------------------------------------------------------------------------------------------- validation by movie
def write_urls(root: Path, movie_of, split: str = "train") -> None:
    """The archive's ``urls_pos.txt`` / ``urls_neg.txt``: line i = the movie of review ``i_*.txt`` of that folder."""
    for name in imdb.LABELS:
        ids = [int(p.name.split("_")[0]) for p in (root / split / name).glob("*.txt")]
        lines = [f"http://www.imdb.com/title/tt{movie_of(name, i):07d}/usercomments" for i in range(max(ids) + 1)]
        (root / split / f"urls_{name}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def movie_archive(tmp_path):
    """A fake dataset of 2 x 60 training reviews about 23 movies (1 to 12 reviews each, both labels mixed)."""
    root = imdb.write_fake_dataset(tmp_path / "aclImdb", n_per_label=60, seed=3)
    write_urls(root, lambda name, i: (i * 7 + (name == "pos")) % 23)
    return root


def test_validation_holds_out_whole_movies_deterministically(movie_archive):
    from course_lib import imdb_split

    data = imdb.load_imdb(200, data_dir=movie_archive, cache=movie_archive.parent / "cache")
    movies = imdb_split.movie_ids(movie_archive, "train")
    assert len(movies) == len(data.train) == 120 and len(set(movies)) == 23
    fit, val, how = imdb_split.split_for(data, None, 0.2, seed=0)
    assert how == "by_movie"
    key = {tuple(s): m for s, m in zip(data.train.seqs, movies, strict=True)}  # the fake reviews are all distinct
    assert len(key) == len(data.train)
    fit_movies, val_movies = {key[tuple(s)] for s in fit.seqs}, {key[tuple(s)] for s in val.seqs}
    assert not fit_movies & val_movies  # no movie in both parts
    assert len(fit) + len(val) == 120
    largest = max(np.unique(movies, return_counts=True)[1])
    assert abs(len(val) - 24) <= largest / 2  # the fraction, up to half the largest movie
    again = imdb_split.split_for(data, None, 0.2, seed=0)[1]
    assert [s.tolist() for s in again.seqs] == [s.tolist() for s in val.seqs]  # deterministic
    other = imdb_split.split_for(data, None, 0.2, seed=1)[1]
    assert {key[tuple(s)] for s in other.seqs} != val_movies  # the seed draws the movies
    limited_fit, limited_val, _ = imdb_split.split_for(data, 80, 0.25, seed=0)  # a train_limit first
    assert len(limited_fit) + len(limited_val) == 80
    assert not {key[tuple(s)] for s in limited_fit.seqs} & {key[tuple(s)] for s in limited_val.seqs}


def test_without_url_lists_the_cut_is_the_random_one(movie_archive):
    from course_lib import imdb_split

    for name in imdb.LABELS:
        (movie_archive / "train" / f"urls_{name}.txt").unlink()
    data = imdb.load_imdb(200, data_dir=movie_archive, cache=movie_archive.parent / "cache")
    assert imdb_split.movie_ids(movie_archive, "train") is None
    fit, val, how = imdb_split.split_for(data, None, 0.2, seed=0)
    old_fit, old_val = imdb.fit_val_split(data.train, None, 0.2, 0)
    assert how == "random" and len(val) == 24
    assert [s.tolist() for s in val.seqs] == [s.tolist() for s in old_val.seqs]
    assert [s.tolist() for s in fit.seqs] == [s.tolist() for s in old_fit.seqs]


def test_a_short_url_list_is_an_error(movie_archive):
    from course_lib import imdb_split

    path = movie_archive / "train" / "urls_pos.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:5]) + "\n")
    with pytest.raises(imdb.DatasetError, match="has no line for the review"):
        imdb_split.movie_ids(movie_archive, "train")


def test_download_with_url_lists(server, tmp_path):
    """imdb_split.download extracts the URL lists that imdb.download skips, and deletes the archive."""
    from course_lib import imdb_split

    src = tmp_path / "src" / "aclImdb"
    build_archive(tmp_path)  # writes the fake dataset under src
    write_urls(src, lambda name, i: i // 2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(src.rglob("*")):
            tar.add(path, arcname=path.relative_to(src.parent).as_posix(), recursive=False)
    cache = tmp_path / "cache"
    spec = serve(server, buf.getvalue())
    root = imdb_split.download(cache, False, spec["url"], sha256=spec["sha256"], size=spec["size"])
    assert (root / "train" / "urls_pos.txt").read_text() == (src / "train" / "urls_pos.txt").read_text()
    assert imdb_split.movie_ids(root, "train") is not None
    assert not (root / "train" / "unsup").exists()
    assert [p for p in leftovers(cache) if not p.startswith("aclImdb")] == ["downloads"]
