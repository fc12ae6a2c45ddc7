"""Three honest answers to 05_imdb_sentiment (the autograded questions 1-5), written independently from the
released notebook's instructions (the format is in tests/similarity_corpus/__init__.py)."""

HONEST = {
    "s1": {
        "tokenize": '''
def tokenize(text):
    text = text.lower()
    text = text.replace("<br />", " ")
    tokens = re.findall("[a-z0-9']+", text)
    return tokens
''',
        "build_vocab": '''
def build_vocab(token_lists, max_size):
    counts = {}
    for tokens in token_lists:
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))
    vocab = {"<pad>": 0, "<unk>": 1}
    for w in words[:max_size - 2]:
        vocab[w] = len(vocab)
    return vocab
''',
        "encode_batch": '''
def encode_batch(token_lists, vocab, max_len):
    encoded = []
    for tokens in token_lists:
        ids = [vocab[t] if t in vocab else 1 for t in tokens]
        if len(ids) > max_len:
            ids = ids[len(ids) - max_len:]
        encoded.append(ids)
    lengths = [max(1, len(ids)) for ids in encoded]
    T = max(lengths)
    X = torch.zeros(len(encoded), T, dtype=torch.int64)
    for n, ids in enumerate(encoded):
        if ids:
            X[n, :len(ids)] = torch.tensor(ids)
    return X, torch.tensor(lengths, dtype=torch.int64)
''',
        "classifier": '''
class SentimentClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, X, lengths):
        embedded = self.embedding(X)
        outputs, _ = self.rnn(embedded)
        idx = torch.arange(X.shape[0])
        last_states = outputs[idx, lengths - 1, :]
        logits = self.out(last_states)
        return logits[:, 0]
''',
        "train_epoch": '''
def train_epoch(model, optimizer, X, lengths, y, batch_size, seed):
    model.train()
    targets = torch.as_tensor(y, dtype=torch.float32)
    order = np.random.default_rng(seed).permutation(len(X))
    total, batches = 0.0, 0
    for i in range(0, len(order), batch_size):
        batch = torch.as_tensor(order[i:i + batch_size])
        optimizer.zero_grad()
        logits = model(X[batch], lengths[batch])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, targets[batch])
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / batches
''',
    },
    "s2": {
        "tokenize": '''
def tokenize(text):
    cleaned = text.lower().replace("<br />", " ")
    return [w for w in re.split(r"[^a-z0-9']+", cleaned) if w]
''',
        "build_vocab": '''
def build_vocab(token_lists, max_size):
    freq = Counter()
    for toks in token_lists:
        freq.update(toks)
    by_count = sorted(freq.items(), key=lambda item: (-item[1], item[0]))
    keep = [word for word, _ in by_count][: max(0, max_size - 2)]
    vocab = {"<pad>": 0, "<unk>": 1}
    vocab.update({word: i + 2 for i, word in enumerate(keep)})
    return vocab
''',
        "encode_batch": '''
def encode_batch(token_lists, vocab, max_len):
    unk = vocab["<unk>"]
    seqs = [[vocab.get(tok, unk) for tok in toks][-max_len:] for toks in token_lists]
    lengths = torch.tensor([len(s) if s else 1 for s in seqs], dtype=torch.long)
    X = torch.full((len(seqs), int(lengths.max().item())), 0, dtype=torch.long)
    for row, seq in enumerate(seqs):
        X[row, :len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return X, lengths
''',
        "classifier": '''
class SentimentClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, X, lengths):
        states, _ = self.rnn(self.embedding(X))
        picked = states.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, states.size(2)))
        return self.out(picked.squeeze(1)).view(-1)
''',
        "train_epoch": '''
def train_epoch(model, optimizer, X, lengths, y, batch_size, seed):
    model.train()
    labels = torch.as_tensor(y, dtype=torch.float32)
    N = len(labels)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(N))
    batch_losses = []
    for idx in torch.split(perm, batch_size):
        optimizer.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(X[idx], lengths[idx]), labels[idx])
        loss.backward()
        optimizer.step()
        batch_losses.append(float(loss))
    return float(np.mean(batch_losses))
''',
    },
    "s3": {
        "tokenize": '''
def tokenize(text):
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789'")
    tokens, current = [], ""
    for ch in text.lower().replace("<br />", " "):
        if ch in allowed:
            current += ch
        elif current:
            tokens.append(current)
            current = ""
    if current:
        tokens.append(current)
    return tokens
''',
        "build_vocab": '''
def build_vocab(token_lists, max_size):
    counts = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    vocab = {"<pad>": 0, "<unk>": 1}
    # alphabetical first, then a stable sort by count: ties stay alphabetical
    for word, _ in sorted(sorted(counts.items()), key=lambda p: p[1], reverse=True):
        if len(vocab) >= max_size:
            break
        vocab[word] = len(vocab)
    return vocab
''',
        "encode_batch": '''
def encode_batch(token_lists, vocab, max_len):
    rows = []
    for tokens in token_lists:
        ids = [vocab.get(tok, 1) for tok in tokens]
        rows.append(ids[-max_len:] if len(ids) > max_len else ids)
    T = max(max(len(r) for r in rows), 1)
    X = torch.zeros((len(rows), T), dtype=torch.int64)
    lengths = torch.ones(len(rows), dtype=torch.int64)
    for n, r in enumerate(rows):
        if r:
            X[n, :len(r)] = torch.tensor(r)
            lengths[n] = len(r)
    return X, lengths
''',
        "classifier": '''
class SentimentClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_size):
        super(SentimentClassifier, self).__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, X, lengths):
        N = X.size(0)
        output, hidden = self.rnn(self.embedding(X))
        last = output[torch.arange(N), lengths - 1]
        return self.out(last).squeeze(1)
''',
        "train_epoch": '''
def train_epoch(model, optimizer, X, lengths, y, batch_size, seed):
    model.train()
    y = torch.tensor(np.asarray(y), dtype=torch.float32)
    indices = np.random.default_rng(seed).permutation(X.shape[0])
    n_batches = (len(indices) + batch_size - 1) // batch_size
    running = 0.0
    for b in range(n_batches):
        rows = torch.tensor(indices[b * batch_size:(b + 1) * batch_size])
        pred = model(X[rows], lengths[rows])
        loss = nn.functional.binary_cross_entropy_with_logits(pred, y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item()
    return float(running / n_batches)
''',
    },
}
