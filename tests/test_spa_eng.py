"""Tests of course_lib.spa_eng: download (from a local HTTP server), verification, reading, tokens, split, vocab.

Every download test serves a small zip built here, in the layout of ``spa-eng.zip``, from a server on 127.0.0.1
run by a thread; no test touches the network. After each failure the cache must hold nothing: no ``spa.txt``
and no temporary file.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from course_lib import spa_eng
from course_lib.imdb import ENV_CACHE_DIR

NAME = "spa-eng.zip"
LINES = ["The cat sleeps.\tEl gato duerme.", "The cat sleeps.\tLa gata duerme.", "Good night.\tBuenas noches.",
         "Where is the bathroom?\t¿Dónde está el baño?", "Help!\t¡Ayuda!", "I'm cold.\tTengo frío.",
         "Tom is here.\tTom está aquí."]
TEXT = ("\n".join(LINES) + "\n").encode("utf-8")
REAL_DATA = os.environ.get(spa_eng.ENV_DATA_DIR)  # CI points it at the real corpus


@pytest.fixture(autouse=True)
def no_dataset_settings(monkeypatch):
    monkeypatch.delenv(spa_eng.ENV_DATA_DIR, raising=False)
    monkeypatch.delenv(ENV_CACHE_DIR, raising=False)


def build_zip(text: bytes = TEXT, member: str = spa_eng.MEMBER) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, text)
        z.writestr("spa-eng/_about.txt", "about\n")
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server API)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cut_after is not None:  # announce everything, send a part, hang up
            self.wfile.write(body[: self.server.cut_after])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.cut_after = {}, None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/{NAME}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def serve(server, data: bytes, text: bytes = TEXT) -> dict:
    server.files[f"/{NAME}"] = data
    return {"url": server.url, "sha256": hashlib.sha256(text).hexdigest(), "progress": False, "timeout": 5}


def leftovers(cache: Path) -> list[str]:
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")) if cache.exists() else []


def test_download_extracts_verifies_and_leaves_only_spa_txt(server, tmp_path):
    path = spa_eng.download(cache=tmp_path, **serve(server, build_zip()))
    assert path == tmp_path / "spa-eng" / "spa.txt"
    assert path.read_bytes() == TEXT
    assert leftovers(tmp_path) == ["spa-eng", "spa-eng/spa.txt"]
    assert spa_eng.locate(cache=tmp_path) == path
    assert spa_eng.load_pairs(cache=tmp_path, sha256=None)[3] == ("Where is the bathroom?", "¿Dónde está el baño?")


@pytest.mark.parametrize("case", ["wrong hash", "truncated zip", "missing member", "bad encoding",
                                  "not a zip", "no tab", "cut connection"])
def test_bad_input_raises_clearly_and_writes_nothing(server, tmp_path, case):
    text, data, match = TEXT, build_zip(), None
    kwargs = serve(server, data)
    if case == "wrong hash":
        kwargs["sha256"], match = "0" * 64, "not the pinned"
    elif case == "truncated zip":
        kwargs = serve(server, data[: len(data) // 2])
        match = "damaged or truncated"
    elif case == "missing member":
        kwargs = serve(server, build_zip(member="spa-eng/other.txt"))
        match = "no member 'spa-eng/spa.txt'"
    elif case == "bad encoding":
        text = TEXT + b"Bye.\tAdi\xf3s.\n"  # Latin-1, not UTF-8
        kwargs = serve(server, build_zip(text), text)
        match = "not valid UTF-8 \\(line 8"
    elif case == "not a zip":
        kwargs = serve(server, b"<html>moved</html>")
        match = "damaged or truncated"
    elif case == "no tab":
        text = TEXT + b"just English\n"
        kwargs = serve(server, build_zip(text), text)
        match = "line 8: expected 'English<TAB>Spanish'"
    elif case == "cut connection":
        server.cut_after = 100
        match = "stopped after 100 of|interrupted"
    with pytest.raises(spa_eng.DatasetError, match=match):
        spa_eng.download(cache=tmp_path, **kwargs)
    assert leftovers(tmp_path) == ["spa-eng"]  # no spa.txt, no temporary file


def test_no_network_and_http_errors(server, tmp_path):
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(spa_eng.DatasetError, match="could not download.*RNN_COURSE_SPA_ENG_DIR"):
        spa_eng.download(url=f"http://127.0.0.1:{port}/{NAME}", cache=tmp_path, progress=False, timeout=5)
    with pytest.raises(spa_eng.DatasetError, match="HTTP 404"):
        spa_eng.download(url=server.url.replace(NAME, "nothing.zip"), cache=tmp_path, progress=False)
    assert leftovers(tmp_path) == ["spa-eng"]


def test_a_failed_download_keeps_the_previous_copy(server, tmp_path):
    spa_eng.download(cache=tmp_path, **serve(server, build_zip()))
    with pytest.raises(spa_eng.DatasetError):
        spa_eng.download(cache=tmp_path, **dict(serve(server, build_zip()), sha256="1" * 64))
    assert (tmp_path / "spa-eng" / "spa.txt").read_bytes() == TEXT


def test_locate_precedence_and_errors(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "spa.txt").write_bytes(TEXT)
    monkeypatch.setenv(spa_eng.ENV_DATA_DIR, str(a))
    assert spa_eng.locate() == a / "spa.txt"
    assert spa_eng.locate(b) == b / "spa.txt"  # the argument wins over the environment
    with pytest.raises(spa_eng.DatasetError, match="not the pinned SHA-256"):
        spa_eng.load_pairs()
    assert len(spa_eng.load_pairs(sha256=hashlib.sha256(TEXT).hexdigest())) == len(LINES)
    monkeypatch.delenv(spa_eng.ENV_DATA_DIR)
    with pytest.raises(spa_eng.DatasetError, match="not found: set RNN_COURSE_SPA_ENG_DIR"):
        spa_eng.locate(cache=tmp_path / "empty")
    with pytest.raises(spa_eng.DatasetError, match="does not exist"):
        spa_eng.locate(tmp_path / "nowhere")
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "cache"))
    (tmp_path / "cache" / "spa-eng").mkdir(parents=True)
    (tmp_path / "cache" / "spa-eng" / "spa.txt").write_bytes(TEXT)
    assert spa_eng.locate() == tmp_path / "cache" / "spa-eng" / "spa.txt"


def test_read_pairs_normalises_and_ignores_extra_columns(tmp_path):
    path = tmp_path / "spa.txt"
    decomposed = "Cafe\u0301"  # e + combining acute accent
    path.write_text(f"Coffee.\t{decomposed}.\tCC-BY 2.0 (France) Attribution: tatoeba.org\n\n"
                    "A\u00a0 b.\t  Un b.\n", encoding="utf-8")
    assert spa_eng.read_pairs(path) == [("Coffee.", "Café."), ("A b.", "Un b.")]
    assert len(spa_eng.read_pairs(path)[0][1]) == 5  # one code point for é (NFC)
    path.write_text("", encoding="utf-8")
    with pytest.raises(spa_eng.DatasetError, match="no sentence pairs"):
        spa_eng.read_pairs(path)


def test_tokenize_keeps_accents_and_inverted_marks():
    assert spa_eng.tokenize("¿Dónde está el baño?") == ["¿", "Dónde", "está", "el", "baño", "?"]
    assert spa_eng.tokenize("¡Ayuda!") == ["¡", "Ayuda", "!"]
    assert spa_eng.tokenize("I'm Tom's friend, aren't I?") == ["I'm", "Tom's", "friend", ",", "aren't", "I", "?"]
    assert spa_eng.tokenize("Él tiene 3 años.") == ["Él", "tiene", "3", "años", "."]
    assert spa_eng.tokenize("Cafe\u0301") == ["Café"]  # one token, not a word and a stray accent


@pytest.mark.parametrize("sentence", ["¿Dónde está el baño?", "¡Ayuda!", "Tom, ven aquí.", "Dijo: «sí».",
                                      "I'm here (really)."])
def test_detokenize_inverts_tokenize(sentence):
    assert spa_eng.detokenize(spa_eng.tokenize(sentence)) == sentence


def test_split_is_by_english_sentence_and_stable():
    pairs = [(f"Sentence number {i}.", f"Frase {i}{suffix}.") for i in range(3000) for suffix in ("", " bis")]
    parts = spa_eng.split_pairs(pairs)
    sides = {name: {en.lower() for en, _ in part} for name, part in parts.items()}
    assert not sides["train"] & sides["val"] and not sides["train"] & sides["test"] and not sides["val"] & sides["test"]
    assert sum(len(p) for p in parts.values()) == len(pairs)
    assert 0.04 < len(parts["test"]) / len(pairs) < 0.08 and 0.04 < len(parts["val"]) / len(pairs) < 0.08
    shuffled = [pairs[i] for i in np.random.default_rng(0).permutation(len(pairs))]
    again = spa_eng.split_pairs(shuffled)
    assert {k: set(v) for k, v in again.items()} == {k: set(v) for k, v in parts.items()}  # order-free
    assert spa_eng.split_of("Hello there.") == spa_eng.split_of("hello  there.")  # case and spaces ignored


def test_vocab_specials_counts_encode_decode():
    vocab = spa_eng.Vocab.build([["a", "b", "a"], ["c", "a", "b"], ["d"]], min_count=2)
    assert vocab.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"]
    assert spa_eng.Vocab.build([["a", "b", "a"], ["c", "b"]], min_count=1, max_size=5).itos[4:] == ["a"]
    ids = vocab.encode(["a", "z", "b"], bos=True)
    assert ids.tolist() == [1, 4, 3, 5, 2] and ids.dtype == np.int64
    assert vocab.decode([1, 4, 3, 5, 2, 4, 0]) == ["a", "<unk>", "b"]
    assert spa_eng.Vocab.from_dict(vocab.to_dict()) == vocab
    with pytest.raises(ValueError, match="starts with"):
        spa_eng.Vocab(["a", "<pad>"])


def test_prepare_and_length_bucketed_batches():
    pairs = [(" ".join(["word"] * (1 + i % 9)) + ".", " ".join(["palabra"] * (1 + i % 7)) + ".") for i in range(400)]
    pairs = [(f"{i} {en}", es) for i, (en, es) in enumerate(pairs)]
    prep = spa_eng.prepare(pairs, max_len=8)
    assert all(len(s) <= 9 for s in prep.train.src)  # 8 tokens + <eos>
    assert len(prep.val.src) + len(prep.test.src) > 0
    assert all(t[0] == spa_eng.BOS_ID and t[-1] == spa_eng.EOS_ID for t in prep.train.tgt)
    seen = []
    for src, src_len, tgt, idx in prep.train.batches(16, shuffle=True, seed=(0, 1), bucket=4):
        assert src.shape[0] == tgt.shape[0] == len(idx) <= 16
        assert src.shape[1] == int(src_len.max())
        assert all((src[i, :n] != 0).all() and (src[i, n:] == 0).all() for i, n in enumerate(src_len.tolist()))
        seen += idx.tolist()
    assert sorted(seen) == list(range(len(prep.train)))
    again = [idx.tolist() for *_, idx in prep.train.batches(16, shuffle=True, seed=(0, 1), bucket=4)]
    assert [i for b in again for i in b] == seen  # the order is a function of the seed


@pytest.mark.skipif(not REAL_DATA, reason=f"set {spa_eng.ENV_DATA_DIR} to a folder holding the real spa.txt")
def test_the_real_corpus(monkeypatch):
    monkeypatch.setenv(spa_eng.ENV_DATA_DIR, REAL_DATA)
    pairs = spa_eng.load_pairs()  # verifies the pinned SHA-256
    assert len(pairs) == spa_eng.LINES
    parts = spa_eng.split_pairs(pairs)
    sides = {name: {en.lower() for en, _ in part} for name, part in parts.items()}
    assert not sides["train"] & sides["test"] and not sides["train"] & sides["val"]
    assert 100_000 < len(parts["train"]) < 110_000
