"""What the HTML report shows, gathered from the exports, the metrics and the plot tables into one JSON-ready dict.

Every item is kept (the item bank is the point of the page); students are sampled (`report.students`: the join
report's sample students first, then a seeded draw preferring test students), so the page stays small at
EDM-Cup scale. Numbers are rounded to what a reader can see, which also keeps the page's bytes stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ktirt.exports.join import sample_students
from ktirt.exports.trace import timeline
from ktirt.io import read_csv, read_json, read_parquet
from ktirt.irt.drift import drifting_item_ids
from ktirt.report.summary import PRED_COLUMNS, STATE_COLUMNS, LogSummary, summarize

HISTOGRAM_BINS = 20
"""bins of end-of-data mastery, over [0, 1]"""
CURVE_MIN_STUDENTS = 10
"""an attempt number enters a skill's learning curve when at least this many students reached it"""
DIFFICULTY_AXIS_BOUND = 6.0
"""logits: the item charts' difficulty axis stops here, so one extreme item cannot squash the others into a
column (a difficulty of 6 is a 0.25 % chance of a right answer at average ability); items beyond it are drawn
at the axis's edge, counted on the page, and listed with their value in the item table"""
WRITTEN_BY = {"prepare": "prepare", "sakt": "train_sakt", "wdirt": "train_wdirt", "join": "validate_join"}
"""the stage that writes metrics/<name>.json and plots/<name>/ (named in the error when one is unusable)"""


@dataclass
class ReportInputs:
    exports: Path
    metrics: Path
    plots: Path
    source: str

    def table(self, name: str, columns: list[str] | None = None, filters=None) -> pd.DataFrame:
        return read_parquet(self.exports / f"{name}.parquet", "export", columns=columns, filters=filters).to_pandas()

    def metric(self, name: str) -> dict:
        return read_json(self.metrics / f"{name}.json", WRITTEN_BY[name])

    def plot(self, rel: str, columns: tuple[str, ...]) -> pd.DataFrame:
        return read_csv(self.plots / rel, WRITTEN_BY[rel.split("/")[0]], columns)


def _r(values, digits: int = 4) -> list:
    """A column as a JSON list: rounded floats, None for missing."""
    s = pd.Series(values)
    if pd.api.types.is_float_dtype(s):
        s = s.astype(np.float64).round(digits)  # float32 would print as 0.6040999889373779
    return s.astype(object).where(s.notna(), None).tolist()


def _columns(df: pd.DataFrame, digits: int = 4) -> dict[str, list]:
    return {c: _r(df[c], digits) for c in df.columns}


def items_section(inputs: ReportInputs, p: pd.DataFrame) -> dict:
    """Every item with its health (`p`: item_params), and the drifting ones with their difficulty before and
    after the change."""
    flagged = drifting_item_ids(inputs.table("item_drift", ["item_id", "drift_flag"]))
    p = p.assign(skills=p["skill_ids"].map(lambda s: " ".join(s) if s is not None and len(s) else ""),
                 drifting=p["item_id"].isin(flagged))
    cols = ["item_id", "skills", "problem_type", "difficulty", "discrimination", "guessing", "difficulty_se",
            "n_responses", "drifting", "cold"]
    d = p[p["drift_start"].notna()].sort_values(["drift_start", "item_id"])
    drifting = pd.DataFrame({"item_id": d["item_id"], "skills": d["skills"], "before": d["difficulty"],
                             "after": d["difficulty_current"], "shift": d["difficulty_current"] - d["difficulty"],
                             "since": d["drift_start"].dt.strftime("%Y-%m-%d"), "n_responses": d["n_responses"]})
    return {"items": _columns(p[cols].fillna({"problem_type": ""}), 3), "drifting": _columns(drifting, 3),
            "item_axis": difficulty_axis(p[["difficulty"]]), "drift_axis": difficulty_axis(drifting[["before", "after"]])}


