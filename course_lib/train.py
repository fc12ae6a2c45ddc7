"""Training a binary sequence classifier: the loop, evaluation, early stopping and resumable checkpoints.

:func:`fit` trains any model called as ``model(tokens, lengths) -> logits (N,)`` (e.g.
:class:`course_lib.models.SentimentRNN`) on a :class:`course_lib.text.SequenceDataset`. After every epoch it
writes ``last.pt`` (everything needed to resume: model, optimizer, epoch, history, early-stopping state,
random-number-generator states, configs and whatever ``extra`` holds, e.g. the vocabulary) and, when the
validation metric improves, ``best.pt``; both atomically (a temporary file renamed over the old one), so a run
killed at any moment leaves the previous checkpoint intact. ``fit(..., resume=True)`` continues from
``last.pt`` and ends with exactly the same weights and metrics as a run that was never interrupted: batch
order depends only on ``(seed, epoch)``, and the dropout generator's state is restored.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .text import SequenceDataset, Vocabulary, pad_batch, tokenize


@dataclass
class TrainConfig:
    """Hyperparameters of :func:`fit` (stored in checkpoints; a resumed run must use the same ones)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    lr_decay: float = 1.0  # epoch e (from 1) trains at lr * lr_decay ** (e - 1); a function of the epoch, so resumable
    weight_decay: float = 0.0
    clip_grad: float | None = 5.0  # max gradient norm, None for no clipping
    max_len: int | None = 400  # truncate reviews to this many tokens
    keep: str = "last"  # which end of a long review to keep: "first" or "last"
    monitor: str = "val_accuracy"  # early stopping and best.pt follow this metric ("val_loss" or "val_accuracy")
    patience: int | None = None  # stop after this many epochs without improvement (None: never)
    seed: int = 0
    max_seconds: float | None = None  # stop after the epoch during which training time passes this budget

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def set_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the legacy global generator, which other code may draw from)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def rng_states() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}  # noqa: NPY002
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path`` (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`fit` (``weights_only=False``: it holds RNG states and configs)."""
    return torch.load(path, map_location=map_location, weights_only=False)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: SequenceDataset,
    config: TrainConfig,
    epoch: int,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict:
    """One pass over ``data`` in length-bucketed batches (order fixed by ``(config.seed, epoch)``).

    Returns:
        ``{"loss": mean binary cross-entropy, "accuracy": fraction correct}`` over the epoch's batches.
    """
    model.train()
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    total_loss, correct, seen = 0.0, 0, 0
    batches = data.batches(config.batch_size, config.max_len, config.keep, shuffle=True, seed=(config.seed, epoch))
    n_batches = -(-len(data) // config.batch_size)
    bar = tqdm(batches, total=n_batches, desc=f"epoch {epoch}", leave=False, disable=not progress, mininterval=1.0)
    for tokens, lengths, labels, _ in bar:
        tokens, lengths, labels = tokens.to(device), lengths.to(device), labels.to(device)
        logits = model(tokens, lengths)
        labels = labels.to(logits.dtype)
        loss = loss_fn(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        (loss / len(labels)).backward()
        if config.clip_grad is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
        optimizer.step()
        total_loss += loss.item()
        correct += int(((logits > 0).float() == labels).sum())
        seen += len(labels)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
    return {"loss": total_loss / max(seen, 1), "accuracy": correct / max(seen, 1)}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: SequenceDataset,
    batch_size: int = 256,
    max_len: int | None = 400,
    keep: str = "last",
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict:
    """Loss, accuracy and the predicted probabilities ``(N,)`` (in the dataset's order) in eval mode."""
    model.eval()
    probs = np.zeros(len(data))
    total_loss = 0.0
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    batches = data.batches(batch_size, max_len, keep, shuffle=False)
    n_batches = -(-len(data) // batch_size)
    for tokens, lengths, labels, idx in tqdm(batches, total=n_batches, desc="evaluate", leave=False,
                                             disable=not progress, mininterval=1.0):
        logits = model(tokens.to(device), lengths.to(device))
        total_loss += loss_fn(logits, labels.to(device, logits.dtype)).item()
        probs[idx] = torch.sigmoid(logits).double().cpu().numpy()
    accuracy = float(np.mean((probs > 0.5) == (data.labels == 1))) if len(data) else 0.0
    return {"loss": total_loss / max(len(data), 1), "accuracy": accuracy, "probs": probs}


def _better(monitor: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value < best if monitor.endswith("loss") else value > best


def fit(
    model: nn.Module,
    train: SequenceDataset,
    val: SequenceDataset | None,
    config: TrainConfig,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    extra: dict | None = None,
    optimizer_factory: Callable | None = None,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> dict:
    """Train ``model`` with Adam and binary cross-entropy; return the metrics history.

    Args:
        model: ``model(tokens (N, T), lengths (N,)) -> logits (N,)``, already seeded and built.
        train, val: the training data and the validation data (None: no validation, no early stopping).
        config: hyperparameters; ``config.seed`` fixes batch order, and :func:`set_seed` is called with it.
        checkpoint_dir: where ``last.pt`` and ``best.pt`` go (None: no checkpoints).
        resume: continue from ``checkpoint_dir/last.pt`` if it exists (its config must equal ``config``).
        device: default :func:`default_device`.
        progress: show tqdm bars (one per epoch) and one line per epoch; False for silence.
        extra: stored as is in every checkpoint (e.g. ``{"vocab": vocab.to_dict(), "model_config": ...}``).
        optimizer_factory: ``params -> optimizer``; default Adam with ``config.lr`` and ``config.weight_decay``.
        on_epoch_end: called with the history after each epoch.

    Returns:
        history: lists ``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``,
        ``seconds`` (training time of each epoch, evaluation excluded), plus ``best_epoch``, ``stopped_early``.
        With validation data the model ends with the weights of its best epoch.
    """
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    make_opt = optimizer_factory or (lambda p: torch.optim.Adam(p, lr=config.lr, weight_decay=config.weight_decay))
    optimizer = make_opt(model.parameters())
    history = {"epoch": [], "train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": [],
               "seconds": [], "best_epoch": None, "best_value": None, "bad_epochs": 0, "stopped_early": False}
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    start = 1
    best_state = None
    set_seed(config.seed)
    if resume and ckpt_dir is not None and (ckpt_dir / "last.pt").exists():
        state = load_checkpoint(ckpt_dir / "last.pt", map_location=device)
        if state["train_config"] != config.to_dict():
            raise ValueError(f"cannot resume: the checkpoint was trained with {state['train_config']}, "
                             f"not {config.to_dict()}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        start = state["epoch"] + 1
        set_rng_states(state["rng"])
    for epoch in range(start, config.epochs + 1):
        out_of_time = config.max_seconds is not None and sum(history["seconds"]) >= config.max_seconds
        if history["stopped_early"] or out_of_time:
            break
        if config.lr_decay != 1.0:
            for group in optimizer.param_groups:
                group["lr"] = config.lr * config.lr_decay ** (epoch - 1)
        t0 = time.perf_counter()
        metrics = train_epoch(model, optimizer, train, config, epoch, device, progress)
        seconds = time.perf_counter() - t0
        history["epoch"].append(epoch)
        history["train_loss"].append(metrics["loss"])
        history["train_accuracy"].append(metrics["accuracy"])
        history["seconds"].append(seconds)
        if val is not None and len(val):
            v = evaluate(model, val, config.batch_size * 2, config.max_len, config.keep, device)
            history["val_loss"].append(v["loss"])
            history["val_accuracy"].append(v["accuracy"])
            value = v[config.monitor.removeprefix("val_")]
            if _better(config.monitor, value, history["best_value"]):
                history["best_value"], history["best_epoch"], history["bad_epochs"] = value, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if ckpt_dir is not None:
                    save_checkpoint({"model": model.state_dict(), "epoch": epoch, "train_config": config.to_dict(),
                                     "extra": extra or {}}, ckpt_dir / "best.pt")
            else:
                history["bad_epochs"] += 1
                if config.patience is not None and history["bad_epochs"] >= config.patience:
                    history["stopped_early"] = True
        if progress:
            line = f"epoch {epoch}: train loss {metrics['loss']:.4f} acc {metrics['accuracy']:.4f}"
            if history["val_loss"]:
                line += f", val loss {history['val_loss'][-1]:.4f} acc {history['val_accuracy'][-1]:.4f}"
            tqdm.write(line + f" ({seconds:.1f} s)")
        if ckpt_dir is not None:
            save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                             "history": history, "train_config": config.to_dict(), "rng": rng_states(),
                             "extra": extra or {}}, ckpt_dir / "last.pt")
        if on_epoch_end is not None:
            on_epoch_end(history)
    if history["best_epoch"] is not None and history["epoch"] and history["best_epoch"] != history["epoch"][-1]:
        if best_state is None and ckpt_dir is not None and (ckpt_dir / "best.pt").exists():
            best_state = load_checkpoint(ckpt_dir / "best.pt", map_location=device)["model"]
        if best_state is not None:
            model.load_state_dict(best_state)
    return history


def predict_texts(
    model: nn.Module, vocab: Vocabulary, texts: list[str], max_len: int | None = 400, keep: str = "last",
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Probabilities ``(len(texts),)`` that each raw review is positive."""
    model.eval()
    tokens, lengths = pad_batch([vocab.encode(tokenize(t)) for t in texts], max_len, keep)
    with torch.no_grad():
        return torch.sigmoid(model(tokens.to(device), lengths.to(device))).double().cpu().numpy()
