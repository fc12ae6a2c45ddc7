"""Answers to assignment 05_imdb_sentiment that delegate to course_lib instead of doing the work.

Each entry maps the grade_id of a solution cell to replacement source; the round-trip test submits them and
expects zero points on the matching questions (their hidden tests use course_lib.testing.forbid_calls_into).
"""

CHEATS = {
    "tokenize": (
        "from course_lib import text as _text\n"
        "def tokenize(text):\n"
        "    return [t for t in _text.tokenize(text) if t not in '!?']\n"
    ),
    "build_vocab": (
        "from course_lib.text import Vocabulary as _Vocabulary\n"
        "def build_vocab(token_lists, max_size):\n"
        "    return dict(_Vocabulary.build(token_lists, max_size=max_size).stoi)\n"
    ),
    "encode_batch": (
        "from course_lib.text import pad_batch as _pad_batch\n"
        "def encode_batch(token_lists, vocab, max_len):\n"
        "    return _pad_batch([np.array([vocab.get(t, 1) for t in l], dtype=np.int64) for l in token_lists],\n"
        "                      max_len, keep='last')\n"
    ),
    "classifier": (
        "from course_lib.models import valid_mask as _valid_mask\n"
        "class SentimentClassifier(nn.Module):\n"
        "    def __init__(self, vocab_size, embed_dim, hidden_size):\n"
        "        super().__init__()\n"
        "        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)\n"
        "        self.rnn = nn.GRU(embed_dim, hidden_size, batch_first=True)\n"
        "        self.out = nn.Linear(hidden_size, 1)\n"
        "    def forward(self, X, lengths):\n"
        "        h, _ = self.rnn(self.embedding(X))\n"
        "        last = _valid_mask(lengths, X.shape[1]).sum(1) - 1\n"
        "        return self.out(h[torch.arange(X.shape[0]), last]).squeeze(-1)\n"
    ),
    "train_epoch": (
        "from course_lib.train import TrainConfig as _TrainConfig\n"
        "import course_lib.text as _text\n"
        "def train_epoch(model, optimizer, X, lengths, y, batch_size, seed):\n"
        "    model.train()\n"
        "    y = torch.as_tensor(y, dtype=torch.float32)\n"
        "    losses = []\n"
        "    perm = np.random.default_rng(seed).permutation(len(X))\n"
        "    for idx in [perm[i:i + batch_size] for i in range(0, len(X), batch_size)]:\n"
        "        idx = torch.from_numpy(_text.truncate(idx, None))\n"
        "        loss = nn.functional.binary_cross_entropy_with_logits(model(X[idx], lengths[idx]), y[idx])\n"
        "        optimizer.zero_grad()\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
        "        losses.append(loss.item())\n"
        "    return float(np.mean(losses))\n"
    ),
}

# grade_ids of the test cells that must score zero with these answers: each cheated question.
ZERO = {
    "test_tokenize",
    "test_build_vocab",
    "test_encode_batch",
    "test_classifier",
    "test_train_epoch",
}