def difficulty_axis(values: pd.DataFrame, bound: float = DIFFICULTY_AXIS_BOUND) -> dict:
    """A difficulty chart's x domain, whole logits spanning the values but never past +-`bound`, and how many
    rows (items) have a value beyond it: the page draws those at the edge and says how many there are."""
    v = values.to_numpy(np.float64)
    finite = v[np.isfinite(v)]
    lo, hi = (float(np.floor(finite.min())), float(np.ceil(finite.max()))) if finite.size else (-1.0, 1.0)
    lo = min(max(lo, -bound), bound - 1)
    hi = max(min(hi, bound), lo + 1)  # at least one logit wide, inside the bound
    outside = int((np.abs(np.nan_to_num(v)) > bound).any(axis=1).sum()) if v.size else 0
    return {"domain": [lo, hi], "outside": outside, "bound": bound}


def skills_section(summary: LogSummary, skills: pd.DataFrame, items: pd.DataFrame) -> list[dict]:
    """Per skill: the spread of end-of-data mastery over students, and the mean mastery and observed accuracy
    by attempt number (a learning curve)."""
    drifting = items.assign(skill=items["skills"].str.split()).explode("skill").groupby("skill")["drifting"].sum()
    out = []
    for r in skills.itertuples():
        m = summary.last_of(r.skill_id)
        c = summary.curve_of(r.skill_id)
        c = c[c["students"] >= CURVE_MIN_STUDENTS].reset_index(drop=True)
        hist = np.histogram(m, bins=HISTOGRAM_BINS, range=(0.0, 1.0))[0] if len(m) else np.zeros(HISTOGRAM_BINS, int)
        q = np.quantile(m, [0.1, 0.25, 0.5, 0.75, 0.9]).round(4).tolist() if len(m) else [None] * 5
        # a source without any description (EdNet KT1) reads back as an all-NaN column: NaN is not JSON
        out.append({"skill_id": r.skill_id, "description": r.description if isinstance(r.description, str) else "",
                    "n_items": int(r.n_items),
                    "students": int(len(m)), "mean_final": round(float(m.mean()), 4) if len(m) else None,
                    "quantiles": q, "histogram": hist.tolist(), "drifting_items": int(drifting.get(r.skill_id, 0)),
                    "curve": _columns(c.rename(columns={"n_attempts": "attempt"}), 4)})
    return out


def pick_students(users: pd.DataFrame, n: int, samples: int, seed: int) -> list[str]:
    """The join report's sample students, then a seeded draw of test students (then of any split when too few).
    `users`: every student once, with their split."""
    out = sample_students(users["user_id"].to_numpy(), samples, seed)[:n]
    rng = np.random.default_rng(seed)
    for pool in (users.loc[users["split"] == "test", "user_id"], users["user_id"]):
        taken = set(out)
        left = [u for u in np.sort(pool.to_numpy().astype(str)) if u not in taken]
        take = min(n - len(out), len(left))
        if take > 0:
            out += [left[i] for i in sorted(rng.choice(len(left), take, replace=False))]
    return out


def students_section(rows: pd.DataFrame, pred: pd.DataFrame, chosen: list[str], samples: int, clock: bool = True) -> dict:
    """Each chosen student's timeline (the `demo_trace` view over all their skills): one row per response and skill
    it carries, `response` numbering the student's responses. Without clock time in the source (ASSISTments 2009:
    pseudo-timestamps that only order the rows) no time is shown, rather than dates in 1970."""
    counts = pred.groupby("user_id").size()
    split = pred.drop_duplicates("user_id").set_index("user_id")["split"]
    rows = rows[rows["user_id"].isin(chosen)]
    out = {}
    for user, g in rows.groupby("user_id", sort=True):
        g = g.assign(time=g["timestamp"].dt.strftime("%Y-%m-%d %H:%M") if clock else "",
                     response=g.groupby(["timestamp", "item_id"], sort=False).ngroup() + 1, correct=g["correct"].astype("Int8"))
        out[user] = _columns(g[["response", "time", "item_id", "skill_id", "correct", "predicted", "mastery", "n_attempts",
                                "difficulty", "drift"]], 3)
    return {"order": chosen, "samples": chosen[:samples],
            "info": {u: {"split": str(split.get(u, "")), "responses": int(counts.get(u, 0))} for u in chosen},
            "timelines": out}


