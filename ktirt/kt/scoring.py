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
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from ktirt.kt.sakt_training import ModelVocab, window_tensors
from ktirt.kt.sequences import Sequences, query_windows
from ktirt.kt.fixed_runs import in_fixed_runs
from ktirt.kt.window_build import with_global_indices
from ktirt.vocab import NO_SKILL, Vocabulary
from ktirt.models.sakt import INPUTS, SAKT, START

log = logging.getLogger(__name__)


def known_item_skills(item: np.ndarray, skills: np.ndarray) -> pd.DataFrame:
    """The distinct (item, skill) pairs of the responses to items in the vocabulary (`item`, `skills`: vocabulary
    indices, as in Sequences), in order of first response, with whether that response's item carries several
    skills: what `typical_items` chooses from. Pairs of batches of students, concatenated in order, give the whole
    log's after `drop_duplicates(["item", "skill"])`."""
    known = item >= 0
    n_skills = (skills[known] >= 0).sum(1)
    pairs = pd.DataFrame({"item": np.repeat(item[known], skills.shape[1]), "skill": skills[known].ravel(),
                          "multi": np.repeat(n_skills > 1, skills.shape[1])})
    return pairs[pairs["skill"] >= 0].drop_duplicates(["item", "skill"])


def typical_items(pairs: pd.DataFrame, vocab: Vocabulary, mv: ModelVocab, difficulty: dict[str, float],
                  n_typical: int) -> np.ndarray:
    """(n_model_skills, n_typical) pyKT item indices: per skill, the items nearest the median of the skill's
    WD-IRT difficulties, among the items SAKT knows best (an embedding of their own; failing that, a
    difficulty of their own; single-skill items before multi-skill ones); -1 where a skill has none.
    Rows of no skill are all -1 (their responses get no mastery). `pairs`: `known_item_skills`."""
    df = pairs.drop_duplicates(["item", "skill"]).copy()
    df["tier"] = np.where(mv.item[df["item"]] > 0, 0, np.where(mv.diff[df["item"]] > 0, 1, 2)) + 3 * df["multi"]
    df["b"] = [difficulty.get(vocab.items[i], np.nan) for i in df["item"]]
    df = df[(df["tier"] % 3 < 2) & df["b"].notna() & (np.asarray(vocab.skills, dtype=object)[df["skill"]] != NO_SKILL)]
    out = np.full((mv.n_skills, n_typical), -1, dtype=np.int64)
    for skill, g in df.groupby("skill"):
        g = g[g["tier"] == g["tier"].min()]
        near = g.assign(gap=(g["b"] - g["b"].median()).abs()).sort_values(["gap", "item"])["item"].to_numpy()
        out[skill + 1] = np.resize(near[:n_typical], n_typical)  # fewer than n_typical: repeat the nearest
    return out


def _with_virtual_last(seqs: Sequences) -> tuple[Sequences, np.ndarray]:
    """The sequences with one unknown response appended to every student, and where each real row went."""
    n_users = len(seqs.users)
    real = np.arange(len(seqs.item)) + seqs.user_of
    ext_len = len(seqs.item) + n_users
    virtual = np.setdiff1d(np.arange(ext_len), real)

    def put(values, fill):
        out = np.full((ext_len, *values.shape[1:]), fill, dtype=values.dtype)
        out[real] = values
        return out

    ext = replace(seqs, offsets=seqs.offsets + np.arange(n_users + 1), item=put(seqs.item, -1),
                  correct=put(seqs.correct, 0), timestamp_ms=put(seqs.timestamp_ms, seqs.timestamp_ms.max(initial=0)),
                  skills=put(seqs.skills, -1), click=put(seqs.click, 0), practice=put(seqs.practice, -1))
    assert len(virtual) == n_users
    return ext, real


