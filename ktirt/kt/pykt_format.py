"""pyKT's own dataset files (train_valid_sequences.csv, test_sequences.csv, keyid2idx.json,
data_config.json), readable by pyKT's KTDataset as they are."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ktirt.errors import SettingsError
from ktirt.io import atomic_path
from ktirt.kt.sequences import Sequences, Windows, pykt_windows
from ktirt.split import SPLITS
from ktirt.vocab import Vocabulary

TRAIN_VALID = "train_valid_sequences.csv"
TEST = "test_sequences.csv"


def fold_of_users(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """pyKT fold of each student (`labels`: every student's split, in events order): validation students are
    fold 0, training students folds 1..folds-1 (seeded round robin); test students -1."""
    fold = np.full(len(labels), -1)
    fold[labels == SPLITS.index("val")] = 0
    train = np.flatnonzero(labels == SPLITS.index("train"))
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


def write_pykt(parts: Iterable[Sequences], labels: np.ndarray, vocab: Vocabulary, out: Path, seq_len: int,
               folds: int, seed: int) -> dict:
    """Write the four files from `parts`, the students' Sequences in events order, each a batch of whole
    students (ktirt.user_batches; one part for a table held in memory), built with `vocab`; `labels` is every
    student's split in that order. The CSVs are appended a part at a time, so memory is one part's. Returns
    counts for metrics/pykt_adapt.json, taken from the windows written, and refuses a windowing that would
    leave a response out."""
    if seq_len < 2:
        raise SettingsError(f"pykt.seq_len: must be at least 2 (pyKT predicts each position from the ones before), got {seq_len}")
    fold = fold_of_users(labels, folds, seed)
    n = _Counts()
    with atomic_path(out) as tmp:
        tmp.mkdir()
        with (open(tmp / TRAIN_VALID, "w", newline="", encoding="utf-8") as tv,
              open(tmp / TEST, "w", newline="", encoding="utf-8") as test):
            for seqs in parts:
                f = fold[n.sequences : n.sequences + len(seqs.users)]
                w_tv, w_test = pykt_windows(seqs, np.flatnonzero(f >= 0), seq_len), pykt_windows(seqs, np.flatnonzero(f < 0), seq_len)
                n.add(seqs, vocab, w_tv, w_test)  # guards the windowing before this part is written
                windows_frame(seqs, w_tv, f).to_csv(tv, index=False, header=tv.tell() == 0)
                windows_frame(seqs, w_test, f).to_csv(test, index=False, header=test.tell() == 0)
        if n.sequences != len(labels):
            raise RuntimeError(f"pyKT files hold {n.sequences} of {len(labels)} students")
        (tmp / "keyid2idx.json").write_text(json.dumps(vocab.to_json()) + "\n", encoding="utf-8")
        (tmp / "data_config.json").write_text(json.dumps(_config(out, vocab, seq_len, folds), indent=2) + "\n",
                                               encoding="utf-8")
    return n.metrics(vocab)


def _config(out: Path, vocab: Vocabulary, seq_len: int, folds: int) -> dict:
    """pyKT's data_config.json entry for these files."""
    return {"ktirt": {"dpath": str(out), "num_q": len(vocab.items), "num_c": len(vocab.skills),
                      "input_type": ["questions", "concepts"], "max_concepts": 1, "min_seq_len": 1, "maxlen": seq_len,
                      "emb_path": "", "train_valid_file": TRAIN_VALID, "folds": list(range(folds)), "test_file": TEST}}


@dataclass
class _Counts:
    """metrics/pykt_adapt.json's counts, summed over the parts written."""
    sequences: int = 0
    windows_train_valid: int = 0
    windows_test: int = 0
    cells: int = 0
    padded: int = 0
    responses: int = 0
    max_length: int = 0
    unseen: int = 0

    def add(self, seqs: Sequences, vocab: Vocabulary, w_tv: Windows, w_test: Windows) -> None:
        all_w = np.concatenate([w_tv.index, w_test.index])
        held = len(np.unique(all_w[all_w >= 0]))
        if held != len(seqs.item):
            raise RuntimeError(f"pyKT windows hold {held} of {len(seqs.item)} responses")
        self.sequences += len(seqs.users)
        self.windows_train_valid += len(w_tv.index)
        self.windows_test += len(w_test.index)
        self.cells += all_w.size
        self.padded += int((all_w < 0).sum())
        self.responses += held
        self.max_length = max(self.max_length, int(np.diff(seqs.offsets).max(initial=0)))
        self.unseen += int((seqs.item[seqs.responses_of("test")] >= vocab.n_train_items).sum())

    def metrics(self, vocab: Vocabulary) -> dict:
        return {
            "sequences": self.sequences,
            "windows": self.windows_train_valid + self.windows_test,
            "windows_train_valid": self.windows_train_valid,
            "windows_test": self.windows_test,
            "padded_share": round(self.padded / max(self.cells, 1), 6),
            "max_length": self.max_length,
            "mean_length": round(self.responses / max(self.sequences, 1), 3),
            "responses": self.responses,
            "num_q": len(vocab.items),
            "num_q_train": vocab.n_train_items,
            "num_c": len(vocab.skills),
            "test_questions_unseen_in_train": self.unseen,
        }


def read_pykt_windows(path: Path) -> dict[str, np.ndarray]:
    """A pyKT sequences CSV as (n, L) integer arrays (for benchmarks feeding both models the same rows)."""
    df = pd.read_csv(path)
    out = {"fold": df["fold"].to_numpy()}
    for col in ("questions", "concepts", "responses", "selectmasks"):
        out[col] = np.array([np.array(s.split(","), dtype=np.int64) for s in df[col]])
    return out
