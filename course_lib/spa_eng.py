"""English-Spanish sentence pairs from Tatoeba (via manythings.org/anki): find or download, read, split, encode.

The corpus is the one of the TensorFlow NMT tutorial: ``spa-eng.zip``, whose member ``spa-eng/spa.txt`` holds
118,964 lines ``English<TAB>Spanish`` (8,042,772 bytes; its SHA-256 is pinned below, the zip's is not). Licence:
CC-BY 2.0 (France); attribution: www.manythings.org/anki and tatoeba.org. Where it comes from, in this order:

1. a folder holding ``spa.txt`` passed as ``data_dir``, or named by the environment variable
   ``RNN_COURSE_SPA_ENG_DIR``;
2. ``<cache>/spa-eng/spa.txt``, where :func:`download` puts it (the cache is IMDb's:
   :func:`course_lib.imdb.cache_dir`, i.e. ``RNN_COURSE_CACHE_DIR`` or ``~/.cache/rnn-course``);
3. with ``download=True``, the zip (streamed with a progress bar into a temporary file), its member extracted
   into a temporary file, checked (SHA-256, UTF-8, one tab per line) and renamed into place only then: bad input
   raises :class:`DatasetError` and leaves nothing half-written.

Text is normalised (Unicode NFC, one kind of space) and tokenised into words and punctuation marks, keeping
accents and the Spanish ``¿ ¡`` as tokens of their own. The split is fixed *by English sentence*: a hash of the
normalised, lower-cased English side decides train, validation or test, so the several translations of one
sentence always land in the same part and no source sentence is seen on both sides of a split.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import unicodedata
import urllib.error
import urllib.request
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .imdb import cache_dir, file_sha256
from .subword import BPE

URL = "http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip"
MEMBER = "spa-eng/spa.txt"
SHA256 = "6ec60e212f812ee3430f7568ea6f33b6fb080e32193c5952e8da0ee8ba45574c"
SIZE = 8_042_772
LINES = 118_964
ENV_DATA_DIR = "RNN_COURSE_SPA_ENG_DIR"
SPLIT_SALT = "spa-eng-split-v1"
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)


class DatasetError(RuntimeError):
    """The corpus cannot be found, downloaded, verified or read; the message says why and what to do."""


# ----------------------------------------------------------------------------------------------- locating
def locate(data_dir: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
           download: bool = False, progress: bool = True) -> Path:
    """The path of ``spa.txt``: in ``data_dir``, ``$RNN_COURSE_SPA_ENG_DIR``, the cache, or a fresh download."""
    if data_dir is None and os.environ.get(ENV_DATA_DIR):
        data_dir = os.environ[ENV_DATA_DIR]
    if data_dir is not None:
        path = Path(data_dir).expanduser() / "spa.txt"
        if not path.is_file():
            raise DatasetError(f"{path} does not exist: {ENV_DATA_DIR} (or data_dir) must name a folder holding "
                               "spa.txt, the member of spa-eng.zip")
        return path
    cached = cache_dir(cache) / "spa-eng" / "spa.txt"
    if cached.is_file():
        return cached
    if download:
        return globals()["download"](cache=cache, progress=progress)
    raise DatasetError(f"the English-Spanish pairs were not found: set {ENV_DATA_DIR} to a folder holding spa.txt, "
                       f"or download them with `python -m benchmarks.bench_seq2seq download` (into {cached})")


# ----------------------------------------------------------------------------------------------- download
def _stream(url: str, dest: Path, progress: bool, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "rnn-course"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DatasetError(f"could not download {url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise DatasetError(f"could not download {url}: {getattr(e, 'reason', e)}. Check the network, or fetch "
                           f"the zip by other means and set {ENV_DATA_DIR} to the folder holding spa.txt") from e
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None else None
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="spa-eng.zip", disable=not progress,
                   mininterval=0.5)
        got = 0
        try:
            with open(dest, "wb") as f, bar:
                while block := response.read(1 << 16):
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as e:
            raise DatasetError(f"the download of {url} was interrupted after {got:,} bytes ({e!r}); "
                               "run again") from e
    if total is not None and got < total:
        raise DatasetError(f"the download of {url} stopped after {got:,} of {total:,} bytes; run again")


def _extract_member(archive: Path, member: str, dest: Path) -> str:
    """Copy ``member`` of the zip ``archive`` to ``dest``; return its SHA-256. Raises :class:`DatasetError`."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(archive) as z:
            if member not in z.namelist():
                raise DatasetError(f"the archive {archive.name} has no member {member!r} "
                                   f"(it holds {z.namelist()[:5]})")
            with z.open(member) as source, open(dest, "wb") as f:
                while block := source.read(1 << 20):
                    digest.update(block)
                    f.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise DatasetError(f"the archive {archive.name} is damaged or truncated ({e}); run again to download "
                           "it afresh") from e
    return digest.hexdigest()


