"""A fair knowledge-tracing benchmark: ktirt's SAKT, WD-IRT, DKT and their blend against pyKT's DKT, AKT, simpleKT
and SAKT, on identical user folds, scored question-level, results merged into bench/results/kt_benchmark.json.

- Folds: KFold over the sorted student ids (--folds, --seed); each fold's validation students are --val-share
  of its training side; every model early-stops on them and is scored on the fold's test students.
- Scoring: one prediction per response, every response of a test student but the first; a multi-skill problem
  is one response (pyKT's models, which read one concept per row, are scored by late fusion: the mean of
  the problem's concept predictions, each made from earlier problems only, as pyKT's evaluate_question does).
- Settings: ktirt's from params.yaml (model, train, wdirt, dkt, blend; --set section.key=value overrides); pyKT's
  its published defaults (bench/_pykt_models.py). --max-epochs / --patience bound every model when given.
- The blend (ktirt_blend) is the blend stage's stacker over its members (blend.members), fitted on the fold's
  validation students; a member run by the same process on the same fold and data is reused, not retrained.
- Data: a world simulated for the run (--world, --students) or any raw folder (--source, --raw-dir).
- Each model's test predictions go to bench/out/kt_benchmark/<name>/ in kt-audit's format, with its verdict.
- Leakage controls on every model and fold (bench/_kt_controls.py): future masking and a shuffled-label run
  whose test AUC must be 0.5 ± --control-tolerance; a model whose control fails is marked failed, and the run
  exits non-zero once every result is stored.

    python bench/kt_benchmark.py --world skill_builder --students 1500 --models ktirt_sakt,dkt --folds-to-run 0,1,2
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from pathlib import Path

import click
import numpy as np
import yaml
from sklearn.metrics import roc_auc_score

import _kt_audit
import _kt_controls
import _kt_runners as runners
from _kt_data import WORLD_SOURCE, BenchData, ids_digest, load_data, scored_rows, simulate_world, user_folds
from _pykt_models import DEFAULTS, TRAIN_CONFIG
from _pykt_windows import Expanded
from ktirt.errors import InputError, SettingsError
from ktirt.io import write_json
from ktirt.evaluation import mean_baseline
from ktirt.leakage import SHUFFLED_AUC_TOLERANCE

ROOT = Path(__file__).resolve().parents[1]
IMPLEMENTATION = {"simplekt": {"implementation": "bench/_simplekt.py, written from the paper (pykt-toolkit 0.0.38 has none)"}}
log = logging.getLogger("bench.kt_benchmark")


KTIRT_SECTIONS = {"ktirt_sakt": ("model", "train"), "ktirt_wdirt": ("wdirt",), "ktirt_dkt": ("dkt",),
                  "ktirt_blend": ("model", "train", "wdirt", "dkt", "blend")}
"""the params.yaml sections each of ktirt's models is run with"""
TRAINED_SECTIONS = ("train", "wdirt", "dkt")
"""the sections that train: each gets the run's device, threads and epoch bounds"""


def model_settings(name: str, params: dict, overrides: dict, max_epochs: int | None, patience: int | None,
                   threads: int, seed: int, pykt_lr: float | None = None) -> dict:
    """Exactly what one model is run with (recorded in the JSON)."""
    if name in KTIRT_SECTIONS:
        out = {}
        for section in KTIRT_SECTIONS[name]:
            out[section] = params[section] | overrides.get(section, {})
            if section in TRAINED_SECTIONS:
                out[section] |= {"device": "auto", "threads": threads}
                out[section] |= {k: v for k, v in (("epochs", max_epochs), ("patience", patience)) if v is not None}
        if "train" in out:  # the benchmark runs its own shuffled-label control (bench/_kt_controls.py), never the stage's
            out["train"]["shuffled_control"] = False
        return out
    hyper = DEFAULTS[name] | ({"learning_rate": pykt_lr} if pykt_lr else {})
    return {"hyper_parameters": hyper, "batch_size": TRAIN_CONFIG["batch_size"],
            "seq_len": TRAIN_CONFIG["seq_len"], "max_epochs": max_epochs or TRAIN_CONFIG["num_epochs"],
            "patience": patience or TRAIN_CONFIG["patience"], "seed": seed, "threads": threads} | IMPLEMENTATION.get(name, {})


SETTABLE = ("model", "train", "wdirt", "dkt", "blend")


def parse_overrides(items: tuple[str, ...]) -> dict:
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in SETTABLE:
            raise SettingsError(f"--set {item!r}: expected SECTION.KEY=VALUE, SECTION one of {', '.join(SETTABLE)}")
        out.setdefault(section, {})[name] = yaml.safe_load(value)
    return out


