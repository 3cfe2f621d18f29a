"""The pipeline's plots as one PNG a reader of the README can see (dvc.yaml `plots:` draws the same CSVs)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from ktirt.io import atomic_path, read_csv
from ktirt.irt.plot_tables import TRUE_REFERENCE


def _read(path: Path) -> pd.DataFrame | None:
    """A plot table of plots/<engine>/ (None where there is none); a truncated one is an error naming its stage."""
    return read_csv(path, f"train_{path.parent.name}") if path.is_file() else None


def training_history(live_dir: Path) -> pd.DataFrame | None:
    """An engine's per-epoch train loss and validation AUC from its DVCLive log (None where there is none)."""
    files = [live_dir / "plots" / "metrics" / f"{name}.tsv" for name in ("train_loss", "val_auc")]
    if not all(f.is_file() for f in files):
        return None
    made_by = f"train_{live_dir.name}"
    loss, auc = (read_csv(f, made_by, ("step", f.stem), sep="\t") for f in files)
    return loss.merge(auc, on="step").rename(columns={"step": "epoch"})


def _say(ax, text: str) -> None:
    """A panel the data cannot fill says why, in place of empty axes."""
    ax.text(0.5, 0.5, textwrap.fill(text, 40), ha="center", va="center", transform=ax.transAxes, fontsize=9)


def _difficulty(ax, diff: pd.DataFrame | None) -> None:
    """Recovered difficulty against its reference: the simulator's truth, or without it the observed one."""
    if diff is None or not len(diff):
        _say(ax, "no difficulty table (run train_wdirt)")
        ax.set(title="WD-IRT difficulty")
        return
    truth = diff["reference_kind"].iloc[0] == TRUE_REFERENCE
    ax.scatter(diff["reference"], diff["difficulty"], s=6, alpha=0.5)
    if truth:
        lo, hi = diff[["reference", "difficulty"]].min().min(), diff[["reference", "difficulty"]].max().max()
        ax.plot([lo, hi], [lo, hi], ls=":", c="grey")
    ax.set(title=f"WD-IRT difficulty: recovered vs {'true' if truth else 'observed (no truth)'}",
           xlabel="true (simulator)" if truth else "-logit(correct rate)", ylabel="estimated")


def draw_results(plots_dir: str | Path, live_dir: str | Path, out: str | Path, drift_z: float, drift_min_shift: float) -> None:
    """SAKT training, ROC and calibration; WD-IRT training, difficulty recovery and drift, in a 2 x 3 grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = Path(plots_dir)
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    for ax, engine in zip(axes[:, 0], ("sakt", "wdirt")):
        h = training_history(Path(live_dir) / engine)
        if h is not None:
            ax.plot(h["epoch"], h["val_auc"], marker="o", label="validation AUC")
            twin = ax.twinx()
            twin.plot(h["epoch"], h["train_loss"], color="tab:orange", marker=".", label="train loss")
            twin.set_ylabel("train loss")
            ax.legend(loc="lower center", fontsize=8)
        ax.set(title=f"{'SAKT' if engine == 'sakt' else 'WD-IRT'} training", xlabel="epoch", ylabel="validation AUC")
    roc = _read(d / "sakt" / "roc.csv")
    if roc is not None:
        axes[0, 1].plot(roc["fpr"], roc["tpr"])
        axes[0, 1].plot([0, 1], [0, 1], ls=":", c="grey")
    axes[0, 1].set(title="SAKT ROC, test students", xlabel="false positive rate", ylabel="true positive rate")
    cal = _read(d / "sakt" / "calibration.csv")
    if cal is not None:
        axes[0, 2].plot(cal["predicted"], cal["observed"], marker="o")
        axes[0, 2].plot([0, 1], [0, 1], ls=":", c="grey")
    axes[0, 2].set(title="SAKT calibration, test students (deciles)", xlabel="mean predicted", ylabel="observed correct rate")
    _difficulty(axes[1, 1], _read(d / "wdirt" / "difficulty.csv"))
    drift = _read(d / "wdirt" / "drift.csv")
    if drift is not None and "note" in drift:
        _say(axes[1, 2], drift["note"].iloc[0])
    elif drift is not None and len(drift):
        flag = drift["drift_flag"].astype(bool)
        axes[1, 2].scatter(drift.loc[~flag, "z"], drift.loc[~flag, "difficulty_shift"], s=6, alpha=0.4, label="not flagged")
        axes[1, 2].scatter(drift.loc[flag, "z"], drift.loc[flag, "difficulty_shift"], s=12, c="tab:red", label="flagged")
        for v in (-drift_z, drift_z):
            axes[1, 2].axvline(v, ls=":", c="grey")
        for v in (-drift_min_shift, drift_min_shift):
            axes[1, 2].axhline(v, ls=":", c="grey")
        axes[1, 2].legend(fontsize=8)
    axes[1, 2].set(title="WD-IRT drift: largest |z| per item", xlabel="z", ylabel="difficulty shift (logits)")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
