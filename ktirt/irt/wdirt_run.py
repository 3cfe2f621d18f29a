"""One Wide & Deep IRT experiment: targets with their histories -> fit on training students -> abilities for
every response -> item parameters (with standard errors), drift, and metrics beside the item-mean floor and,
on simulated data, the oracle and the true item parameters."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from ktirt.early_stopping import EarlyStopping, EpochCallback
from ktirt.features.history import (N_CONTEXTS, N_STATIC, N_SUMMARY, SUMMARY_LOG_SKILL_EVENTS, EventTable, history_end,
                                    history_summary, history_window, pair_context, residual_values, skill_prefix_sums,
                                    static_features, text_matrix, user_starts)
from ktirt.io import atomic_path, write_csv, write_parquet
from ktirt.irt.calibration import align_theta, calibrate_items
from ktirt.irt.drift import (NO_CHANGE, DriftSettings, change_points, difficulty_information, drift_table,
                             fit_difficulty)
from ktirt.irt.plot_tables import (PLOT_COLUMNS, TRUE_REFERENCE, drift_plot_table, event_coverage,
                                   observed_difficulty_plot)
from ktirt.kt.evaluation import binary_metrics, mean_baseline, require_both_outcomes
from ktirt.kt.sequences import SPLITS, split_labels
from ktirt.kt.vocab import NO_SKILL, padded_index, skill_lists
from ktirt.models.wdirt import GUESSABLE_TYPES, WDIRTConfig, WideDeepIRT
from ktirt.runtime import resolve_device, seed_everything
from ktirt.settings import WDIRTSettings  # the wdirt section of params.yaml
from ktirt.timings import Phases

log = logging.getLogger(__name__)
MIN_RESPONSES_FOR_RECOVERY = 20
EVENT_PREDICTIONS = "event_predictions.parquet"
CHUNK = 32
"""training batches are shuffled runs of this many neighbouring targets (chunked_order)"""


@dataclass
class Targets:
    """Responses to predict: item, skills, time, outcome, split and history (n, H) event indices."""

    kind: np.ndarray  # 0 = in-unit event, 1 = unit-test score
    student: np.ndarray  # student index (event users by rank, then users seen only in unit tests)
    item: np.ndarray
    skill: np.ndarray
    """the item's first skill (the mean baselines' fallback)"""
    skills: np.ndarray
    """(n, K) all of the item's skills, -1 padded"""
    timestamp_ms: np.ndarray
    y: np.ndarray
    split: np.ndarray
    history: np.ndarray
    summary: np.ndarray
    """(n, N_SUMMARY) whole-history summary (history_summary)"""
    source_row: np.ndarray  # row in events.parquet / unit_tests.parquet


@dataclass
class WDIRTResult:
    model: WideDeepIRT
    item_params: pd.DataFrame
    drift: pd.DataFrame
    metrics: dict
    history: pd.DataFrame
    difficulty_plot: pd.DataFrame
    drift_plot: pd.DataFrame
    theta: np.ndarray = field(repr=False)
    item_bank: WideDeepIRT | None = field(default=None, repr=False)
    """the wide part calibrated on every student's responses: what item_params holds (not saved; `model`,
    calibrated on training students only, is what predicts)"""
    event_predictions: pa.Table | None = field(default=None, repr=False)
    """per event of events.parquet, in its order: user_id, item_id, timestamp, theta, predicted"""
    timings: dict = field(default_factory=dict)
    """seconds: for the log and `logs/`, never the tracked metrics (ktirt/timings.py)"""

    def save(self, model_dir: str | Path, plots_dir: str | Path) -> None:
        model_dir = Path(model_dir)
        with atomic_path(model_dir / "model.pt") as tmp:
            torch.save({"state_dict": self.model.state_dict(), "config": self.model.cfg.to_dict()}, tmp)
        write_parquet(pa.Table.from_pandas(self.item_params, preserve_index=False), model_dir / "item_params.parquet")
        write_parquet(pa.Table.from_pandas(self.drift, preserve_index=False), model_dir / "item_drift.parquet")
        if self.event_predictions is not None:
            write_parquet(self.event_predictions, model_dir / EVENT_PREDICTIONS)
        for name, df in (("difficulty", self.difficulty_plot), ("drift", self.drift_plot)):  # training: DVCLive
            write_csv(df, Path(plots_dir) / f"{name}.csv")