ENGINE_FIGURES = [
    ("SAKT", "test AUC (next response)", "sakt", "test_auc", ("item mean", "item_mean_auc"), ("oracle", "oracle_auc")),
    ("WD-IRT", "in-unit AUC (next response)", "wdirt", "in_unit_auc", ("item mean", "in_unit_item_mean_auc"),
     ("oracle", "in_unit_oracle_auc")),
    ("WD-IRT", "unit-test AUC", "wdirt", "unit_test_auc", ("item mean", "unit_test_item_mean_auc"),
     ("oracle", "unit_test_oracle_auc")),
    ("WD-IRT", "difficulty recovery (Spearman)", "wdirt", "difficulty_spearman", None,
     ("same data, true abilities", "difficulty_spearman_ceiling")),
    ("WD-IRT", "drift precision", "wdirt", "drift_precision", None, ("same test, true P(correct)", "drift_ceiling_precision")),
    ("WD-IRT", "drift recall", "wdirt", "drift_recall", None, ("same test, true P(correct)", "drift_ceiling_recall")),
]
"""engine, figure, metrics file, key, (floor name, key), (ceiling name, key): a figure is shown when its key exists
(on real data there is no oracle; without unit tests no unit-test AUC)"""


def run_section(inputs: ReportInputs, clock: bool) -> dict:
    """Counts, each engine's figures between floor and ceiling, and join coverage; `clock`: whether the events'
    timestamps are clock time (ktirt.events.has_clock_time, the rule demo_trace follows too)."""
    prep, join = inputs.metric("prepare"), inputs.metric("join")
    metrics = {"sakt": inputs.metric("sakt"), "wdirt": inputs.metric("wdirt")}
    figures = []
    for engine, name, stage, key, floor, ceiling in ENGINE_FIGURES:
        m = metrics[stage]
        if key not in m:
            continue
        figures.append({"engine": engine, "figure": name, "value": m[key],
                        "floor": m.get(floor[1]) if floor else None, "floor_name": floor[0] if floor else "",
                        "ceiling": m.get(ceiling[1]), "ceiling_name": ceiling[0] if ceiling[1] in m else ""})
    counts = {k: prep[k] for k in ("events", "users", "items", "skills") if k in prep}
    counts |= {"test responses": metrics["sakt"].get("test_responses"), "drifting items": metrics["wdirt"].get("drift_flagged_items")}
    return {"source": inputs.source, "has_timestamps": clock, "counts": counts, "figures": figures,
            "join": {k: join[k] for k in ("coverage", "drift_coverage", "user_coverage", "schema_mismatches") if k in join}}


def quality_section(inputs: ReportInputs) -> dict:
    roc = inputs.plot("sakt/roc.csv", ("fpr", "tpr"))
    cal = inputs.plot("sakt/calibration.csv", ("predicted", "observed"))
    slices = inputs.table("behavior_slices")
    return {"roc": _columns(roc[["fpr", "tpr"]], 4), "calibration": _columns(cal[["predicted", "observed"]], 4),
            "slices": _columns(slices, 4)}


def report_data(inputs: ReportInputs, n_students: int, samples: int, seed: int) -> dict:
    """Everything the page shows; `samples` and `seed` are the join report's, so its sample students come first.
    The per-response exports are read once, a batch of students at a time (ktirt.report.summary), then only the
    chosen students' rows."""
    skills, params = inputs.table("skills"), inputs.table("item_params")
    summary = summarize(inputs.exports, skills["skill_id"])
    items = items_section(inputs, params)
    chosen = pick_students(summary.students(), n_students, samples, seed)
    theirs = [("user_id", "in", chosen)]
    pred = inputs.table("sakt_predictions", PRED_COLUMNS, theirs)
    mine = inputs.table("sakt_student_state", STATE_COLUMNS, theirs)
    rows = timeline(mine, pred, params[["item_id", "difficulty", "difficulty_current", "drift_start"]])
    run = run_section(inputs, summary.clock)
    return {"run": run, **items,
            "skills": skills_section(summary, skills, pd.DataFrame(items["items"])),
            "students": students_section(rows, pred, chosen, min(samples, len(chosen)), run["has_timestamps"]),
            "quality": quality_section(inputs)}
