"""One student on one topic, both engines side by side: each response with SAKT's prediction and the mastery
after it, and the WD-IRT health of the item (difficulty, discrimination, guessing, drift).

Reads only the rows it needs from data/exports/ (parquet filters on sorted row groups), so it answers in
about a second at EDM-Cup scale, and needs neither DVC nor torch.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.events import has_clock_time
from ktirt.io import atomic_path, check_output, read_parquet

TREND_ATTEMPTS = 5
"""the summary's trend: mastery now minus mastery this many attempts on the topic earlier"""
ECHO = 80
"""characters of a student id or topic echoed back in messages and titles"""
PATTERN_CHARS = re.compile(r"[()\[\]{}*+?^$|\\]")
"""characters no skill code or description word holds: a topic that has them reads as a regular expression"""
PLOT_SUFFIXES = {"", ".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".eps", ".ps"}


def capped(text: str, limit: int = ECHO) -> str:
    """`text` cut to `limit` characters for a message (a pasted log line must not flood the terminal)."""
    return text if len(text) <= limit else text[:limit] + "…"


def check_topic(topic: str) -> None:
    """Topics are matched literally: an empty one would match every skill, a pattern would quietly match
    something else (`6.([` read as the prefix `6`)."""
    if not topic.strip():
        raise InputError("--topic is empty: give a skill code (6.RP.A.3b), a code prefix (6.RP) or words of a skill description")
    bad = sorted(set(PATTERN_CHARS.findall(topic)))
    if bad:
        raise InputError(f"--topic '{capped(topic)}': {' '.join(bad)} cannot be part of a skill code or description word "
                         "(topics are matched literally, not as patterns)")


def check_plot_path(path: str | Path) -> None:
    """Before any work or output: the PNG can be written (a regular file, or none yet, in a folder that takes new
    files: never /dev/full, which would swallow it), in a format matplotlib draws."""
    if Path(path).suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(f"--plot: unknown image type '{Path(path).suffix}' (use one of {', '.join(sorted(PLOT_SUFFIXES - {''}))})", path)
    check_output(path, "file")


@dataclass
class Trace:
    student: str
    topic: str
    skills: pd.DataFrame
    """skill_id, description of the skills the topic matched and the student met"""
    rows: pd.DataFrame
    """the timeline: time, item, skill, correct, predicted, mastery, difficulty (in effect then: after a drifted
    item's change, its current one), discrimination, guessing, drift"""
    clock_time: bool = True
    """False when the source has only the responses' order (ASSISTments 2009): no dates are shown then"""

    def summary(self) -> list[str]:
        out = []
        for skill, g in self.rows.groupby("skill_id", sort=False):
            m = g["mastery"].to_numpy()
            now = m[-1]
            back = m[max(0, len(m) - 1 - TREND_ATTEMPTS)]
            trend = "rising" if now - back > 0.02 else "falling" if now - back < -0.02 else "flat"
            out.append(f"{skill}: mastery now {now:.2f} after {len(g)} attempts, {trend} "
                       f"({round(now - back, 2) + 0.0:+.2f} over the last {min(TREND_ATTEMPTS, len(m) - 1)} attempts; peak {m.max():.2f}).")
        drifting = self.rows.loc[self.rows["drift"] != "", "item_id"].unique()
        out.append(f"Drifting items met: {len(drifting)}" + (f" ({', '.join(drifting[:8])}"
                   f"{', ...' if len(drifting) > 8 else ''})." if len(drifting) else "."))
        return out

    def text(self) -> str:
        first = "time" if self.clock_time else "order"  # without clock time, the response's place on the topic
        shown = self.rows.assign(**{first: self.rows["timestamp"].dt.strftime("%Y-%m-%d %H:%M") if self.clock_time
                                    else np.arange(1, len(self.rows) + 1)})
        cols = [first, "item_id", "skill_id", "correct", "predicted", "mastery", "difficulty", "discrimination", "guessing", "drift"]
        head = [f"Student {capped(self.student)}, topic '{capped(self.topic)}': " + "; ".join(
            f"{r.skill_id} ({r.description})" if r.description else r.skill_id for r in self.skills.itertuples())]
        table = shown[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep="")
        return "\n".join([*head, "", table, "", *self.summary()]) + "\n"

    def to_json(self) -> dict:
        rows = self.rows.assign(timestamp=self.rows["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str[:-4] + "Z")
        rows = rows.drop(columns=["drift_since", "drift_shift"])
        rows = rows.astype(object).where(rows.notna(), None)
        return {"student": self.student, "topic": self.topic, "clock_time": self.clock_time,
                "skills": self.skills.to_dict("records"),
                "rows": rows.to_dict("records"), "summary": self.summary()}

    def plot(self, path: str | Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 4.5))
        diff_ax = ax.twinx()
        r = self.rows.reset_index(drop=True)
        x = np.arange(1, len(r) + 1)  # attempts in time order: sessions do not bunch up as they do on a clock axis
        for skill, g in r.groupby("skill_id", sort=False):
            ax.plot(x[g.index], g["mastery"], marker=".", label=f"SAKT mastery {skill}")
        ok = (r["correct"] == 1).to_numpy()
        diff_ax.scatter(x[ok], r.loc[ok, "difficulty"], marker="o", s=22, c="tab:green", alpha=0.6, label="item difficulty, correct")
        diff_ax.scatter(x[~ok], r.loc[~ok, "difficulty"], marker="o", s=22, c="tab:red", alpha=0.6, label="item difficulty, wrong")
        d = (r["drift"] != "").to_numpy()
        if d.any():
            diff_ax.scatter(x[d], r.loc[d, "difficulty"], marker="x", s=80, c="black", label="item flagged as drifting")
        day = r["timestamp"].dt.strftime("%Y-%m-%d")
        for i in np.flatnonzero(day.ne(day.shift()).to_numpy()) if self.clock_time else []:
            ax.axvline(x[i] - 0.5, color="grey", lw=0.6, ls=":")
            ax.annotate(day[i], (x[i] - 0.4, 0.02), fontsize=7, color="grey", rotation=90, va="bottom")
        ax.set_ylim(0, 1)
        ax.set_xlim(0.5, len(r) + 0.5)
        ax.set_ylabel("SAKT mastery")
        diff_ax.set_ylabel("WD-IRT item difficulty (logits)")
        ax.set_xlabel("attempt on the topic" + (" (dotted lines: a new day)" if self.clock_time else
                                                " (the source has no clock time: the file's order)"))
        ax.set_title(f"Student {capped(self.student)}: {capped(', '.join(self.skills['skill_id']))}")
        handles = ax.get_legend_handles_labels()
        more = diff_ax.get_legend_handles_labels()
        ax.legend(handles[0] + more[0], handles[1] + more[1], loc="lower right", fontsize=8)
        fig.tight_layout()
        try:
            with atomic_path(path) as tmp:  # the format from the real name: the temporary keeps it
                fig.savefig(tmp, dpi=110)
        finally:
            plt.close(fig)


def _path(exports: Path, name: str) -> Path:
    return exports / f"{name}.parquet"


def _table(exports: Path, name: str, columns: list[str], filters=None) -> pa.Table:
    return read_parquet(_path(exports, name), "export", columns=columns, filters=filters)


def match_topic(skills: pd.DataFrame, topic: str) -> pd.DataFrame:
    """Skills a topic names: an exact code (`6.RP.A.3b`), a code prefix (`6.RP`), or words that all appear in
    the description (`unit rates`); case-insensitive."""
    t = topic.strip().casefold()
    code = skills["skill_id"].str.casefold()
    desc = skills["description"].fillna("").str.casefold()
    for hit in (code == t, code.str.startswith(t)):
        if hit.any():
            return skills[hit]
    if re.match(r"^\d+\.\w", t):  # reads as a code: only codes can match it
        return skills.iloc[:0]
    words = re.findall(r"\w+", t)
    hit = pd.Series(bool(words), index=skills.index)
    for w in words:
        hit &= desc.str.contains(rf"\b{re.escape(w)}", regex=True) | code.str.contains(re.escape(w), regex=True)
    return skills[hit]


def _closest(word: str, choices: list[str], n: int = 5) -> str:
    near = difflib.get_close_matches(word, choices, n=n, cutoff=0.3)
    return ", ".join(near) if near else "none close"


def _closest_skills(topic: str, skills: pd.DataFrame, n: int = 5) -> str:
    """The skills whose code and description words read most like the topic's words (typos forgiven)."""
    asked = re.findall(r"[\w.]+", topic.casefold()) or [topic.casefold()]

    def score(row) -> float:
        words = re.findall(r"[\w.]+", f"{row.skill_id} {row.description or ''}".casefold())
        return sum(max(difflib.SequenceMatcher(None, a, w).ratio() for w in words) for a in asked) / len(asked)

    ranked = sorted(skills.itertuples(), key=lambda r: (-score(r), r.skill_id))[:n]
    return "; ".join(f"{r.skill_id} ({r.description})" if r.description else r.skill_id for r in ranked)


def timeline(state: pd.DataFrame, pred: pd.DataFrame, params: pd.DataFrame) -> pd.DataFrame:
    """Student-state rows joined to SAKT's prediction for the same response and to the item's WD-IRT health, with
    the difficulty in effect when the student met the item (a drifted item's current one after its change) and a
    drift label ("before +1.2 on 2022-10-03"). Joins on user_id too when both frames carry it."""
    keys = ["item_id", "timestamp"] + (["user_id"] if "user_id" in state and "user_id" in pred else [])
    rows = (state.merge(pred, on=keys, how="left").merge(params, on="item_id", how="left")
                 .rename(columns={"actual": "correct", "drift_start": "drift_since"}))
    rows = rows.sort_values([k for k in ("user_id", "timestamp", "item_id") if k in rows], kind="stable")
    rows["drift_shift"] = (rows["difficulty_current"] - rows["difficulty"]).where(rows["drift_since"].notna())
    rows["difficulty"] = rows["difficulty"].where(~(rows["timestamp"] >= rows["drift_since"]), rows["difficulty_current"])
    # a source without clock time has no date to give (its timestamps only order the responses)
    when = (" on " + rows["drift_since"].dt.strftime("%Y-%m-%d")).fillna("") if has_clock_time(rows["timestamp"]) else ""
    shift = rows["drift_shift"].map(lambda v: f"{v:+.1f}" if v == v else "")
    rows["drift"] = np.where(rows["drift_since"].isna(), "",
                             np.where(rows["timestamp"] >= rows["drift_since"], "after ", "before ") + shift + when)
    return rows


def trace(exports_dir: str | Path, student: str, topic: str) -> Trace:
    check_topic(topic)
    exports = Path(exports_dir)
    skills = _table(exports, "skills", ["skill_id", "description"]).to_pandas()
    matched = match_topic(skills, topic)
    if matched.empty:
        raise InputError(f"no skill matches topic '{capped(topic)}'; closest: {_closest_skills(topic[:ECHO], skills)}",
                         _path(exports, "skills"), "skill_id")
    state = _table(exports, "sakt_student_state", ["skill_id", "timestamp", "item_id", "mastery", "n_attempts"],
                   [("user_id", "=", student)]).to_pandas()
    if state.empty:
        users = _table(exports, "sakt_predictions", ["user_id"])["user_id"]
        near = _closest(student, pc.unique(users).to_pylist())
        raise InputError(f"no student '{capped(student)}'; closest ids: {near}", _path(exports, "sakt_predictions"), "user_id")
    on_topic = state[state["skill_id"].isin(matched["skill_id"])]
    if on_topic.empty:
        met = sorted(state["skill_id"].unique())
        raise InputError(f"student '{capped(student)}' has no responses on topic '{capped(topic)}' "
                         f"({', '.join(matched['skill_id'][:5])}); their skills: {capped(', '.join(met), 400)}",
                         _path(exports, "sakt_student_state"), "skill_id")
    state = on_topic
    pred = _table(exports, "sakt_predictions", ["item_id", "timestamp", "predicted", "actual"],
                  [("user_id", "=", student)]).to_pandas()
    items = pa.array(state["item_id"].unique(), pa.string())
    params = _table(exports, "item_params", ["item_id", "difficulty", "difficulty_current", "drift_start", "discrimination",
                                             "guessing"], pc.field("item_id").isin(items)).to_pandas()
    rows = timeline(state, pred, params)
    rows["correct"] = rows["correct"].astype("Int8")
    met = matched[matched["skill_id"].isin(rows["skill_id"])].reset_index(drop=True)
    cols = ["timestamp", "item_id", "skill_id", "correct", "predicted", "mastery", "n_attempts", "difficulty",
            "discrimination", "guessing", "drift", "drift_since", "drift_shift"]
    return Trace(student, topic, met, rows[cols].reset_index(drop=True), has_clock_time(pred["timestamp"]))