def floors(data: BenchData, split: dict, scored: np.ndarray) -> dict:
    """The item-mean floor and, on simulated data, the oracle (true P(correct)) on the scored responses."""
    from ktirt.truth import event_probabilities, truth_dir

    y = data.events["correct"].to_numpy().astype(int)
    items = data.events["item_id"].to_numpy(zero_copy_only=False)
    train = np.flatnonzero(np.isin(data.users, split["train"]))
    out = {"item_mean_auc": round(float(roc_auc_score(y[scored], mean_baseline(
        items[train], y[train], items[scored], y[train].mean()))), 6)}
    truth = truth_dir(data.raw_dir)
    if truth is not None:
        oracle = event_probabilities(data.events, truth)[scored]
        ok = np.isfinite(oracle)
        out["oracle_auc"] = round(float(roc_auc_score(y[scored][ok], oracle[ok])), 6)
    return out


def stored_name(name: str, pykt_lr: float | None) -> str:
    """A pyKT model run off its published learning rate is stored beside the default run, never over it."""
    return f"{name}@lr{pykt_lr:g}" if pykt_lr and name in runners.PYKT_MODELS else name


def run_one(name: str, data: BenchData, ex: Expanded | None, split: dict, settings: dict):
    """Train and score one model on one fold: (predictions per row, training record, `again`; _kt_runners.py)."""
    if name in runners.KTIRT_RUNNERS:
        return runners.cached(name, data, split, settings)
    return runners.run_pykt(name, data, ex, split, settings)


EXECUTION_KEYS = ("threads", "device")


def _comparable(settings: dict) -> dict:
    """Settings without how a run executed (threads, device): folds run on 1 or 2 threads, or a GPU, still share
    a model's results; each fold's record keeps its own `threads`."""
    return {k: _comparable(v) if isinstance(v, dict) else v for k, v in settings.items() if k not in EXECUTION_KEYS}


def merge(results: dict, key: str, world: dict, name: str, fold: int, record: dict, settings: dict) -> dict:
    """Put one model-fold result into the results; the world's data and folds must be the ones stored."""
    entry = results.setdefault("worlds", {}).setdefault(key, {k: v for k, v in world.items()} | {"models": {}})
    for part in ("data", "folds"):
        if entry[part] != world[part]:
            raise InputError(f"results hold world '{key}' with other {part} (use another --name, or remove that "
                             f"world from the file): stored {json.dumps(entry[part])[:300]}")
    m = entry["models"].setdefault(name, {"settings": settings, "folds": {}})
    if _comparable(m["settings"]) != _comparable(settings):
        log.warning("%s: settings differ from the stored folds'; the stored ones are replaced", name)
        m["folds"] = {}
    m["settings"] = settings
    m["folds"][str(fold)] = record
    aucs = np.array([r["auc"] for r in m["folds"].values()])
    m |= {"auc_mean": round(float(aucs.mean()), 6), "auc_std": round(float(aucs.std(ddof=1)) if len(aucs) > 1 else 0.0, 6),
          "n_folds": len(aucs)}
    checked = {f: r["controls"]["ok"] for f, r in m["folds"].items() if "controls" in r}
    m |= {"controls_checked_folds": sorted(checked, key=int),
          "controls_failed_folds": sorted((f for f, ok in checked.items() if not ok), key=int)}
    m["failed"] = bool(m["controls_failed_folds"])
    return results