def download(url: str = URL, sha256: str | None = SHA256, cache: str | os.PathLike | None = None,
             progress: bool = True, timeout: float = 60.0, member: str = MEMBER) -> Path:
    """Download the zip, extract and verify ``spa.txt`` into ``<cache>/spa-eng``; return its path.

    Every file is written under a temporary name and renamed into place only after the checks pass (SHA-256 of
    the extracted member when ``sha256`` is given, strict UTF-8, at least one tab on every line), so any failure
    leaves the cache as it was. The zip itself is deleted afterwards.
    """
    folder = cache_dir(cache) / "spa-eng"
    folder.mkdir(parents=True, exist_ok=True)
    fd, zip_tmp = tempfile.mkstemp(prefix=".spa-eng.", suffix=".zip.part", dir=folder)
    os.close(fd)
    fd, txt_tmp = tempfile.mkstemp(prefix=".spa.", suffix=".txt.part", dir=folder)
    os.close(fd)
    zip_tmp, txt_tmp = Path(zip_tmp), Path(txt_tmp)
    try:
        _stream(url, zip_tmp, progress, timeout)
        got = _extract_member(zip_tmp, member, txt_tmp)
        if sha256 is not None and got != sha256:
            raise DatasetError(f"{member} in {url} has SHA-256 {got}, not the pinned {sha256}: the file changed "
                               "upstream or was damaged; nothing was kept")
        read_pairs(txt_tmp)  # raises on bad encoding or layout
        target = folder / "spa.txt"
        os.replace(txt_tmp, target)
        return target
    finally:
        zip_tmp.unlink(missing_ok=True)
        txt_tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------- text
_SPACES = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}»…])")
_NO_SPACE_AFTER = re.compile(r"([¿¡(\[{«]) ")


def normalize(text: str) -> str:
    """Unicode NFC (so ``é`` is one code point whichever way it was typed), every space run one space."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def tokenize(text: str) -> list[str]:
    """Words (letters with their accents, digits, inner apostrophes) and single punctuation marks.

    >>> tokenize("¿Dónde está el baño?")
    ['¿', 'Dónde', 'está', 'el', 'baño', '?']
    """
    return _TOKEN.findall(normalize(text))


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens back to a sentence: no space before closing marks (``. , ? !``) or after opening ones (``¿ ¡``)."""
    text = " ".join(tokens)
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", text))


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The ``(English, Spanish)`` pairs of a ``spa.txt`` file, normalised (extra tab-separated columns ignored)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DatasetError(f"{path} is not valid UTF-8 (line {line}, byte {e.start}): a damaged copy? "
                           "Download it again") from e
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2 or not columns[0].strip() or not columns[1].strip():
            raise DatasetError(f"{path}, line {number}: expected 'English<TAB>Spanish', got {line[:60]!r}")
        pairs.append((normalize(columns[0]), normalize(columns[1])))
    if not pairs:
        raise DatasetError(f"{path} holds no sentence pairs")
    return pairs


def load_pairs(data_dir: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
               download: bool = False, progress: bool = True, sha256: str | None = SHA256
               ) -> list[tuple[str, str]]:
    """:func:`locate` then :func:`read_pairs`; with ``sha256`` the file is verified first (about 0.05 s)."""
    path = locate(data_dir, cache, download, progress)
    if sha256 is not None and file_sha256(path) != sha256:
        raise DatasetError(f"{path} has not the pinned SHA-256 {sha256}: a different version or a damaged copy "
                           "(pass sha256=None to read it anyway)")
    return read_pairs(path)


