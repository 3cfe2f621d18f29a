"""Benchmark: our SAKT against pyKT's SAKT on the same pyKT files, split and settings, in one run.

Both train on the training folds of data/processed/pykt/train_valid_sequences.csv, early-stop on fold 0
(validation students) with the same patience, and are scored on test_sequences.csv's selected responses
(every test response but each student's first). pyKT's model is concept-level, called as
`model(concepts, responses, next_concepts)` with the loss over `smasks` positions, as pyKT trains it;
ours reads the same rows with item ids and skills. Throughput is training sequences per second with
2 CPU threads, measured for both here. Settings come from params.yaml (model, train).

    dvc repro pykt_adapt && python bench/sakt_vs_pykt.py
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from sklearn.metrics import roc_auc_score

from ktirt.early_stopping import EarlyStopping
from ktirt.kt.pykt_format import TEST, TRAIN_VALID, read_pykt_windows
from ktirt.kt.sequences import N_PRACTICE_CODES, practice_codes
from ktirt.kt.sakt_training import ModelVocab, TrainSettings, fit, predict
from ktirt.vocab import Vocabulary
from ktirt.models.sakt import SAKT, SAKTConfig
from ktirt.settings import ModelSettings

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench.sakt_vs_pykt")


def ours_tensors(w: dict, rows: np.ndarray, mv: ModelVocab, offset: int) -> dict:
    """A pyKT window as our (keys, queries): query p = position p+1, key p = the interaction at position p."""
    q, c, r, s = (w[k][rows] for k in ("questions", "concepts", "responses", "selectmasks"))
    item = np.where(q >= 0, mv.item[np.maximum(q, 0)], 0)
    diff = np.where(q >= 0, mv.diff[np.maximum(q, 0)], 0)
    skill = np.where(c >= 0, c + 1, 0)[..., None]  # pyKT's files carry one concept per response
    score = s[:, 1:] == 1
    index = offset + np.arange(score.size).reshape(score.shape)
    practice = _window_practice(c, r) if mv.practice else np.zeros_like(skill)
    t = {"k_item": item[:, :-1], "k_diff": diff[:, :-1], "k_skill": skill[:, :-1], "k_resp": r[:, :-1],
         "k_click": np.zeros_like(item[:, :-1]), "q_item": item[:, 1:], "q_diff": diff[:, 1:], "q_skill": skill[:, 1:],
         "q_practice": practice[:, 1:],
         "target": np.maximum(r[:, 1:], 0).astype(np.float32), "score": score, "index": np.where(score, index, -1)}
    return {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in t.items()}


def _window_practice(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Practice codes (+1; 0 = none) counted inside each pyKT window: the files hold no clickstream and a
    long history's later windows restart the counts, so ours reads a little less here than in the pipeline."""
    valid = c >= 0
    lengths = valid.sum(1)
    offsets = np.r_[0, np.cumsum(lengths)]
    codes = practice_codes(offsets, c[valid][:, None], np.maximum(r[valid], 0).astype(np.int8))[:, 0, 0]
    out = np.zeros(c.shape + (1,), dtype=np.int64)
    out[valid, 0] = codes + 1
    return out


def pykt_batches(w: dict, rows: np.ndarray):
    c, r, s = (torch.as_tensor(w[k][rows]) for k in ("concepts", "responses", "selectmasks"))
    mask = (c[:, :-1] != -1) & (c[:, 1:] != -1)
    return {"c": (c[:, :-1] * mask).long(), "r": (r[:, :-1] * mask).long(), "cshft": (c[:, 1:] * mask).long(),
            "rshft": (r[:, 1:] * mask).float(), "sm": (s[:, 1:] != -1) & (s[:, 1:] == 1) & mask}


def pykt_predict(model, b: dict, batch: int = 256) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, len(b["c"]), batch):
            p = model(b["c"][lo:lo + batch], b["r"][lo:lo + batch], b["cshft"][lo:lo + batch])
            out.append(p[b["sm"][lo:lo + batch]].numpy())
    return np.concatenate(out)


