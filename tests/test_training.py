"""The one epoch loop both engines train with (ktirt/training.py): a loss that stops being a number stops
training in one line naming the learning rate, and leaves no DVCLive log behind; its early stopping
(ktirt/early_stopping.py) restarts the patience only on a gain above min_delta, and each engine's setting reaches it."""

import sys

import pytest
import torch

from conftest import ROOT
from ktirt.early_stopping import EarlyStopping
from ktirt.errors import SettingsError
from ktirt.io import outputs
from ktirt.training import fit_epochs

sys.path.insert(0, str(ROOT / "stages"))
from _training import live_epochs  # noqa: E402


def _fit(losses: list[float], on_epoch=None, lr_setting="train.lr"):
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1.0e6)
    seen = iter(losses)

    def batch_loss(rows):
        return model.weight.sum() * 0 + next(seen), len(rows)

    return fit_epochs(model, opt, lambda: torch.arange(4), 2, batch_loss, lambda: 0.5, 3, 2, on_epoch,
                      lr_setting=lr_setting)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_loss_that_is_not_a_number_names_the_learning_rate(bad):
    with pytest.raises(SettingsError) as err:
        _fit([0.7, 0.6, 0.5, bad, 0.4, 0.3], lr_setting="wdirt.lr")
    assert str(err.value) == f"wdirt.lr: training diverged (the loss became {bad} in epoch 2); the learning rate is " \
                             "likely too large, got 1e+06"


def test_a_finite_loss_trains_every_epoch():
    hist = _fit([0.7, 0.6] * 3)
    assert hist.epoch == [1, 2, 3] and hist.train_loss == pytest.approx([0.65, 0.65, 0.65])


def test_a_failed_run_leaves_no_dvclive_log(tmp_path):
    """As in a stage (its outputs are one transaction): a new log is removed, an earlier run's is put back."""
    live = tmp_path / "dvclive" / "sakt"
    with pytest.raises(SettingsError), outputs():
        with live_epochs(live) as on_epoch:
            _fit([0.7, 0.6, float("nan")], on_epoch)
    assert not live.exists()
    with outputs(), live_epochs(live) as on_epoch:  # a run that ends keeps its log
        _fit([0.7] * 6, on_epoch)
    kept = (live / "metrics.json").read_bytes()
    with pytest.raises(SettingsError), outputs():
        with live_epochs(live) as on_epoch:
            _fit([0.5, float("nan")], on_epoch)
    assert (live / "metrics.json").read_bytes() == kept


def _stopped_at(scores: list[float], min_delta: float) -> tuple[int | None, int]:
    """(the epoch training stopped after, None when it used every score; the best epoch), patience 2."""
    model, stop = torch.nn.Linear(1, 1), EarlyStopping(patience=2, min_delta=min_delta)
    stopped = None
    for epoch, score in enumerate(scores, 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        if stop.step(epoch, score, model):
            stopped = epoch
            break
    stop.restore(model)
    assert model.weight.item() == stop.best_epoch  # the best epoch's weights came back
    return stopped, stop.best_epoch


def test_min_delta_restarts_patience_only_on_a_real_gain_and_keeps_the_best_epoch():
    wandering = [0.70, 0.7004, 0.7008, 0.7003, 0.7009, 0.6990, 0.6990, 0.6990]
    assert _stopped_at(wandering, 0.0) == (7, 5)  # each small step up restarted the patience
    assert _stopped_at(wandering, 0.001) == (3, 3)  # two epochs without +0.001 over epoch 1; epoch 3 is kept
    assert _stopped_at([0.70, 0.702, 0.704, 0.7045, 0.7046, 0.7046], 0.001) == (5, 5)
    assert _stopped_at([0.70, 0.702, 0.704, 0.7045, 0.7046, 0.7046], 0.0) == (None, 5)
    # a NaN first epoch ranks below every score: the next real score is a gain, whatever min_delta
    assert _stopped_at([float("nan"), 0.6, 0.6, 0.6, 0.6], 0.001) == (4, 2)


def test_each_engine_passes_its_min_delta(monkeypatch, tiny_tables, split):
    """train.min_delta, wdirt.min_delta and dkt.min_delta reach the early stopping of their engine's epoch loop."""
    import ktirt.training as training
    from ktirt.blend.dkt_run import run_dkt
    from ktirt.irt.wdirt_run import run_wdirt
    from ktirt.kt.sakt_run import SaktRun, run_sakt
    from ktirt.settings import DKTSettings, ModelSettings, TrainSettings, WDIRTSettings

    seen = []

    class Recorded(EarlyStopping):
        def __init__(self, patience, min_delta=0.0):
            seen.append(min_delta)
            super().__init__(patience, min_delta)

    monkeypatch.setattr(training, "EarlyStopping", Recorded)
    events, one_epoch = tiny_tables.events, dict(epochs=1, device="cpu", threads=1)
    run_sakt(events, split, SaktRun(ModelSettings(emb_size=8, num_heads=2, seq_len=12),
                                    TrainSettings(min_delta=0.011, **one_epoch), None))
    run_wdirt(events, tiny_tables.unit_tests, split, WDIRTSettings(history_len=4, hidden=8, min_delta=0.022,
                                                                   drift_min_responses=5, **one_epoch))
    run_dkt(events, split, DKTSettings(hidden=8, seq_len=12, min_delta=0.033, **one_epoch))
    assert seen == [0.011, 0.022, 0.033]