def scoring_windows(seqs: Sequences, mv: ModelVocab, L: int, first: int = 0) -> tuple[np.ndarray, int, dict[str, torch.Tensor]]:
    """One batch of students ready for scoring: the position of each real response, the positions to score (the
    responses and one virtual last response per student, whose position asks for the mastery after the real last
    one), and the windows over them (`first`: positions in the batches before this one; indices are global)."""
    ext, real = _with_virtual_last(seqs)
    t = window_tensors(ext, query_windows(ext, None, L, max(1, L // 2)), mv, mastery=True)
    return real, len(ext.item), with_global_indices(t, first)


def of_responses(values: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, mastery) of the real responses from the Scorer's values at every position."""
    return values[real, 0], values[real + 1, 1:]


class Scorer:
    """SAKT asked, at every position of a run of windows, about the item that comes and about the typical items of
    each skill of the response before: (positions, values) with values (P(correct), then the mastery of each skill
    slot of the previous response, NaN where it has none)."""

    def __init__(self, model: SAKT, mv: ModelVocab, typical: np.ndarray, batch_size: int, device: torch.device):
        self.model, self.typical, self.batch_size, self.device = model.eval(), typical, batch_size, device
        self.mv = mv

    def __call__(self, t: dict[str, torch.Tensor]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n_k, n_typ = t["k_skill"].shape[-1], self.typical.shape[1]
        queries = _typical_queries(self.typical, self.mv, n_k)
        with torch.no_grad():
            for lo in range(0, len(t["score"]), self.batch_size):
                b = {k: v[lo : lo + self.batch_size] for k, v in t.items()}
                p = self._asked(b, queries, n_k, n_typ)
                n = len(b["score"])
                score, index = b["score"].numpy(), b["index"].numpy()
                after = score & (b["k_resp"].numpy() != START) & (b["k_resp"].numpy() >= 0)
                m = p[n:].reshape(n_k, n_typ, n, -1).mean(1)
                values = np.full((*score.shape, 1 + n_k), np.nan)
                values[..., 0] = p[:n]
                for j in range(n_k):
                    ok = after & (b["k_skill"][..., j].numpy() > 0)
                    values[..., 1 + j] = np.where(ok, m[j], np.nan)
                yield index[score], values[score]

    def _asked(self, b: dict, queries: dict, n_k: int, n_typ: int) -> np.ndarray:
        """P(correct) for the real query, then each typical item of each skill of the previous response."""
        q = {k: [b[k]] for k in ("q_item", "q_diff", "q_skill", "q_practice")}
        for j in range(n_k):
            practice_j = torch.zeros_like(b["q_practice"])
            practice_j[..., 0] = b["m_practice"][..., j]
            for m in range(n_typ):
                for k, table in queries.items():
                    q[k].append(table[b["k_skill"][..., j], m])
                q["q_practice"].append(practice_j)
        inputs = {k: b[k].repeat(1 + n_k * n_typ, *([1] * (b[k].dim() - 1))) for k in INPUTS if k.startswith("k_")}
        inputs |= {k: torch.cat(v) for k, v in q.items()}
        # batch_size windows a forward pass, not the 1 + K x typical copies at once: the same numbers, bit for bit,
        # in a tenth of the memory (one pass over 13 x 128 windows held 0.65 GB of activations)
        logits = [self.model({k: v[lo : lo + self.batch_size].to(self.device) for k, v in inputs.items()})
                  for lo in range(0, len(inputs["q_item"]), self.batch_size)]
        return torch.sigmoid(torch.cat(logits)).cpu().numpy()


def score_responses(model: SAKT, seqs: Sequences, mv: ModelVocab, typical: np.ndarray, batch_size: int = 128,
                    device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, mastery): per response of `seqs`, P(correct) from the responses before it, and (n, K)
    the mastery of each of its skills just after it (NaN where a response has no such skill)."""
    device = device or next(model.parameters()).device
    real, rows, windows = scoring_windows(seqs, mv, model.cfg.seq_len)
    [(_, values)] = in_fixed_runs([(None, rows, windows)], batch_size, Scorer(model, mv, typical, batch_size, device))
    return of_responses(values, real)


def _typical_queries(typical: np.ndarray, mv: ModelVocab, n_k: int) -> dict[str, torch.Tensor]:
    """Indexed by (model skill, m): the query inputs asking SAKT about the skill's m-th typical item, as an
    item of that skill alone (skill slots 1..K-1 empty)."""
    ok = typical >= 0
    safe = np.maximum(typical, 0)
    q_skill = np.zeros((*typical.shape, n_k), dtype=np.int64)
    q_skill[..., 0] = np.arange(len(typical))[:, None]
    return {"q_item": torch.as_tensor(np.where(ok, mv.item[safe], 0)), "q_diff": torch.as_tensor(np.where(ok, mv.diff[safe], 0)),
            "q_skill": torch.as_tensor(q_skill)}
