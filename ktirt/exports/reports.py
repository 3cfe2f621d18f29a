"""The two short reports a person reads in a minute: behaviour slices and mastery."""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.irt.drift import drifting_item_ids
from ktirt.streaming_stats import ExactQuantiles


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


LATENCY_TERCILES = (1 / 3, 2 / 3)
"""the latency bands' cuts: terciles of every response's latency (all splits)"""


def latency_of(events: pa.Table) -> np.ndarray:
    return events["latency_ms"].to_numpy(zero_copy_only=False).astype(np.float64)


SLICES = ("help", "latency", "problem type", "item drift")
"""the behaviours the slices cut responses by, in the order the reports show them"""
SLICE_ROWS = pa.schema([("help", pa.int8()), ("latency", pa.int8()), ("problem type", pa.int32()), ("item drift", pa.int8()),
                        ("actual", pa.int8()), ("sakt", pa.float32()), ("wdirt", pa.float32())])
"""a kept response: its behaviours as small codes, its outcome, the engines' predictions"""


class SliceRows:
    """What the behaviour slices need, gathered a batch of students at a time: of one split's responses (test
    students by default: neither engine trained on them), their behaviours as small codes, their outcome and the
    engines' predictions, kept in a temporary file while they come (memory does not grow with the log: 16 bytes a
    test response, about 230 MB at EdNet KT1's size). The latency bands' cuts are the terciles over every response
    (all splits), known before the rows come: two passes over the latencies first (`count`, then `collect`;
    ktirt.streaming_stats). `table()` reads the rows back and is the slice table."""

    def __init__(self, drifting_items: set, split: str = "test"):
        self.drifting = pa.array(sorted(drifting_items), pa.string())
        self.split = split
        self.latency = ExactQuantiles(LATENCY_TERCILES)
        self.problem_types: dict[str, int] = {}
        self.cuts: np.ndarray | None = None
        """the terciles, once every latency is collected"""
        self.spill = tempfile.TemporaryFile(prefix="ktirt-slices-")  # the rows wait on disk, not in memory
        self.writer: pa.ipc.RecordBatchStreamWriter | None = pa.ipc.new_stream(self.spill, SLICE_ROWS)

    def count(self, events: pa.Table) -> None:
        self.latency.count(latency_of(events))

    def collect(self, events: pa.Table) -> None:
        self.latency.collect(latency_of(events))
        self.cuts = None

    def add(self, events: pa.Table, predictions: pa.Table, wdirt_predicted: np.ndarray | None) -> None:
        mine = predictions["split"].to_numpy(zero_copy_only=False) == self.split
        if self.cuts is None:
            self.cuts = self.latency.values()
        cuts = self.cuts
        latency = latency_of(events)[mine]
        band = np.full(len(latency), 3)  # missing
        if cuts is not None:
            band = np.where(np.isfinite(latency), np.where(latency < cuts[0], 0, np.where(latency < cuts[1], 1, 2)), 3)
        kinds = pc.fill_null(events["problem_type"], "(none)").to_numpy(zero_copy_only=False)[mine]
        wdirt = wdirt_predicted[mine] if wdirt_predicted is not None else np.full(int(mine.sum()), np.nan)
        self.writer.write_batch(pa.record_batch([
            events["help_requested"].to_numpy(zero_copy_only=False)[mine].astype(np.int8),
            band.astype(np.int8),
            np.array([self.problem_types.setdefault(k, len(self.problem_types)) for k in kinds], np.int32),
            pc.is_in(events["item_id"], value_set=self.drifting).to_numpy(zero_copy_only=False)[mine].astype(np.int8),
            predictions["actual"].to_numpy()[mine].astype(np.int8),
            predictions["predicted"].to_numpy(zero_copy_only=False)[mine].astype(np.float32),
            wdirt.astype(np.float32)], schema=SLICE_ROWS))

    def _rows(self) -> pa.Table:
        """Every row added, in order, read back from the spill (no more can be added)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.spill.seek(0)
        return pa.ipc.open_stream(self.spill).read_all()

    def _ranked(self) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """The kept rows with each behaviour as the rank of its label among that behaviour's labels (grouping by
        the rank groups as by the label, in the same order), and each behaviour's labels in rank order."""
        rows = self._rows()
        labels = {"help": ["no help", "asked for help"], "latency": _band_labels(self.cuts),
                  "problem type": list(self.problem_types), "item drift": ["not flagged", "item flagged as drifting"]}
        out = pd.DataFrame({"actual": _column(rows, "actual", np.int8), "sakt": _column(rows, "sakt", np.float64),
                            "wdirt": _column(rows, "wdirt", np.float64)})
        for col in SLICES:
            names = np.array(labels[col], dtype=object)
            order = np.argsort(names, kind="stable")
            rank = np.empty(len(order), np.int64)
            rank[order] = np.arange(len(order))
            out[col] = rank[_column(rows, col, np.int64)]
            labels[col] = names[order]
        return out, labels

    def table(self) -> pd.DataFrame:
        """Accuracy, SAKT calibration and WD-IRT residuals by help-seeking, latency band, problem type and drift
        flag over the split's responses; one row per (slice, value), largest first within a slice. Written as
        data/exports/behavior_slices.parquet."""
        df, labels = self._ranked()
        parts = []
        for col in SLICES:
            g = df.groupby(col, sort=True).agg(responses=("actual", "size"), accuracy=("actual", "mean"),
                                               sakt_predicted=("sakt", "mean"), wdirt_predicted=("wdirt", "mean"))
            g = g.reset_index().rename(columns={col: "value"})
            g["value"] = labels[col][g["value"].to_numpy()]
            g = g.sort_values("responses", ascending=False, kind="stable")
            parts.append(g.assign(slice=col, sakt_gap=g["sakt_predicted"] - g["accuracy"],
                                  wdirt_residual=g["accuracy"] - g["wdirt_predicted"]))
        cols = ["slice", "value", "responses", "accuracy", "sakt_predicted", "sakt_gap", "wdirt_residual"]
        out = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
        return out.assign(split=self.split, responses=out["responses"].astype(np.int64))