class Catalog:
    """Every item of the events and unit tests, with its skills, type and text embedding."""

    def __init__(self, events: pa.Table, unit_tests: pa.Table, types: dict[str, str], text):
        ids = pa.concat_arrays([events["item_id"].combine_chunks(), unit_tests["item_id"].combine_chunks()])
        lists = pa.concat_arrays([skill_lists(events["skill_ids"]), skill_lists(unit_tests["skill_ids"])])
        codes, seen = pd.factorize(ids.to_numpy(zero_copy_only=False))  # hashing: fast on millions of rows
        order = np.argsort(seen, kind="stable")
        items, first = seen[order], np.unique(codes, return_index=True)[1][order]  # sorted ids, each one's first row
        self.items = items.tolist()
        self.item_skill_lists = lists.take(pa.array(first)).to_pylist()
        """each item's skill codes, in the source's order; the first is its `skill_id` in item_params"""
        self.item_skill_name = np.array([codes[0] for codes in self.item_skill_lists], dtype=object)
        self.skills = sorted({c for codes in self.item_skill_lists for c in codes} | {NO_SKILL})
        skill_set = pa.array(self.skills, pa.string())
        self.item_skills = padded_index(lists.take(pa.array(first)), lambda flat: pc.index_in(
            flat, value_set=skill_set).to_numpy(zero_copy_only=False), dtype=np.int32)
        """(n_items, K) skill indices, -1 after an item's last"""
        self.item_skill = self.item_skills[:, 0]
        """the first skill's index: the mean baselines' fallback for an item no training student answered"""
        pairs = events.select(["item_id", "problem_type"]).to_pandas().drop_duplicates("item_id")
        ev_types = dict(zip(pairs["item_id"], pairs["problem_type"]))
        self.types = [ev_types.get(i) or types.get(i) for i in self.items]
        self.guessable = np.array([t in GUESSABLE_TYPES for t in self.types])
        self.text = text_matrix(self.items, text)

    def skill_ids(self) -> list[list[str]]:
        """Each item's skill codes as item_params holds them (none for an item without one)."""
        return [[] if codes == [NO_SKILL] else codes for codes in self.item_skill_lists]

    def index(self, ids: pa.ChunkedArray) -> np.ndarray:
        return pc.index_in(ids, value_set=pa.array(self.items, pa.string())).to_numpy(zero_copy_only=False).astype(np.int64)