def train_pykt(num_c: int, tr: dict, va: dict, m: dict, s: TrainSettings):
    from pykt.models.sakt import SAKT as PyktSAKT

    torch.manual_seed(s.seed)
    model = PyktSAKT(num_c, m["seq_len"], m["emb_size"], m["num_heads"], m["dropout"], num_en=m["num_blocks"])
    opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    gen = torch.Generator().manual_seed(s.seed)
    stop, seconds, seen, epochs = EarlyStopping(s.patience, s.min_delta), 0.0, 0, 0
    y_val = va["rshft"][va["sm"]].numpy()
    for epoch in range(1, s.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(tr["c"]), generator=gen)
        for lo in range(0, len(order), s.batch_size):
            i = order[lo:lo + s.batch_size]
            p = model(tr["c"][i], tr["r"][i], tr["cshft"][i])
            sm = tr["sm"][i]
            loss = F.binary_cross_entropy(torch.masked_select(p, sm).double(), torch.masked_select(tr["rshft"][i], sm).double())
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds += time.perf_counter() - t0
        seen += len(order)
        epochs = epoch
        auc = roc_auc_score(y_val, pykt_predict(model, va))
        log.info("pyKT SAKT epoch %d: val AUC %.4f", epoch, auc)
        if stop.step(epoch, auc, model):
            break
    stop.restore(model)
    return model, stop.best_score, epochs, seen / seconds


@click.command()
@click.option("--pykt-dir", default="data/processed/pykt", show_default=True)
def main(pykt_dir: str) -> None:
    """Train our SAKT and pyKT's SAKT on the same pyKT files, split and settings, in one run: reads
    data/processed/pykt/ and params.yaml, prints both test AUCs and training throughputs."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    m, s = params["model"], TrainSettings(**{**params["train"], "device": "cpu"})
    ours_settings = ModelSettings.from_dict(m)
    torch.set_num_threads(s.threads)
    d = ROOT / pykt_dir
    vocab = Vocabulary.from_json(json.loads((d / "keyid2idx.json").read_text()))
    mv = ModelVocab.of(vocab, ours_settings)
    tv, te = read_pykt_windows(d / TRAIN_VALID), read_pykt_windows(d / TEST)
    if tv["questions"].shape[1] != m["seq_len"]:
        raise click.ClickException(f"pyKT files have maxlen {tv['questions'].shape[1]}, model.seq_len is {m['seq_len']}")
    train_rows, val_rows = np.flatnonzero(tv["fold"] > 0), np.flatnonzero(tv["fold"] == 0)
    test_rows = np.arange(len(te["fold"]))

    # ours
    torch.manual_seed(s.seed)
    ours = SAKT(SAKTConfig.of(ours_settings, n_items=mv.n_items, n_skills=mv.n_skills, n_diff=mv.n_diff,
                              n_practice=N_PRACTICE_CODES + 1, seq_len=m["seq_len"] - 1))
    o_tr, o_va = ours_tensors(tv, train_rows, mv, 0), ours_tensors(tv, val_rows, mv, 0)
    val_idx = o_va["index"][o_va["score"]].numpy()
    hist = fit(ours, o_tr, o_va, (val_idx, o_va["target"][o_va["score"]].numpy().astype(int)), s,
               ours_settings.item_prior)
    o_te = ours_tensors(te, test_rows, mv, 0)
    p_ours = predict(ours, o_te, o_te["score"].numel())[o_te["index"][o_te["score"]].numpy()]
    y_ours = o_te["target"][o_te["score"]].numpy()
    ours_auc, ours_tput = roc_auc_score(y_ours, p_ours), hist.examples_seen / hist.train_seconds

    # pyKT
    pk, best_val, pk_epochs, pk_tput = train_pykt(len(vocab.skills), pykt_batches(tv, train_rows), pykt_batches(tv, val_rows), m, s)
    pk_te = pykt_batches(te, test_rows)
    p_pk = pykt_predict(pk, pk_te)
    y_pk = pk_te["rshft"][pk_te["sm"]].numpy()
    assert len(y_pk) == len(y_ours) and (y_pk == y_ours).all(), "both models must be scored on the same responses"
    pk_auc = roc_auc_score(y_pk, p_pk)

    print(f"same pyKT files ({len(train_rows)} train / {len(val_rows)} val / {len(test_rows)} test windows of {m['seq_len']}), "
          f"emb {m['emb_size']}, heads {m['num_heads']}, blocks {m['num_blocks']}, dropout {m['dropout']}, batch {s.batch_size}, "
          f"lr {s.lr}, {s.threads} threads, {len(y_ours):,} test responses")
    print(f"{'':22}{'test AUC':>10}{'val AUC':>10}{'epochs':>8}{'train seq/s':>13}")
    print(f"{'ktirt SAKT':22}{ours_auc:10.4f}{hist.best_val_auc:10.4f}{len(hist.epoch):8d}{ours_tput:13.1f}")
    print(f"{'pyKT SAKT (concepts)':22}{pk_auc:10.4f}{best_val:10.4f}{pk_epochs:8d}{pk_tput:13.1f}")
    print(f"AUC gain {ours_auc - pk_auc:+.4f} (target >= +0.01); throughput ratio {ours_tput / pk_tput:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