def _column(rows: pa.Table, name: str, dtype: type) -> np.ndarray:
    return rows[name].to_numpy().astype(dtype)


def _band_labels(cuts: np.ndarray | None) -> np.ndarray:
    """The latency bands' labels, by band code: fast, medium, slow, missing."""
    if cuts is None:
        return np.array(["fast", "medium", "slow", "missing"], dtype=object)  # only "missing" is ever used
    lo, hi = cuts
    return np.array([f"fast (< {lo / 1000:.0f} s)", f"medium ({lo / 1000:.0f}-{hi / 1000:.0f} s)",
                     f"slow (>= {hi / 1000:.0f} s)", "missing"], dtype=object)


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


_STEEPEST = ["change", "user_id", "skill_id"]
"""the order of falling pairs: steepest first"""


def falling_mastery(state: pd.DataFrame, drop: float) -> pd.DataFrame:
    """(user, skill) pairs whose mastery at their last attempt is at least `drop` below its peak on that skill."""
    s = state.dropna(subset=["mastery"])
    g = s.groupby(["user_id", "skill_id"], sort=False)
    last = g.tail(1).set_index(["user_id", "skill_id"])
    last = last.assign(peak=g["mastery"].max().reindex(last.index))
    last = last.assign(change=last["mastery"] - last["peak"]).reset_index()
    return last[last["change"] <= -drop].sort_values(_STEEPEST)