# ----------------------------------------------------------------------------------------------- split
def split_of(english: str, val: float = 0.06, test: float = 0.06, salt: str = SPLIT_SALT) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for an English sentence: a hash of its normalised lower-cased text.

    The same sentence always gets the same answer, whatever file it comes from and in whatever order.
    """
    key = f"{salt}\0{normalize(english).lower()}".encode()
    u = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
    return "test" if u < test else "val" if u < test + val else "train"


def split_pairs(pairs: Iterable[tuple[str, str]], val: float = 0.06, test: float = 0.06,
                salt: str = SPLIT_SALT) -> dict[str, list[tuple[str, str]]]:
    """The pairs in three lists, by :func:`split_of` of their English side (file order kept within each)."""
    parts: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for en, es in pairs:
        parts[split_of(en, val, test, salt)].append((en, es))
    return parts


# ----------------------------------------------------------------------------------------------- vocabulary
class Vocab:
    """Token <-> id, with ``<pad> <bos> <eos> <unk>`` as ids 0-3, then tokens by falling count (ties by text)."""

    def __init__(self, itos: Sequence[str]):
        if tuple(itos[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {tuple(itos[:4])}")
        if len(set(itos)) != len(itos):
            raise ValueError("a vocabulary lists each token once")
        self.itos = list(itos)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 2, max_size: int | None = None) -> Vocab:
        """Tokens seen at least ``min_count`` times, the ``max_size`` (specials included) most frequent."""
        counts = Counter(t for tokens in token_lists for t in tokens)
        for special in SPECIALS:
            counts.pop(special, None)
        ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[:max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + ranked)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str], bos: bool = False, eos: bool = True) -> np.ndarray:
        """Ids ``(len(tokens) [+1] [+1],)`` int64; unknown tokens become ``<unk>``."""
        ids = [self.stoi.get(t, UNK_ID) for t in tokens]
        return np.array(([BOS_ID] if bos else []) + ids + ([EOS_ID] if eos else []), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to the first ``<eos>``, with ``<pad>`` and ``<bos>`` dropped (``<unk>`` kept)."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(self.itos[i])
        return out

    def to_dict(self) -> dict:
        return {"itos": list(self.itos)}

    @classmethod
    def from_dict(cls, state: dict) -> Vocab:
        return cls(state["itos"])

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens)"


# ----------------------------------------------------------------------------------------------- datasets
@dataclass
class PairDataset:
    """Encoded pairs: ``src[i]`` ends with ``<eos>``; ``tgt[i]`` is ``<bos> ... <eos>``; ``refs[i]`` the raw
    Spanish sentence (for BLEU); ``src_text[i]`` the raw English one."""

    src: list[np.ndarray]
    tgt: list[np.ndarray]
    src_text: list[str]
    refs: list[str]

    def __len__(self) -> int:
        return len(self.src)

    def subset(self, idx: Sequence[int]) -> PairDataset:
        return PairDataset([self.src[i] for i in idx], [self.tgt[i] for i in idx],
                           [self.src_text[i] for i in idx], [self.refs[i] for i in idx])

    def batches(self, batch_size: int, shuffle: bool = False, seed=0, bucket: int = 50):
        """Yield ``(src (N, S), src_len (N,), tgt (N, T), index (N,))`` torch tensors, padded with 0.

        Length-bucketed: sentences are sorted by source length within chunks of ``bucket`` batches (shuffled
        with ``seed`` when ``shuffle``), so a batch wastes little on padding; the batch order is then shuffled.
        """
        import torch

        n = len(self)
        order = np.arange(n)
        rng = np.random.default_rng(seed if not isinstance(seed, tuple) else list(seed))
        if shuffle:
            rng.shuffle(order)
        lengths = np.array([len(s) for s in self.src])
        chunk = batch_size * bucket
        groups = []
        for start in range(0, n, chunk):
            part = order[start:start + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            groups += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
        if shuffle:
            groups = [groups[i] for i in rng.permutation(len(groups))]
        for idx in groups:
            src = pad([self.src[i] for i in idx])
            tgt = pad([self.tgt[i] for i in idx])
            yield (torch.from_numpy(src), torch.from_numpy(lengths[idx].astype(np.int64)), torch.from_numpy(tgt),
                   torch.from_numpy(idx.astype(np.int64)))


def pad(seqs: Sequence[np.ndarray], value: int = PAD_ID) -> np.ndarray:
    """Sequences of ids into one ``(N, max length)`` int64 array, right-padded with ``value``."""
    out = np.full((len(seqs), max((len(s) for s in seqs), default=0)), value, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


def encode_pairs(pairs: Sequence[tuple[str, str]], src_vocab: Vocab, tgt_vocab: Vocab,
                 max_len: int | None = None, tokens: Sequence[tuple[list[str], list[str]]] | None = None
                 ) -> PairDataset:
    """Tokenise (unless ``tokens`` holds both sides' tokens already) and encode; with ``max_len``, pairs whose
    either side has more tokens are left out."""
    src, tgt, texts, refs = [], [], [], []
    for k, (en, es) in enumerate(pairs):
        s, t = tokens[k] if tokens is not None else (tokenize(en), tokenize(es))
        if max_len is not None and (len(s) > max_len or len(t) > max_len):
            continue
        src.append(src_vocab.encode(s))
        tgt.append(tgt_vocab.encode(t, bos=True))
        texts.append(en)
        refs.append(es)
    return PairDataset(src, tgt, texts, refs)


@dataclass
class Prepared:
    """Vocabularies (built on the training part only) and the encoded train/val/test datasets; with subword units,
    the two languages' byte-pair encodings (:mod:`course_lib.subword`)."""

    src_vocab: Vocab
    tgt_vocab: Vocab
    train: PairDataset
    val: PairDataset
    test: PairDataset
    src_bpe: BPE | None = None
    tgt_bpe: BPE | None = None

    def words(self, tokens: Sequence[str]) -> list[str]:
        """A model's output tokens as words (subword pieces joined; words stay as they are)."""
        return self.tgt_bpe.join(tokens) if self.tgt_bpe is not None else list(tokens)


def prepare(pairs: Sequence[tuple[str, str]], src_min_count: int = 2, tgt_min_count: int = 2,
            tgt_max_size: int | None = None, max_len: int | None = None, subwords: int | None = None) -> Prepared:
    """Split by English sentence (:func:`split_pairs`), build both vocabularies on the training part, encode.

    ``max_len`` leaves longer *training* pairs out (a lever on training speed), counted in words; validation and
    test keep every pair, so the test figure is always on the whole official test split. With ``subwords``, each
    language's words are split into byte-pair pieces (that many merges, learned on the training part) and the
    vocabularies hold pieces (``tgt_max_size`` then does not apply).
    """
    parts = split_pairs(pairs)
    train_tokens = [(tokenize(en), tokenize(es)) for en, es in parts["train"]]
    if not subwords:
        src_vocab = Vocab.build((s for s, _ in train_tokens), min_count=src_min_count)
        tgt_vocab = Vocab.build((t for _, t in train_tokens), min_count=tgt_min_count, max_size=tgt_max_size)
        return Prepared(src_vocab, tgt_vocab, encode_pairs(parts["train"], src_vocab, tgt_vocab, max_len, train_tokens),
                        encode_pairs(parts["val"], src_vocab, tgt_vocab),
                        encode_pairs(parts["test"], src_vocab, tgt_vocab))
    # units and vocabularies learned on every training pair (as the words' are); long pairs left out after
    src_bpe = BPE.learn((s for s, _ in train_tokens), subwords)
    tgt_bpe = BPE.learn((t for _, t in train_tokens), subwords)

    def pieces(part, tokens=None):
        tokens = tokens or [(tokenize(en), tokenize(es)) for en, es in part]
        return [(src_bpe.segment(s), tgt_bpe.segment(t)) for s, t in tokens]

    train_pieces = pieces(parts["train"], train_tokens)
    src_vocab = Vocab.build((s for s, _ in train_pieces), min_count=src_min_count)
    tgt_vocab = Vocab.build((t for _, t in train_pieces), min_count=tgt_min_count)
    if max_len is not None:  # counted in words, as without subword units
        keep = [k for k, (s, t) in enumerate(train_tokens) if len(s) <= max_len and len(t) <= max_len]
        parts["train"] = [parts["train"][k] for k in keep]
        train_pieces = [train_pieces[k] for k in keep]
    return Prepared(src_vocab, tgt_vocab, encode_pairs(parts["train"], src_vocab, tgt_vocab, tokens=train_pieces),
                    encode_pairs(parts["val"], src_vocab, tgt_vocab, tokens=pieces(parts["val"])),
                    encode_pairs(parts["test"], src_vocab, tgt_vocab, tokens=pieces(parts["test"])),
                    src_bpe, tgt_bpe)