def build_targets(events: pa.Table, unit_tests: pa.Table, split: dict, cat: Catalog, H: int) -> tuple[EventTable, Targets]:
    users = events["user_id"].to_numpy(zero_copy_only=False)
    first = np.r_[True, users[1:] != users[:-1]]
    user_rank = np.cumsum(first) - 1
    distinct = users[first]
    labels = split_labels(distinct, split)
    ts = events["timestamp"].cast(pa.int64()).to_numpy()
    item = cat.index(events["item_id"])
    train_rows = np.flatnonzero(labels[user_rank] == 0)
    ev = EventTable(user_rank, ts, item, cat.item_skills[item], events["correct"].to_numpy().astype(np.float32),
                    static_features(events, item, train_rows), user_starts(user_rank))

    scored = unit_tests.filter(pc.is_valid(unit_tests["correct"]))
    ut_rank = pc.index_in(scored["user_id"], value_set=pa.array(distinct, pa.string())).fill_null(-1).to_numpy(zero_copy_only=False)
    ut_ts = scored["timestamp"].cast(pa.int64()).to_numpy()
    ut_label = np.full(len(ut_rank), -1)
    for k, name in enumerate(SPLITS):
        ut_label[np.asarray(pc.is_in(scored["user_id"], value_set=pa.array(split[name], pa.string())))] = k
    has_events = ut_rank >= 0
    ut_end = np.where(has_events, history_end(ev, np.maximum(ut_rank, 0), ut_ts), 0)
    user_first_idx = np.r_[np.flatnonzero(first), len(users)]
    ut_first = np.where(has_events, user_first_idx[np.maximum(ut_rank, 0)], 0)
    ut_item = cat.index(scored["item_id"])
    test_only = pd.factorize(scored["user_id"].to_numpy(zero_copy_only=False)[~has_events])[0]
    ut_student = ut_rank.copy()
    ut_student[~has_events] = len(distinct) + test_only

    ev_end = history_end(ev, user_rank, ts)
    hist = np.concatenate([history_window(ev, ev_end, ev.user_start, H), history_window(ev, ut_end, ut_first, H)])
    vals = residual_values(ev)
    ev_skill_sums = skill_prefix_sums(ev, vals, user_rank, ev.skills, ts)
    ut_skill_sums = skill_prefix_sums(ev, vals, np.maximum(ut_rank, 0), cat.item_skills[ut_item], ut_ts) * has_events[:, None]
    summary = np.r_[history_summary(ev, ev_end, ev.user_start, ev_skill_sums), history_summary(ev, ut_end, ut_first, ut_skill_sums)]
    t = Targets(
        kind=np.r_[np.zeros(len(item), np.int8), np.ones(len(ut_item), np.int8)],
        student=np.r_[user_rank, ut_student],
        item=np.r_[item, ut_item],
        skill=cat.item_skill[np.r_[item, ut_item]],
        skills=cat.item_skills[np.r_[item, ut_item]],
        timestamp_ms=np.r_[ts, ut_ts],
        y=np.r_[ev.correct, scored["correct"].to_numpy().astype(np.float32)],
        split=np.r_[labels[user_rank], ut_label],
        history=hist,
        summary=summary,
        source_row=np.r_[np.arange(len(item)), np.flatnonzero(np.asarray(pc.is_valid(unit_tests["correct"])))],
    )
    return ev, t


class Batcher:
    """Turns target indices into model inputs; all arrays live as torch tensors once."""

    def __init__(self, ev: EventTable, t: Targets, device):
        self.device = device
        self.static = torch.as_tensor(ev.static)
        self.summary = torch.as_tensor(t.summary)
        self.ev_item = torch.as_tensor(ev.item)
        self.ev_skills = torch.as_tensor(ev.skills)
        self.ev_ts = torch.as_tensor(np.array(ev.timestamp_ms))
        self.hist = torch.as_tensor(t.history)
        self.item = torch.as_tensor(t.item)
        self.skills = torch.as_tensor(t.skills)
        self.ts = torch.as_tensor(t.timestamp_ms)
        self.y = torch.as_tensor(t.y)

    def __call__(self, idx: torch.Tensor):
        """Model inputs of targets `idx`: the distinct events of their histories once (neighbouring targets of
        one student share most of theirs), each history slot's row among them and its context code."""
        h = self.hist[idx]
        mask = h >= 0
        events, local = torch.unique(h.clamp(min=0), return_inverse=True)
        context = pair_context(h, self.ts[idx], self.item[idx], self.skills[idx], self.ev_ts, self.ev_item, self.ev_skills)
        d = self.device
        inputs = (self.static[events], self.ev_item[events], local, context, mask, self.summary[idx])
        return tuple(x.to(d) for x in inputs), self.item[idx].to(d), self.y[idx].to(d)


def chunked_order(rows: np.ndarray, chunk: int, gen: torch.Generator) -> torch.Tensor:
    """`rows` (targets in student and time order) cut into runs of `chunk` neighbours, the runs shuffled: a
    batch still mixes many students, and its targets share most of their history events (Batcher)."""
    starts = np.arange(0, len(rows), chunk)
    shuffled = starts[torch.randperm(len(starts), generator=gen).numpy()]
    return torch.as_tensor(np.concatenate([rows[s : s + chunk] for s in shuffled]) if len(rows) else rows)