class MasteryParts:
    """What the mastery report needs of sakt_student_state, gathered a batch of whole students at a time: per
    (student, skill) pair its last mastery (with its skill as a rank among `skills`, sorted: grouping by the rank
    groups as by the code), and how many pairs have falling mastery, with the `top` steepest."""

    def __init__(self, skills: list[str], drop: float, top: int = 10):
        self.skills = np.array(sorted(skills), dtype=object)
        self.drop, self.top = drop, top
        self.ends: list[pd.DataFrame] = []
        self.n_falling = 0
        self.steepest: pd.DataFrame | None = None

    def add(self, state: pa.Table) -> None:
        st = state.select(["user_id", "skill_id", "timestamp", "mastery", "n_attempts"]).to_pandas()
        end = st.groupby(["user_id", "skill_id"], sort=False).tail(1)
        rank = np.searchsorted(self.skills, end["skill_id"].to_numpy(dtype=object)).astype(np.int32)
        self.ends.append(pd.DataFrame({"skill_id": rank, "mastery": end["mastery"].to_numpy()}))
        falling = falling_mastery(st, self.drop)
        self.n_falling += len(falling)
        # the steepest of all are among the steepest of each batch (the order is total: change, user, skill); their
        # ids as Python strings, not views of the batch's Arrow columns (which would keep the whole batch)
        top = falling.head(self.top).astype({"user_id": object, "skill_id": object})
        kept = [f for f in (self.steepest, top) if f is not None and len(f)]
        self.steepest = pd.concat(kept).sort_values(_STEEPEST).head(self.top) if kept else falling.head(0)

    def report(self, skills: pa.Table, params: pa.Table, drift: pa.Table) -> tuple[str, dict]:
        """Per-skill mastery at the end of the data, students whose mastery is falling, skills with the most
        drifting items; returns the markdown and a few figures for the metrics."""
        end = pd.concat(self.ends, ignore_index=True)
        return _mastery_markdown(end, self.skills, self.n_falling, self.steepest, skills, params, drift, self.drop, self.top)


def mastery_report(state: pa.Table, skills: pa.Table, params: pa.Table, drift: pa.Table, drop: float, top: int = 10) -> tuple[str, dict]:
    """MasteryParts' report over one table of whole students."""
    parts = MasteryParts(pc.unique(state["skill_id"]).to_pylist(), drop, top)
    parts.add(state)
    return parts.report(skills, params, drift)


def _mastery_markdown(end: pd.DataFrame, codes: np.ndarray, n_falling: int, steepest: pd.DataFrame, skills: pa.Table,
                      params: pa.Table, drift: pa.Table, drop: float, top: int) -> tuple[str, dict]:
    desc = dict(zip(skills["skill_id"].to_pylist(), skills["description"].to_pylist()))
    per_skill = end.groupby("skill_id").agg(students=("mastery", "size"), mean=("mastery", "mean"),
                                            p10=("mastery", lambda m: m.quantile(0.1)), median=("mastery", "median"),
                                            p90=("mastery", lambda m: m.quantile(0.9))).reset_index()
    per_skill["skill_id"] = codes[per_skill["skill_id"].to_numpy()]
    per_skill.insert(1, "description", [desc.get(k) or "" for k in per_skill["skill_id"]])
    p = params.select(["item_id", "skill_ids"]).to_pandas()
    p["drifting"] = p["item_id"].isin(drifting_item_ids(drift))
    p = p.explode("skill_ids").rename(columns={"skill_ids": "skill_id"})  # a multi-skill item counts for each skill
    per_drift = p.groupby(p["skill_id"].fillna("(no skill)")).agg(items=("item_id", "size"), drifting=("drifting", "sum"))
    per_drift = per_drift.assign(share=per_drift["drifting"] / per_drift["items"]).reset_index()
    per_drift = per_drift.sort_values(["drifting", "skill_id"], ascending=[False, True]).head(top)

    shown = steepest.head(top).assign(description=lambda d: [desc.get(k) or "" for k in d["skill_id"]])
    shown = shown.assign(now=shown["mastery"], attempts=shown["n_attempts"])
    lines = [
        "# Mastery report\n",
        "Mastery is SAKT's predicted chance of a correct first response to the skill's typical items (those of "
        "median Wide & Deep IRT difficulty) given everything the student did up to that moment.\n",
        f"## Mastery at the end of the data, per skill ({len(end):,} student-skill pairs)\n",
        _markdown(per_skill),
        "## Students with falling mastery\n",
        f"{n_falling:,} student-skill pairs ({n_falling / max(len(end), 1):.1%}) end at least {drop:.2f} below "
        f"the peak of their mastery on that skill; the {min(top, n_falling)} steepest:\n",
        _markdown(shown[["user_id", "skill_id", "description", "attempts", "peak", "now", "change"]]) if len(shown) else "(none)\n",
        "## Skills with the most drifting items\n",
        _markdown(per_drift),
    ]
    figures = {"student_skill_pairs": int(len(end)), "falling_pairs": int(n_falling),
               "mean_final_mastery": round(float(end["mastery"].mean()), 6) if len(end) else 0.0}
    return "\n".join(lines), figures
