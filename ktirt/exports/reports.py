"""The two short reports a person reads in a minute: behaviour slices and mastery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.irt.drift import drifting_item_ids


def _markdown(df: pd.DataFrame) -> str:
    """A pandas frame as a GitHub table (pandas' own to_markdown needs the tabulate package)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.3f}"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    return str(v)


def latency_band(latency_ms: np.ndarray) -> np.ndarray:
    """Fast / medium / slow by the terciles of the responses' own latencies, or 'missing'."""
    have = np.isfinite(latency_ms)
    if not have.any():
        return np.full(len(latency_ms), "missing", dtype=object)
    lo, hi = np.quantile(latency_ms[have], [1 / 3, 2 / 3])
    band = np.where(latency_ms < lo, f"fast (< {lo / 1000:.0f} s)",
                    np.where(latency_ms < hi, f"medium ({lo / 1000:.0f}-{hi / 1000:.0f} s)", f"slow (>= {hi / 1000:.0f} s)"))
    return np.where(have, band, "missing").astype(object)


SLICES = ("help", "latency", "problem type", "item drift")
"""the behaviours the slices cut responses by, in the order the reports show them"""


def behavior_slice_table(events: pa.Table, predictions: pa.Table, wdirt_predicted: np.ndarray | None,
                         drifting_items: set, split: str = "test") -> pd.DataFrame:
    """Accuracy, SAKT calibration and WD-IRT residuals by help-seeking, latency band, problem type and drift
    flag, over one split's responses (test students by default: neither engine trained on them); one row per
    (slice, value), largest first within a slice. Written as data/exports/behavior_slices.parquet."""
    df = pd.DataFrame({
        "help": np.where(events["help_requested"].to_numpy(zero_copy_only=False), "asked for help", "no help"),
        "latency": latency_band(events["latency_ms"].to_numpy(zero_copy_only=False).astype(np.float64)),
        "problem type": pc.fill_null(events["problem_type"], "(none)").to_numpy(zero_copy_only=False),
        "item drift": np.where(pc.is_in(events["item_id"], value_set=pa.array(sorted(drifting_items), pa.string())).to_numpy(zero_copy_only=False),
                               "item flagged as drifting", "not flagged"),
        "actual": predictions["actual"].to_numpy(),
        "sakt": predictions["predicted"].to_numpy(zero_copy_only=False).astype(np.float64),
        "wdirt": wdirt_predicted if wdirt_predicted is not None else np.nan,
        "split": predictions["split"].to_numpy(zero_copy_only=False),
    })
    df = df[df["split"] == split]
    parts = []
    for col in SLICES:
        g = df.groupby(col, sort=True).agg(responses=("actual", "size"), accuracy=("actual", "mean"),
                                           sakt_predicted=("sakt", "mean"), wdirt_predicted=("wdirt", "mean"))
        g = g.reset_index().rename(columns={col: "value"}).sort_values("responses", ascending=False, kind="stable")
        parts.append(g.assign(slice=col, sakt_gap=g["sakt_predicted"] - g["accuracy"],
                              wdirt_residual=g["accuracy"] - g["wdirt_predicted"]))
    cols = ["slice", "value", "responses", "accuracy", "sakt_predicted", "sakt_gap", "wdirt_residual"]
    out = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
    return out.assign(split=split, responses=out["responses"].astype(np.int64))


def behavior_slices(table: pd.DataFrame) -> str:
    """The slice table as the markdown report data/exports/behavior_slices.md."""
    split = table["split"].iloc[0] if len(table) else "test"
    n = int(table.loc[table["slice"] == SLICES[0], "responses"].sum())
    out = [f"# Behaviour slices ({split} students, {n:,} responses)\n",
           "Accuracy is the observed first-response correct rate. *SAKT gap* = SAKT's mean predicted P(correct) minus "
           "accuracy (positive: SAKT is optimistic on that slice). *WD-IRT residual* = accuracy minus Wide & Deep IRT's "
           "mean predicted P(correct) (positive: students do better than the item parameters and abilities say).\n"]
    names = {"sakt_gap": "SAKT gap", "wdirt_residual": "WD-IRT residual"}
    for col in SLICES:
        g = table[table["slice"] == col].rename(columns={"value": col} | names)
        out += [f"## By {col}\n", _markdown(g[[col, "responses", "accuracy", "sakt_predicted", *names.values()]])]
    return "\n".join(out)


def falling_mastery(state: pd.DataFrame, drop: float) -> pd.DataFrame:
    """(user, skill) pairs whose mastery at their last attempt is at least `drop` below its peak on that skill."""
    s = state.dropna(subset=["mastery"])
    g = s.groupby(["user_id", "skill_id"], sort=False)
    last = g.tail(1).set_index(["user_id", "skill_id"])
    last = last.assign(peak=g["mastery"].max().reindex(last.index))
    last = last.assign(change=last["mastery"] - last["peak"]).reset_index()
    return last[last["change"] <= -drop].sort_values(["change", "user_id", "skill_id"])


def mastery_report(state: pa.Table, skills: pa.Table, params: pa.Table, drift: pa.Table, drop: float, top: int = 10) -> tuple[str, dict]:
    """Per-skill mastery at the end of the data, students whose mastery is falling, skills with the most
    drifting items; returns the markdown and a few figures for the metrics."""
    st = state.select(["user_id", "skill_id", "timestamp", "mastery", "n_attempts"]).to_pandas()
    desc = dict(zip(skills["skill_id"].to_pylist(), skills["description"].to_pylist()))
    end = st.groupby(["user_id", "skill_id"], sort=False).tail(1)
    per_skill = end.groupby("skill_id").agg(students=("user_id", "size"), mean=("mastery", "mean"),
                                            p10=("mastery", lambda m: m.quantile(0.1)), median=("mastery", "median"),
                                            p90=("mastery", lambda m: m.quantile(0.9))).reset_index()
    per_skill.insert(1, "description", [desc.get(k) or "" for k in per_skill["skill_id"]])
    falling = falling_mastery(st, drop)
    p = params.select(["item_id", "skill_ids"]).to_pandas()
    p["drifting"] = p["item_id"].isin(drifting_item_ids(drift))
    p = p.explode("skill_ids").rename(columns={"skill_ids": "skill_id"})  # a multi-skill item counts for each skill
    per_drift = p.groupby(p["skill_id"].fillna("(no skill)")).agg(items=("item_id", "size"), drifting=("drifting", "sum"))
    per_drift = per_drift.assign(share=per_drift["drifting"] / per_drift["items"]).reset_index()
    per_drift = per_drift.sort_values(["drifting", "skill_id"], ascending=[False, True]).head(top)

    shown = falling.head(top).assign(description=lambda d: [desc.get(k) or "" for k in d["skill_id"]])
    shown = shown.assign(now=shown["mastery"], attempts=shown["n_attempts"])
    lines = [
        "# Mastery report\n",
        "Mastery is SAKT's predicted chance of a correct first response to the skill's typical items (those of "
        "median Wide & Deep IRT difficulty) given everything the student did up to that moment.\n",
        f"## Mastery at the end of the data, per skill ({len(end):,} student-skill pairs)\n",
        _markdown(per_skill),
        "## Students with falling mastery\n",
        f"{len(falling):,} student-skill pairs ({len(falling) / max(len(end), 1):.1%}) end at least {drop:.2f} below "
        f"the peak of their mastery on that skill; the {min(top, len(falling))} steepest:\n",
        _markdown(shown[["user_id", "skill_id", "description", "attempts", "peak", "now", "change"]]) if len(shown) else "(none)\n",
        "## Skills with the most drifting items\n",
        _markdown(per_drift),
    ]
    figures = {"student_skill_pairs": int(len(end)), "falling_pairs": int(len(falling)),
               "mean_final_mastery": round(float(end["mastery"].mean()), 6) if len(end) else 0.0}
    return "\n".join(lines), figures