def _theta_all(model: WideDeepIRT, batcher: Batcher, n: int, batch: int) -> np.ndarray:
    model.eval()
    out = np.empty(n, dtype=np.float32)
    with torch.no_grad():
        for lo in range(0, n, batch):
            idx = torch.arange(lo, min(n, lo + batch))
            inputs, _, _ = batcher(idx)
            out[lo : lo + len(idx)] = model.theta(*inputs).cpu().numpy()
    return out


def _probabilities(model: WideDeepIRT, theta: np.ndarray, item: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.probability(torch.as_tensor(theta), torch.as_tensor(item)).numpy()


def fit_wdirt(model: WideDeepIRT, batcher: Batcher, t: Targets, s: WDIRTSettings, on_epoch: EpochCallback | None = None):
    train = np.flatnonzero(t.split == 0)
    val = np.flatnonzero((t.split == 1) & (t.kind == 0))
    gen = torch.Generator().manual_seed(s.seed)
    wide = [model.skill_difficulty, model.item_offset, model.item_log_discrimination, model.item_guess_logit]
    deep = [p for p in model.parameters() if all(p is not w for w in wide)]
    # the per-item parameters each see a small share of every batch: they get a larger step
    opt = torch.optim.Adam([{"params": deep, "lr": s.lr}, {"params": wide, "lr": s.lr * s.wide_lr_factor}])
    hist = {"epoch": [], "train_loss": [], "val_auc": []}
    stop, seconds = EarlyStopping(s.patience), 0.0
    for epoch in range(1, s.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = chunked_order(train, CHUNK, gen)
        total = 0.0
        for lo in tqdm(range(0, len(order), s.batch_size), desc=f"epoch {epoch}", leave=False, mininterval=5, disable=None):
            idx = order[lo : lo + s.batch_size]
            inputs, item, y = batcher(idx)
            p = model.probability(model.theta(*inputs), item).clamp(1e-6, 1 - 1e-6)
            loss = F.binary_cross_entropy(p, y) + model.prior_penalty(s.prior_strength) / len(train)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        seconds += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            pv = []
            for lo in range(0, len(val), 4096):
                inputs, item, _ = batcher(torch.as_tensor(val[lo : lo + 4096]))
                pv.append(model.probability(model.theta(*inputs), item).cpu().numpy())
        auc = float(roc_auc_score(t.y[val], np.concatenate(pv)))
        hist["epoch"].append(epoch)
        hist["train_loss"].append(round(total / len(train), 5))
        hist["val_auc"].append(round(auc, 5))
        if on_epoch:
            on_epoch(epoch, {"train_loss": hist["train_loss"][-1], "val_auc": hist["val_auc"][-1]})
        log.info("epoch %d: train loss %.4f, val AUC %.4f (%.1f s)", epoch, total / len(train), auc, time.perf_counter() - t0)
        if stop.step(epoch, auc, model):
            break
    stop.restore(model)
    return pd.DataFrame(hist), stop, seconds


def run_wdirt(events: pa.Table, unit_tests: pa.Table, split: dict, s: WDIRTSettings, types: dict[str, str] | None = None,
              text=None, truth: Path | None = None, on_epoch: EpochCallback | None = None) -> WDIRTResult:
    seed_everything(s.seed, s.threads)
    device = resolve_device(s.device)
    phase = Phases("WD-IRT")
    with phase("features"):
        cat = Catalog(events, unit_tests, types or {}, text)
        ev, t = build_targets(events, unit_tests, split, cat, s.history_len)
    cfg = WDIRTConfig(n_items=len(cat.items), n_skills=len(cat.skills), n_features=N_STATIC, n_contexts=N_CONTEXTS,
                      n_summary=N_SUMMARY,
                      text_dim=cat.text.shape[1], hidden=s.hidden, dropout=s.dropout, discrimination=s.discrimination)
    model = WideDeepIRT(cfg, torch.as_tensor(cat.item_skills), torch.as_tensor(cat.guessable), torch.as_tensor(cat.text)).to(device)
    batcher = Batcher(ev, t, device)
    log.info("WD-IRT: %d items, %d skills, %d targets (%d unit-test scores), history %d; device %s",
             len(cat.items), len(cat.skills), len(t.y), int(t.kind.sum()), s.history_len, device)
    _require_both_outcomes(t)
    with phase("train"):
        history, stop, seconds = fit_wdirt(model, batcher, t, s, on_epoch)
    model = model.cpu()
    batcher.device = torch.device("cpu")
    with phase("theta"):
        theta = _theta_all(model, batcher, len(t.y), 8192)
    items_in_events = int(len(np.unique(ev.item)))
    # done with the histories (targets x history_len event indices: 2.2 GB at EDM-Cup scale) and the event
    # features: let them go before the two calibrations and drift, which need memory of their own
    del batcher, ev
    t.history = np.empty((0, s.history_len), dtype=t.history.dtype)
    # the predictive model: its wide part calibrated on training students only, its deep theta mapped onto it
    train = t.split == 0
    log_opportunity = t.summary[:, SUMMARY_LOG_SKILL_EVENTS]
    with phase("calibration"):
        calibrate_items(model, t.student[train], log_opportunity[train], t.item[train], t.y[train], s.prior_strength)
        scale, shift = align_theta(model, theta[train], t.item[train], t.y[train])
    theta = scale * theta + shift
    p = _probabilities(model, theta, t.item)

    ds = DriftSettings.of(s)
    inunit = t.kind == 0
    it = t.item[inunit]
    model_b, model_a, model_c = _wide_values(model)
    with phase("drift"):
        drift = drift_table(it, t.timestamp_ms[inunit], t.y[inunit].astype(np.float64), theta[inunit].astype(np.float64),
                            model_a[it], model_b[it], model_c[it], ds)
        change = change_points(drift, len(cat.items))
    drift.insert(0, "item_id", np.asarray(cat.items, dtype=object)[drift.pop("item").to_numpy()])

    # the published item bank: every student's responses, drifted items split at their change
    bank = copy.deepcopy(model)
    after = t.timestamp_ms >= change[t.item]
    with phase("item_bank"):
        curves = calibrate_items(bank, t.student, log_opportunity, t.item, t.y, s.prior_strength, after_change=after)
    ability = curves.ability(t.student, log_opportunity)
    b, a, c = _wide_values(bank)
    n_responses = np.bincount(t.item, minlength=len(cat.items))
    se = _difficulty_se(t.item[~after], ability[~after], a, b, c, len(cat.items), s.prior_strength)
    changed = change != NO_CHANGE
    params = pd.DataFrame({
        "item_id": cat.items, "skill_id": cat.item_skill_name, "skill_ids": cat.skill_ids(), "difficulty": b, "discrimination": a, "guessing": c,
        "difficulty_se": se, "n_responses": n_responses, "cold": n_responses == 0, "problem_type": cat.types,
        "difficulty_current": b + np.where(changed, curves.difficulty_shift, 0.0),
        "drift_start": pd.to_datetime(np.where(changed, change, 0), unit="ms", utc=True).where(changed).astype("datetime64[ms, UTC]"),
    })

    n_scores = int(t.kind.sum())
    if not n_scores:
        log.info("no unit-test scores in this source: WD-IRT fits on in-unit responses only (no unit-test AUC)")
    metrics = {"val_auc": round(stop.best_score, 6), "unit_test_scores": n_scores, "has_text_embeddings": int(text is not None)}
    metrics |= _auc_block(t, p, "in_unit", 0)
    metrics |= _auc_block(t, p, "unit_test", 1)
    metrics |= {
        "items": len(cat.items), "items_cold": int((n_responses == 0).sum()),
        "items_in_events": items_in_events, "item_coverage_of_events": event_coverage(events["item_id"], params),
        "drift_windows_tested": int(drift["z"].notna().sum()),
        "drift_windows_too_few_responses": int(drift["z"].isna().sum()),
        "drift_flagged_items": int(drift.loc[drift["drift_flag"], "item_id"].nunique()),
        "best_epoch": stop.best_epoch, "epochs": len(history),
    }
    diff_plot = observed_difficulty_plot(params, t.item, t.y)
    if truth is not None:
        with phase("against_truth"):
            extra, diff_plot = _against_truth(events, unit_tests, t, p, theta, ability, params, model_b, drift, ds, truth)
        metrics |= extra
    drift_plot = drift_plot_table(drift, ds)
    event_predictions = events.select(["user_id", "item_id", "timestamp"]).append_column(
        "theta", pa.array(theta[inunit], pa.float32())).append_column("predicted", pa.array(p[inunit], pa.float32()))
    return WDIRTResult(model, params, drift, metrics, history, diff_plot, drift_plot, theta, bank, event_predictions,
                       phase.seconds | {"train_seconds": round(seconds, 2),
                                        "train_targets_per_s": round(len(history) * int((t.split == 0).sum()) / max(seconds, 1e-9), 1)})


def _require_both_outcomes(t: Targets) -> None:
    """Validation and test AUCs are defined: each split's responses hold both outcomes."""
    require_both_outcomes(t.y[(t.split == 1) & (t.kind == 0)], "validation", "in-unit responses")
    require_both_outcomes(t.y[(t.split == 2) & (t.kind == 0)], "test", "in-unit responses")
    if ((t.split == 2) & (t.kind == 1)).any():
        require_both_outcomes(t.y[(t.split == 2) & (t.kind == 1)], "test", "unit-test scores", "unit_tests.parquet")


def _wide_values(model: WideDeepIRT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: difficulty, discrimination and guessing floor, as float64 arrays."""
    with torch.no_grad():
        return tuple(f().numpy().astype(np.float64) for f in (model.difficulty, model.discrimination, model.guessing))


def _difficulty_se(item, theta, a, b, c, n_items, strength) -> np.ndarray:
    """Standard error of each difficulty from the Fisher information of its training responses (plus the prior)."""
    info, _ = difficulty_information(item, n_items, theta, a[item], b[item], c[item])
    return 1 / np.sqrt(info + strength)


def _auc_block(t: Targets, p: np.ndarray, name: str, kind: int) -> dict:
    test = (t.split == 2) & (t.kind == kind)
    train = (t.split == 0) & (t.kind == kind)
    if not test.any() or not train.any():
        return {}
    y = t.y[test]
    overall = t.y[train].mean()
    skill_p = mean_baseline(t.skill[train], t.y[train], t.skill[test], overall)
    item_p = mean_baseline(t.item[train], t.y[train], t.item[test], skill_p)
    return {f"{name}_auc": round(binary_metrics(y, p[test])["auc"], 6),
            f"{name}_item_mean_auc": round(binary_metrics(y, item_p)["auc"], 6),
            f"{name}_test_responses": int(test.sum())}


def _against_truth(events, unit_tests, t: Targets, p, theta, calibrated_ability, params: pd.DataFrame,
                   model_difficulty: np.ndarray, drift: pd.DataFrame, ds: DriftSettings, truth: Path):
    """Recovery and drift detection against the simulator's truth, each beside its ceiling: the same
    estimator given the true abilities, item parameters and drifts (what no model of these responses can beat).
    `params` is the item bank; `model_difficulty` the predictive model's (training students only)."""
    from ktirt.truth import event_probabilities, target_item_truth, unit_test_probabilities

    out = {}
    # targets are the events in order, then the scored unit-test rows in order
    oracle = np.r_[event_probabilities(events, truth), unit_test_probabilities(unit_tests, truth)]
    for name, kind in (("in_unit", 0), ("unit_test", 1)):
        test = (t.split == 2) & (t.kind == kind) & np.isfinite(oracle)
        if test.any():
            out[f"{name}_oracle_auc"] = round(float(roc_auc_score(t.y[test], oracle[test])), 6)
    true = pd.read_parquet(truth / "items.parquet").set_index("item_id")
    m = params.merge(true, left_on="item_id", right_index=True, suffixes=("", "_true"), how="inner")
    plot = m.assign(reference=m["difficulty_true"], reference_kind=TRUE_REFERENCE)[list(PLOT_COLUMNS)].round(4)
    warm = m[m["n_responses"] >= MIN_RESPONSES_FOR_RECOVERY]
    for label, df in (("", warm), ("_all", m)):
        if len(df) > 2:
            out[f"difficulty_spearman{label}"] = round(float(spearmanr(df["difficulty"], df["difficulty_true"])[0]), 6)
            out[f"difficulty_pearson{label}"] = round(float(pearsonr(df["difficulty"], df["difficulty_true"])[0]), 6)
    w = params["item_id"].isin(warm["item_id"]).to_numpy()
    irt = "discrimination" in true.columns  # the skill_builder world's truth is BKT: no IRT parameters or drifts
    if len(warm) > 2:
        if irt:
            out["discrimination_pearson"] = round(float(pearsonr(warm["discrimination"], warm["discrimination_true"])[0]), 6)
            g = warm[warm["guessing_true"] > 0]
            if len(g):
                out["guessing_mae"] = round(float((g["guessing"] - g["guessing_true"]).abs().mean()), 6)
        out["model_difficulty_spearman"] = round(float(spearmanr(model_difficulty[w], true["difficulty"].reindex(params["item_id"][w]))[0]), 6)
    out["recovery_items"] = len(warm)
    if not irt:
        return out, plot

    tt = target_item_truth(events, unit_tests, truth)
    ok = tt["ability"].notna().to_numpy()
    ability, a, b, c = (tt[k].to_numpy() for k in ("ability", "discrimination", "difficulty", "guessing"))
    # how well each ability tracks the true one: the deep part's (one-sided) and calibration's (whole history)
    out["theta_true_pearson"] = round(float(pearsonr(theta[ok], ability[ok])[0]), 6)
    out["calibration_ability_true_pearson"] = round(float(pearsonr(calibrated_ability[ok], ability[ok])[0]), 6)
    if len(warm) > 2 and ok.any():
        # ceiling of recovery: each item's difficulty before any drift, fitted to the same responses given the
        # true abilities, discriminations, guessing floors and drifts (a drift's shift moves the ability instead)
        drifted = (tt["difficulty_effective"] - tt["difficulty"]).to_numpy()
        b_ceiling, _ = fit_difficulty(t.item[ok], len(params), t.y[ok].astype(np.float64), ability[ok] - drifted[ok],
                                      a[ok], c[ok], np.zeros(len(params)), iters=30)
        out["difficulty_spearman_ceiling"] = round(float(spearmanr(b_ceiling[w], true["difficulty"].reindex(params["item_id"][w]))[0]), 6)

    seen = set(pd.unique(events["item_id"].to_numpy(zero_copy_only=False)))
    true_drift = set(true.index[true["drift"]]) & seen
    flagged = set(drift.loc[drift["drift_flag"], "item_id"])
    out["drift_true_items"] = len(true_drift)
    out |= _precision_recall("drift", flagged, true_drift)
    inunit = (t.kind == 0) & ok
    if inunit.any():
        # ceiling of detection: the same test with the true abilities and item parameters
        dt = drift_table(t.item[inunit], t.timestamp_ms[inunit], t.y[inunit].astype(np.float64), ability[inunit],
                         a[inunit], b[inunit], c[inunit], ds)
        ids = params["item_id"].to_numpy()
        out |= _precision_recall("drift_ceiling", set(ids[dt.loc[dt["drift_flag"], "item"].to_numpy()]), true_drift)
    return out, plot


def _precision_recall(name: str, flagged: set, true: set) -> dict:
    hits = len(flagged & true)
    return {f"{name}_precision": round(hits / len(flagged), 6) if flagged else 0.0,
            f"{name}_recall": round(hits / len(true), 6) if true else 0.0}
