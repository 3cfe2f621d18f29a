"""pyKT's own dataset files (train_valid_sequences.csv, test_sequences.csv, keyid2idx.json,
data_config.json), readable by pyKT's KTDataset as they are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ktirt.errors import SettingsError
from ktirt.io import atomic_path
from ktirt.kt.sequences import Sequences, Windows, pykt_windows
from ktirt.split import SPLITS
from ktirt.vocab import Vocabulary

TRAIN_VALID = "train_valid_sequences.csv"
TEST = "test_sequences.csv"


def fold_of_users(seqs: Sequences, folds: int, seed: int) -> np.ndarray:
    """pyKT fold of each student: validation students are fold 0, training students folds 1..folds-1
    (seeded round robin); test students -1."""
    fold = np.full(len(seqs.users), -1)
    fold[seqs.split == SPLITS.index("val")] = 0
    train = np.flatnonzero(seqs.split == SPLITS.index("train"))
    order = np.random.default_rng(seed).permutation(len(train))
    fold[train[order]] = 1 + np.arange(len(train)) % max(folds - 1, 1)
    return fold


def _joined(values: np.ndarray) -> list[str]:
    return [",".join(map(str, row)) for row in values.tolist()]


def windows_frame(seqs: Sequences, w: Windows, fold: np.ndarray) -> pd.DataFrame:
    pad = w.index < 0
    idx = np.maximum(w.index, 0)
    user = seqs.user_of[idx[:, 0]]

    def col(a):
        return np.where(pad, -1, a[idx])

    return pd.DataFrame({
        "fold": fold[user],
        "uid": seqs.users[user],
        "questions": _joined(col(seqs.item)),
        "concepts": _joined(col(seqs.skill)),
        "responses": _joined(col(seqs.correct)),
        "timestamps": _joined(col(seqs.timestamp_ms)),
        "selectmasks": _joined(np.where(pad, -1, w.score.astype(int))),
    })


def write_pykt(seqs: Sequences, vocab: Vocabulary, out: Path, seq_len: int, folds: int, seed: int) -> dict:
    """Write the four files; return counts for metrics/pykt_adapt.json, taken from the windows written (what
    the files hold), and refuse a windowing that would leave responses out."""
    if seq_len < 2:
        raise SettingsError(f"pykt.seq_len: must be at least 2 (pyKT predicts each position from the ones before), got {seq_len}")
    fold = fold_of_users(seqs, folds, seed)
    trainval = np.flatnonzero(fold >= 0)
    test = np.flatnonzero(fold < 0)
    w_tv, w_test = pykt_windows(seqs, trainval, seq_len), pykt_windows(seqs, test, seq_len)
    all_w = np.concatenate([w_tv.index, w_test.index])
    held = len(np.unique(all_w[all_w >= 0]))
    if held != len(seqs.item):  # guards the windowing before anything is written: every response in the files
        raise RuntimeError(f"pyKT windows hold {held} of {len(seqs.item)} responses")
    config = {
        "ktirt": {
            "dpath": str(out),
            "num_q": len(vocab.items),
            "num_c": len(vocab.skills),
            "input_type": ["questions", "concepts"],
            "max_concepts": 1,
            "min_seq_len": 1,
            "maxlen": seq_len,
            "emb_path": "",
            "train_valid_file": TRAIN_VALID,
            "folds": list(range(folds)),
            "test_file": TEST,
        }
    }
    with atomic_path(out) as tmp:
        tmp.mkdir()
        windows_frame(seqs, w_tv, fold).to_csv(tmp / TRAIN_VALID, index=False)
        windows_frame(seqs, w_test, fold).to_csv(tmp / TEST, index=False)
        (tmp / "keyid2idx.json").write_text(json.dumps(vocab.to_json()) + "\n")
        (tmp / "data_config.json").write_text(json.dumps(config, indent=2) + "\n")
    lengths = np.diff(seqs.offsets)
    return {
        "sequences": len(seqs.users),
        "windows": len(all_w),
        "windows_train_valid": len(w_tv.index),
        "windows_test": len(w_test.index),
        "padded_share": round(float((all_w < 0).mean()), 6),
        "max_length": int(lengths.max()),
        "mean_length": round(float(lengths.mean()), 3),
        "responses": held,
        "num_q": len(vocab.items),
        "num_q_train": vocab.n_train_items,
        "num_c": len(vocab.skills),
        "test_questions_unseen_in_train": int((seqs.item[seqs.responses_of("test")] >= vocab.n_train_items).sum()),
    }


def read_pykt_windows(path: Path) -> dict[str, np.ndarray]:
    """A pyKT sequences CSV as (n, L) integer arrays (for benchmarks feeding both models the same rows)."""
    df = pd.read_csv(path)
    out = {"fold": df["fold"].to_numpy()}
    for col in ("questions", "concepts", "responses", "selectmasks"):
        out[col] = np.array([np.array(s.split(","), dtype=np.int64) for s in df[col]])
    return out
