"""SAKT over every student's whole history: the prediction for each response and the student's mastery
of its skill just after it.

Mastery after response t on skill k is SAKT's predicted chance of a correct first response to the
skill's *typical* items (the `n_typical` items whose WD-IRT difficulty is nearest the skill's median,
among items with their own SAKT embedding), given every interaction up to and including t. SAKT's query
is only the item about to be answered, so the same attention pass can ask it about any item: the
position after t is queried with each typical item of t's skill instead of the item that came next, and
the probabilities are averaged. A virtual last position per student gives the mastery after their final
response. Same windows as evaluation (slide by half a window), so every response is scored exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ktirt.kt.sakt_training import ModelVocab, window_tensors
from ktirt.kt.sequences import Sequences, query_windows
from ktirt.kt.vocab import NO_SKILL, Vocabulary
from ktirt.models.sakt import SAKT, START

log = logging.getLogger(__name__)


def typical_items(seqs: Sequences, vocab: Vocabulary, mv: ModelVocab, difficulty: dict[str, float],
                  n_typical: int) -> np.ndarray:
    """(n_model_skills, n_typical) model item indices: per skill, the items with their own embedding whose
    difficulty is nearest the median of those items' difficulties; index 0 (the skill's embedding alone)
    where a skill has none. Rows of no skill are all 0 (their responses get no mastery)."""
    known = seqs.item >= 0
    df = pd.DataFrame({"item": seqs.item[known], "skill": seqs.skill[known]})
    df = df[df["skill"] >= 0].groupby("item")["skill"].agg(lambda s: s.value_counts().index[0]).reset_index()
    df["model_item"] = mv.item[df["item"].to_numpy()]
    df["b"] = [difficulty.get(vocab.items[i], np.nan) for i in df["item"]]
    df = df[(df["model_item"] > 0) & df["b"].notna() & (np.asarray(vocab.skills, dtype=object)[df["skill"]] != NO_SKILL)]
    out = np.zeros((mv.n_skills, n_typical), dtype=np.int64)
    for skill, g in df.groupby("skill"):
        near = g.assign(gap=(g["b"] - g["b"].median()).abs()).sort_values(["gap", "model_item"])["model_item"].to_numpy()
        out[skill + 1] = np.resize(near[:n_typical], n_typical)  # fewer than n_typical: repeat the nearest
    return out


def _with_virtual_last(seqs: Sequences) -> tuple[Sequences, np.ndarray]:
    """The sequences with one unknown response appended to every student, and where each real row went."""
    n_users = len(seqs.users)
    real = np.arange(len(seqs.item)) + seqs.user_of
    ext_len = len(seqs.item) + n_users
    virtual = np.setdiff1d(np.arange(ext_len), real)

    def put(values, fill):
        out = np.full(ext_len, fill, dtype=values.dtype)
        out[real] = values
        return out

    ext = replace(seqs, offsets=seqs.offsets + np.arange(n_users + 1), item=put(seqs.item, -1), skill=put(seqs.skill, -1),
                  correct=put(seqs.correct, 0), timestamp_ms=put(seqs.timestamp_ms, seqs.timestamp_ms.max(initial=0)))
    assert len(virtual) == n_users
    return ext, real


def score_responses(model: SAKT, seqs: Sequences, mv: ModelVocab, typical: np.ndarray, batch_size: int = 128,
                    device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, mastery): per response of `seqs`, P(correct) from the responses before it, and the
    mastery of its skill just after it (NaN for a response without a skill)."""
    device = device or next(model.parameters()).device
    L = model.cfg.seq_len
    ext, real = _with_virtual_last(seqs)
    w = query_windows(ext, None, L, max(1, L // 2))
    t = window_tensors(ext, w, mv)
    n_typ = typical.shape[1]
    typ = torch.as_tensor(typical)
    pred = np.full(len(ext.item), np.nan)
    mastery = np.full(len(ext.item), np.nan)
    model.eval()
    with torch.no_grad():
        for lo in tqdm(range(0, len(t["score"]), batch_size), desc="SAKT scoring", leave=False, mininterval=5, disable=None):
            b = {k: v[lo : lo + batch_size] for k, v in t.items()}
            n = len(b["score"])
            keys = [b[k].to(device) for k in ("k_item", "k_skill", "k_resp")]
            # the real query, then each typical item of the previous response's skill
            q_item = torch.cat([b["q_item"], *(typ[b["k_skill"], m] for m in range(n_typ))]).to(device)
            q_skill = torch.cat([b["q_skill"]] + [b["k_skill"]] * n_typ).to(device)
            p = torch.sigmoid(model(*(k.repeat(n_typ + 1, 1) for k in keys), q_item, q_skill)).cpu()
            score, index = b["score"].numpy(), b["index"].numpy()
            pred[index[score]] = p[:n].numpy()[score]
            after = score & (b["k_resp"].numpy() != START) & (b["k_resp"].numpy() >= 0) & (b["k_skill"].numpy() > 0)
            m = p[n:].view(n_typ, n, -1).mean(0).numpy()
            mastery[index[after] - 1] = m[after]
    return pred[real], mastery[real]
