"""Plausible wrong answers to assignment 05_imdb_sentiment (the format is documented in tests/test_mistakes.py).

Each wrong answer is the solution cell of the source notebook with one mistake put in (see _variants.py).
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_variants", Path(__file__).with_name("_variants.py"))
_variants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_variants)
_mistake = _variants.mistake_maker("05_imdb_sentiment")

_TOKENS = 're.findall(r"[a-z0-9\']+", text.lower().replace("<br />", " "))'
_VOCAB = "ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max_size - 2]"
_IDS = "ids = [[vocab.get(t, 1) for t in tokens][-max_len:] for tokens in token_lists]"
_T, _V, _E = "test_tokenize", "test_build_vocab", "test_encode_batch"
_M, _R = "test_classifier", "test_train_epoch"

MISTAKES = [
    # --- tokenize
    _mistake("tokenize_keeps_br", "tokenize", [(_TOKENS, 're.findall(r"[a-z0-9\']+", text.lower())')], _T,
             "contains a token 'br'"),
    _mistake("tokenize_br_removed_not_spaced", "tokenize",
             [(_TOKENS, 're.findall(r"[a-z0-9\']+", text.lower().replace("<br />", ""))')], _T,
             "glues the words on both sides"),
    _mistake("tokenize_no_apostrophe", "tokenize",
             [(_TOKENS, 're.findall(r"[a-z0-9]+", text.lower().replace("<br />", " "))')], _T,
             "at the apostrophe"),
    _mistake("tokenize_no_digits", "tokenize",
             [(_TOKENS, 're.findall(r"[a-z\']+", text.lower().replace("<br />", " "))')], _T, "drops the digits"),
    _mistake("tokenize_not_lowercased", "tokenize",
             [(_TOKENS, 're.findall(r"[a-z0-9\']+", text.replace("<br />", " "))')], _T, "loses the capital letters"),
    _mistake("tokenize_split_on_spaces", "tokenize", [(_TOKENS, 'text.lower().replace("<br />", " ").split()')], _T,
             "keeps punctuation attached"),
    _mistake("tokenize_as_the_chapter", "tokenize",  # course_lib.text.tokenize's rule, written by hand
             [(_TOKENS, 're.findall(r"[a-z0-9\']+|[!?]", text.lower().replace("<br />", " "))')], _T,
             "as the chapter's course_lib.text.tokenize does"),
    # --- build_vocab
    _mistake("vocab_ties_by_first_occurrence", "build_vocab", [(_VOCAB, "ranked = counts.most_common(max_size - 2)")],
             _V, "breaks ties by first occurrence"),
    _mistake("vocab_too_large", "build_vocab",
             [(_VOCAB, "ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_size]")], _V,
             "more than max_size entries"),
    _mistake("vocab_without_special_tokens", "build_vocab",
             [('vocab = {"<pad>": 0, "<unk>": 1}', "vocab = {}"), (_VOCAB, _VOCAB.replace("max_size - 2", "max_size"))],
             _V, "misses '<pad>' and '<unk>'"),
    # --- encode_batch
    _mistake("encode_keeps_first_ids", "encode_batch", [(_IDS, _IDS.replace("[-max_len:]", "[:max_len]"))], _E,
             "keeps the first max_len ids"),
    _mistake("encode_pads_left", "encode_batch",
             [("X[n, : len(s)] = torch.tensor(s, dtype=torch.int64)",
               "X[n, X.shape[1] - len(s):] = torch.tensor(s, dtype=torch.int64)")], _E, "padded on the left"),
    _mistake("encode_unknown_as_pad", "encode_batch", [(_IDS, _IDS.replace("vocab.get(t, 1)", "vocab.get(t, 0)"))],
             _E, "gives unknown words id 0"),
    _mistake("encode_lengths_before_truncation", "encode_batch",
             [("lengths = torch.tensor([max(len(s), 1) for s in ids], dtype=torch.int64)",
               "lengths = torch.tensor([max(len(t), 1) for t in token_lists], dtype=torch.int64)")], _E,
             "counts the tokens before truncation"),
    _mistake("encode_empty_length_zero", "encode_batch",
             [("lengths = torch.tensor([max(len(s), 1) for s in ids], dtype=torch.int64)",
               "lengths = torch.tensor([len(s) for s in ids], dtype=torch.int64)")], _E,
             "gives an empty list length 0"),
    _mistake("encode_pads_to_max_len", "encode_batch",
             [("X = torch.zeros((len(ids), int(lengths.max())), dtype=torch.int64)",
               "X = torch.zeros((len(ids), max_len), dtype=torch.int64)")], _E, "where (2, 2) is expected"),
    _mistake("encode_float_tensor", "encode_batch",
             [("X = torch.zeros((len(ids), int(lengths.max())), dtype=torch.int64)",
               "X = torch.zeros((len(ids), int(lengths.max())))")], _E, "the type of X"),
    # --- SentimentClassifier
    _mistake("classifier_last_padded_step", "classifier",
             [("last = h[torch.arange(X.shape[0]), lengths - 1]", "last = h[:, -1]")], _M, "from step T - 1"),
    _mistake("classifier_no_padding_idx", "classifier",
             [("nn.Embedding(vocab_size, embed_dim, padding_idx=0)", "nn.Embedding(vocab_size, embed_dim)")], _M,
             "padding_idx is not set"),
    _mistake("classifier_not_batch_first", "classifier",
             [("nn.GRU(embed_dim, hidden_size, batch_first=True)", "nn.GRU(embed_dim, hidden_size)")], _M,
             "batch_first is False"),
    _mistake("classifier_returns_probabilities", "classifier",
             [("return self.out(last).squeeze(-1)", "return torch.sigmoid(self.out(last).squeeze(-1))")], _M,
             "went through a sigmoid"),
    _mistake("classifier_no_squeeze", "classifier", [("return self.out(last).squeeze(-1)", "return self.out(last)")],
             _M, "has shape (3, 1) where (3,) is expected"),
    # --- train_epoch
    _mistake("train_no_zero_grad", "train_epoch", [("        optimizer.zero_grad()\n", "")], _R,
             "call optimizer.zero_grad()"),
    _mistake("train_no_shuffle", "train_epoch",
             [("perm = np.random.default_rng(seed).permutation(len(X))", "perm = np.arange(len(X))")], _R,
             "batches that are not shuffled"),
    _mistake("train_returns_last_batch_loss", "train_epoch", [("return float(np.mean(losses))", "return losses[-1]")],
             _R, "the last batch's"),
    _mistake("train_returns_tensor", "train_epoch",
             [("losses.append(loss.item())", "losses.append(loss)"),
              ("return float(np.mean(losses))", "return torch.stack(losses).mean()")], _R, "type is Tensor"),
    _mistake("train_loss_weighted_by_batch_size", "train_epoch",
             [("losses.append(loss.item())", "losses.append(loss.item() * len(idx))"),
              ("return float(np.mean(losses))", "return float(np.sum(losses) / len(X))")], _R,
             "weights the batches by size"),
    _mistake("train_labels_left_as_integers", "train_epoch",
             [("y = torch.as_tensor(y, dtype=torch.float32)", "y = torch.as_tensor(y)")], _R, "was never checked"),
]

MISTAKES += [
    # replaces '<br />' before lowercasing: '<BR />' stays and leaves a token 'br'
    _mistake("tokenize_br_before_lowercase", "tokenize",
             [(_TOKENS, 're.findall(r"[a-z0-9\']+", text.replace("<br />", " ").lower())')], _T,
             "lowercase the text before replacing '<br />'"),
    # counts each token once per review (the reviews that contain it), not its occurrences
    _mistake("vocab_counts_reviews", "build_vocab",
             [("counts = Counter(t for tokens in token_lists for t in tokens)",
               "counts = Counter(t for tokens in token_lists for t in set(tokens))")], _V,
             "counts the reviews that contain a token, not its occurrences"),
]