def merge_into(results_file: Path, *args) -> None:
    """Merge one result into the file under a lock, re-reading it first, so runs of different models in parallel
    (one per core) all land."""
    with open(results_file.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = (json.loads(results_file.read_text()) if results_file.exists()
                   else {"description": __doc__.split("\n\n")[0]})
        write_json(merge(results, *args), results_file)


def resolve_data(world, students, sim_seed, source, raw_dir) -> tuple[BenchData, dict]:
    if (world is None) == (raw_dir is None):
        raise click.UsageError("give either --world (simulated for the run) or --raw-dir (with --source)")
    if world:
        raw = simulate_world(world, students, sim_seed, ROOT / "bench" / "out" / "worlds" / f"{world}_{students}_{sim_seed}")
        data, sim = load_data(WORLD_SOURCE[world], raw), {"world": world, "students": students, "seed": sim_seed}
    else:
        data, sim = load_data(source, Path(raw_dir)), None
    return data, data.summary() | ({"simulated": sim} if sim else {})


@click.command()
@click.option("--world", type=click.Choice(sorted(WORLD_SOURCE)), help="simulate this world for the run")
@click.option("--students", default=1500, show_default=True, help="students of the simulated world")
@click.option("--sim-seed", default=2023, show_default=True)
@click.option("--source", type=click.Choice(["synthetic", "edm_cup_2023", "assistments_2009"]), default="synthetic",
              show_default=True, help="source adapter of --raw-dir")
@click.option("--raw-dir", type=click.Path(file_okay=False), help="a raw data folder (real files)")
@click.option("--name", help="results key of this data (default: the world, or SOURCE:RAW_DIR's name)")
@click.option("--models", default=",".join(runners.MODELS), show_default=True, help="comma-separated")
@click.option("--folds", "k", default=5, show_default=True)
@click.option("--folds-to-run", default="", help="comma-separated fold numbers (default: all)")
@click.option("--seed", default=2024, show_default=True, help="folds' seed")
@click.option("--val-share", default=0.15, show_default=True, help="share of a fold's training side used to validate")
@click.option("--max-epochs", type=int, help="bound every model's epochs (default: each model's own)")
@click.option("--patience", type=int, help="early-stopping patience of every model (default: each model's own)")
@click.option("--model-seed", default=42, show_default=True, help="pyKT models' seed (pyKT's default)")
@click.option("--set", "overrides", multiple=True, help="override ktirt params: SECTION.KEY=V (model, train, wdirt, dkt, blend)")
@click.option("--params", "params_path", default=str(ROOT / "params.yaml"), show_default=True)
@click.option("--pykt-lr", type=float, help="pyKT models' learning rate instead of their published one (stored as "
              "MODEL@lrVALUE, beside the default run): is a capped model held back by a slow rate?")
@click.option("--threads", default=2, show_default=True)
@click.option("--control-tolerance", default=SHUFFLED_AUC_TOLERANCE, show_default=True,
              help="a shuffled-label control passes when its test AUC is within 0.5 ± this")
@click.option("--results", "results_path", default=str(ROOT / "bench/results/kt_benchmark.json"), show_default=True)
@click.option("--out-dir", default=str(ROOT / "bench/out/kt_benchmark"), show_default=True)
@click.option("--shuffled-control-only", is_flag=True,
              help="rerun only the shuffled-label control of stored results (same settings), keeping the rest")
def main(world, students, sim_seed, source, raw_dir, name, models, k, folds_to_run, seed, val_share, max_epochs,
         patience, model_seed, overrides, params_path, pykt_lr, threads, control_tolerance, results_path,
         out_dir, shuffled_control_only) -> None:
    """Benchmark ktirt's SAKT and WD-IRT against pyKT's models on identical student folds, scored question-level:
    merges the results into bench/results/kt_benchmark.json, each model's test predictions into bench/out/kt_benchmark/."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        failed = _run(world, students, sim_seed, source, raw_dir, name, models, k, folds_to_run, seed, val_share,
                      max_epochs, patience, model_seed, overrides, params_path, pykt_lr, threads, control_tolerance,
                      results_path, out_dir, shuffled_control_only)
    except InputError as exc:
        raise click.ClickException(str(exc)) from None
    if failed:
        raise click.ClickException(f"leakage control failed (results stored, marked failed): {', '.join(failed)}")


def _run(world, students, sim_seed, source, raw_dir, name, models, k, folds_to_run, seed, val_share, max_epochs,
         patience, model_seed, overrides, params_path, pykt_lr, threads, control_tolerance, results_path,
         out_dir, shuffled_only=False) -> list[str]:
    """Every model on every fold asked for; returns 'MODEL fold F' for each whose leakage control failed."""
    names = [m.strip() for m in models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(runners.MODELS))
    if unknown or not names:
        raise SettingsError(f"--models: unknown {', '.join(unknown) or '(none)'} (choose from {', '.join(runners.MODELS)})")
    params, extra = yaml.safe_load(Path(params_path).read_text()), parse_overrides(overrides)
    data, summary = resolve_data(world, students, sim_seed, source, raw_dir)
    key = name or world or f"{data.source}:{data.raw_dir.name}"
    folds = user_folds(data.users, k, seed, val_share)
    todo = [int(f) for f in folds_to_run.split(",") if f.strip()] or list(range(k))
    if any(f < 0 or f >= k for f in todo):
        raise SettingsError(f"--folds-to-run must be in 0..{k - 1}, got {folds_to_run}")
    world_rec = {"data": summary, "folds": {"k": k, "seed": seed, "val_share": val_share, "test_users_sha256": [
        ids_digest(f["test"]) for f in folds]}, "scoring": __doc__.split("- Scoring: ")[1].split("\n- ")[0].replace("\n  ", " ")}
    ex = Expanded.build(data.events) if set(names) & set(runners.PYKT_MODELS) else None
    results_file, failed = Path(results_path), []
    for f in todo:
        split, scored = folds[f], scored_rows(data.users, folds[f]["test"])
        base = {"fold": f, "train_users": len(split["train"]), "val_users": len(split["val"]),
                "test_users": len(split["test"]), "scored_responses": len(scored), "scored_sha256": ids_digest(scored)}
        fl = floors(data, split, scored)
        for m in names:
            settings = model_settings(m, params, extra, max_epochs, patience, threads, model_seed, pykt_lr)
            stored = stored_name(m, pykt_lr)
            log.info("%s, fold %d/%d: %s on %d test students (%d scored responses)", key, f + 1, k, stored, len(split["test"]), len(scored))
            store = lambda record: merge_into(results_file, key, world_rec, stored, f, record, settings)  # noqa: E731
            ctx = (data, ex, split, scored, settings, model_seed, control_tolerance)
            audit_file = Path(out_dir) / key.replace(":", "_").replace("/", "_") / f"{stored}_fold{f}.csv"
            if shuffled_only:
                record = rerun_shuffled_control(m, ctx, stored_record(results_file, key, stored, f, settings), store)
            else:
                record = run_model_fold(m, ctx, base | {"threads": threads} | fl, audit_file, store)
            if not record["controls"]["ok"]:
                failed.append(f"{stored} fold {f}")
    return failed


def stored_record(results_file: Path, key: str, name: str, fold: int, settings: dict) -> dict:
    """The stored result of `name` on `fold`, run with `settings` (the shuffled-control rerun's starting point)."""
    try:
        model = json.loads(results_file.read_text())["worlds"][key]["models"][name]
        record = model["folds"][str(fold)]
    except (OSError, KeyError, json.JSONDecodeError):
        raise SettingsError(f"--shuffled-control-only: {results_file} holds no result of {name} on fold {fold} "
                            f"of '{key}' (run it first)") from None
    if _comparable(model["settings"]) != _comparable(settings) or "future_masking" not in record.get("controls", {}):
        raise SettingsError(f"--shuffled-control-only: {name}'s stored fold {fold} ran with other settings or "
                            "without the controls (rerun it whole)")
    return record


def rerun_shuffled_control(m: str, ctx: tuple, record: dict, store) -> dict:
    """A stored result with its shuffled-label control run again (future masking kept), stored."""
    data, ex, split, scored, settings, seed, tolerance = ctx
    control = _kt_controls.shuffled_labels(run_one, m, data, ex, split, settings, scored, seed, tolerance)
    record["controls"] = _kt_controls.verdict(m, record["controls"]["future_masking"], control)
    store(record)
    return record


def run_model_fold(m: str, ctx: tuple, base: dict, audit_file: Path, store) -> dict:
    """One model on one fold: train and score, store the result; write the predictions and store kt-audit's
    verdict (a failed audit as one); run the leakage controls and store them. Each step's result is stored
    before the next can fail."""
    data, ex, split, scored, settings, seed, tolerance = ctx
    t0 = time.perf_counter()
    p, info, again = run_one(m, data, ex, split, settings)
    if np.isnan(p[scored]).any():
        raise RuntimeError(f"{m} left {int(np.isnan(p[scored]).sum())} scored responses without a prediction")
    y = data.events["correct"].to_numpy().astype(int)
    auc = float(roc_auc_score(y[scored], p[scored]))
    record = base | {"auc": round(auc, 6)} | info | {"wall_seconds": round(time.perf_counter() - t0, 1)}
    store(record)
    log.info("fold %d: %s AUC %.4f (item-mean %.4f%s), %d epochs", base["fold"], m, auc, base["item_mean_auc"],
             f", oracle {base['oracle_auc']:.4f}" if "oracle_auc" in base else "", info["epochs"])
    train_rows = np.flatnonzero(np.isin(data.users, split["train"]))
    _kt_audit.write_predictions(_kt_audit.prediction_frame(data.events, scored, p, train_rows), audit_file)
    record["kt_audit"] = _kt_audit.audit(audit_file, auc)
    store(record)
    record["controls"] = _kt_controls.run_controls(run_one, m, data, ex, split, settings, scored, again, seed,
                                                   tolerance)
    store(record)
    return record


if __name__ == "__main__":
    main()
