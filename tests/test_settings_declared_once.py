"""Each setting is declared once (ktirt/settings.py): its section model's field, whose default is params.yaml's
value; the library's settings classes are those models or take their fields from them, so code that runs
without a params file gets the pipeline's settings."""

import pytest
import yaml

from conftest import ROOT
from ktirt.exports.build import ExportSettings
from ktirt.irt.drift import DriftSettings
from ktirt.irt.wdirt_run import WDIRTSettings
from ktirt.kt.sakt_training import TrainSettings
from ktirt.models.dkt import DKTConfig
from ktirt.models.sakt import SAKTConfig
from ktirt.models.wdirt import WDIRTConfig
from ktirt.settings import SECTIONS, ModelSettings, Params, check_params
from ktirt.simulate import SimulationConfig

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_params_yaml_has_every_section_and_no_other():
    assert list(PARAMS) == list(SECTIONS) == list(Params.model_fields)


@pytest.mark.parametrize("section", list(SECTIONS))
def test_the_defaults_are_params_yaml(section):
    model = SECTIONS[section]
    assert model() == model(**PARAMS[section])
    assert model().model_dump(include=set(PARAMS[section])) == PARAMS[section]


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_params_yaml_key_is_a_field_and_every_field_a_key(section):
    fields = SECTIONS[section].model_fields
    optional = {k for k, f in fields.items() if (f.json_schema_extra or {}).get("optional")}
    assert list(PARAMS[section]) == [k for k in fields if k not in optional]  # same keys, same order
    assert all(f.description for f in fields.values()), "every setting says what it is"


def test_the_only_optional_setting():
    """Optional: a params file may leave it out, and the model's default applies (not in params.yaml)."""
    optional = [f"{s}.{k}" for s, m in SECTIONS.items() for k, f in m.model_fields.items()
                if (f.json_schema_extra or {}).get("optional")]
    assert optional == ["wdirt.wide_lr_factor"]


def test_the_whole_file_model_is_the_defaults():
    assert check_params(PARAMS) == PARAMS
    assert Params.model_validate(PARAMS) == Params(**{s: m() for s, m in SECTIONS.items()})


def test_the_library_classes_have_params_yaml_values():
    assert WDIRTSettings() == WDIRTSettings(**PARAMS["wdirt"])
    assert TrainSettings() == TrainSettings(**PARAMS["train"])
    assert ExportSettings() == ExportSettings(**PARAMS["export"])
    assert SimulationConfig().model_dump() == PARAMS["simulate"]
    assert (WDIRTSettings().prior_strength, WDIRTSettings().patience, TrainSettings().lr) == (3.0, 3, 0.003)
    w = PARAMS["wdirt"]
    assert DriftSettings() == DriftSettings.of(WDIRTSettings())
    assert DriftSettings().model_dump() == {"window": w["drift_window"], "z_threshold": w["drift_z"],
                                            "min_shift": w["drift_min_shift"], "min_responses": w["drift_min_responses"],
                                            "fdr": w["drift_fdr"]}
    sakt = SAKTConfig(n_items=2, n_skills=2)
    assert {k: v for k, v in PARAMS["model"].items() if k in SAKTConfig.model_fields} == sakt.model_dump(exclude={
        "n_items", "n_skills", "n_diff", "n_clicks", "n_practice"})
    assert sakt.question_keys is True and sakt == SAKTConfig.of(ModelSettings(), n_items=2, n_skills=2)
    wd = WDIRTConfig(n_items=2, n_skills=2, n_features=3)
    assert (wd.hidden, wd.dropout, wd.discrimination) == (w["hidden"], w["dropout"], w["discrimination"])
    dkt = DKTConfig(n_skills=2)
    assert (dkt.hidden, dkt.dropout, dkt.seq_len) == tuple(PARAMS["dkt"][k] for k in ("hidden", "dropout", "seq_len"))


def test_derived_classes_keep_the_section_rules_and_messages():
    from ktirt.errors import SettingsError

    with pytest.raises(SettingsError, match=r"^wdirt\.drift_window: must be a pandas period"):
        DriftSettings(window="X")
    with pytest.raises(SettingsError, match=r"^model\.emb_size: must be divisible by model\.num_heads \(4\), got 63$"):
        SAKTConfig(n_items=2, n_skills=2, emb_size=63)
    with pytest.raises(SettingsError, match=r"^model\.n_items: missing setting$"):
        SAKTConfig(n_skills=2)
    with pytest.raises(SettingsError, match=r"^simulate\.n_items: must be an integer or auto, got 'many'$"):
        SimulationConfig(n_items="many")
