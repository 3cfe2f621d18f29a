"""Every params.yaml setting, declared once: one typed pydantic model per section (type, range, choices, default,
description), checked before a stage does any work.

Adding a setting is one field in its section model plus its value in params.yaml. The defaults are params.yaml's
values (tests/test_settings_declared_once.py keeps the two equal), so code that builds a settings class without a
params file, `WDIRTSettings()`, gets the pipeline's settings. A rule that ties settings together is a model
validator of its section, written once. The library's settings classes are these models (TrainSettings,
WDIRTSettings, ExportSettings) or subclasses of them (SimulationConfig), or take their fields from them (`derive`:
DriftSettings, SAKTConfig, WDIRTConfig). Whatever builds them, a bad value is one line,
`<section>.<key>: <what is wrong>, got <value>` (SettingsError); pydantic's own error text never reaches the user.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ktirt.errors import SettingsError
from ktirt.settings_base import OPTIONAL, cap, integral_floats, Device, IsoDate, Period, Section, Text, broken, derive, given, hint, line

__all__ = ["MEMBERS", "OPTIONAL", "PROFILES", "SECTIONS", "SOURCES", "BlendSettings", "DataSettings", "DKTSettings", "ExportSettings", "JoinSettings", "ModelSettings",
           "Params", "PyktSettings", "ReportSettings", "Section", "SimulateSettings", "SplitSettings", "TrainSettings",
           "WDIRTSettings", "check_params", "derive"]

Source = Literal["synthetic", "edm_cup_2023", "assistments_2009", "ednet_kt1"]
SOURCES = get_args(Source)
"""data.source: the keys of `ktirt.sources.SOURCES` (a test keeps them equal), named here because importing
the adapters would make every stage, all of which check params.yaml, depend on ktirt/sources/."""
MAX_WINDOW = 1024
WINDOW_CAP = "SAKT's attention holds batch x heads x window^2 numbers, pyKT's files pad every window to it"
"""the longest sequence window (pykt.seq_len, model.seq_len): at 1024, batch 64 and 4 heads, 1 GiB"""
Member = Literal["sakt", "wdirt", "dkt"]
MEMBERS = get_args(Member)
"""blend.members: the models whose predictions the blend can stack (ktirt/blend/members.py reads each)"""
Profile = Literal["edm_cup", "skill_builder", "ednet_kt1"]
PROFILES = get_args(Profile)
"""simulate.profile: the world the simulator writes (edm_cup: EDM Cup 2023's tables, the default)"""


class DataSettings(Section):
    """Where the events come from."""

    source: Source = Field("synthetic", description="synthetic (the simulator's EDM Cup tables) or a real release")
    raw_dir: Text = Field("data/raw/synthetic", description="the source's raw files")
    part_mb: int = Field(384, ge=1, le=1_000_000, json_schema_extra=cap("a bound on memory"),
                         description="EDM Cup's action log and EdNet KT1's files are read in parts of about this many MB (prepare holds one)")


class SimulateSettings(Section):
    """The embedded default simulation (ktirt/simulate documents the generative model)."""

    profile: Profile = Field("edm_cup", description="edm_cup: EDM Cup 2023's tables; skill_builder: ASSISTments "
                             "2009's skill-builder file (seed and n_students only); ednet_kt1: the edm_cup world's "
                             "responses as EdNet KT1's one CSV per student")
    seed: int = Field(2023, ge=0, description="seeds the simulation")
    n_students: int = Field(2000, ge=1, le=2_000_000, json_schema_extra=cap("the simulator holds every student in memory"), description="students (35000 gives EDM-Cup scale; EdNet KT1 has 784,309)")
    n_skills: int = Field(24, ge=1, le=100_000, json_schema_extra=cap("a bound on memory"), description="skills, one unit each")
    n_items: Annotated[int, Field(ge=1, le=10_000_000)] | Literal["auto"] = Field(
        "auto", json_schema_extra=cap("a bound on memory"), description="item bank size; auto: 1.05 items per student, EDM Cup 2023's ratio")
    class_size: int = Field(25, ge=1, le=10_000, json_schema_extra=cap("a bound on memory"), description="students per class")
    units_per_class: int = Field(4, ge=1, description="a unit: problem sets on one skill, then a unit test")
    assignments_per_unit: int = Field(3, ge=1, description="problem sets per unit")
    problems_per_assignment: int = Field(18, ge=1, description="problems per problem set")
    unit_test_size: int = Field(6, ge=1, description="problems per unit test")
    drift_fraction: float = Field(0.05, ge=0, lt=1, description="share of the item bank whose difficulty shifts after a date")
    drift_shift: float = Field(1.2, ge=0, description="the shift, in logits")
    evaluation_fraction: float = Field(0.2, gt=0, lt=1, description="unit-test logs whose scores are withheld "
                                       "(evaluation_unit_test_scores.csv; 0 or 1 leaves a score file empty)")
    start_date: IsoDate = Field("2022-08-29", description="the first school day, YYYY-MM-DD")
    batch_students: int = Field(10_000, ge=1, description="edm_cup and ednet_kt1 profiles: students (whole classes) simulated "
                                "and written at once, so memory follows this, not n_students; a world of at most "
                                "this many is one batch, drawn from the seed's generator; a larger one batch by batch, "
                                "batch k from a generator seeded by (seed, k)")

    @property
    def bank_minimum(self) -> int:
        """Items enough for one unit test and one problem set per skill."""
        return self.n_skills * (self.unit_test_size + self.problems_per_assignment)

    @model_validator(mode="after")
    def _world_fits(self):
        if self.units_per_class > self.n_skills:
            raise broken("units_per_class", f"must be ≤ simulate.n_skills ({self.n_skills}), got {self.units_per_class}")
        if self.n_items != "auto" and self.n_items < self.bank_minimum:
            raise broken("n_items", f"must be ≥ {self.bank_minimum} for {self.n_skills} skills (one unit test and one "
                                    f"problem set each), got {self.n_items}")
        return self


class SplitSettings(Section):
    """User-level train/val/test split (ktirt/split.py)."""

    seed: int = Field(7, ge=0, description="seeds the shuffle of the users")
    train: float = Field(0.7, gt=0, lt=1, description="share of users who train")
    val: float = Field(0.15, gt=0, lt=1, description="share of users who validate (early stopping needs some); "
                       "test is the rest")
    min_students: int = Field(20, ge=1, description="fewest validation and fewest test students a split may have: "
                              "an AUC on fewer says little (a 1-student test split once scored 0.391 on 26 responses)")

    @model_validator(mode="after")
    def _test_is_the_rest(self):
        if self.train + self.val >= 1:
            raise broken("train + split.val", f"must be < 1 (test is the rest), got {self.train} + {self.val}")
        return self


class PyktSettings(Section):
    """pyKT's files (data/processed/pykt)."""

    seq_len: int = Field(200, ge=2, le=MAX_WINDOW, json_schema_extra=cap(WINDOW_CAP), description="window length (maxlen): a window predicts each response from the ones before it")
    folds: int = Field(5, ge=2, le=100, json_schema_extra=cap("a bound on time"), description="fold 0 = validation students, 1.. = training students")


class ModelSettings(Section):
    """Our SAKT (ktirt/models/sakt.py documents each option)."""

    emb_size: int = Field(64, ge=1, le=4096, json_schema_extra=cap("a bound on memory"), description="embedding size, divisible by num_heads")
    num_heads: int = Field(4, ge=1, le=64, json_schema_extra=cap("a bound on memory"), description="attention heads")
    num_blocks: int = Field(1, ge=1, le=32, json_schema_extra=cap("a bound on memory and time"), description="attention blocks")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout on the input embeddings and after each sublayer")
    seq_len: int = Field(200, ge=2, le=MAX_WINDOW, json_schema_extra=cap(WINDOW_CAP), description="window length")
    min_item_count: int = Field(1000, ge=0, description="items answered this often in training get a full embedding")
    item_difficulty: bool = Field(True, description="every item seen in training gets a difficulty scalar (Rasch-style, AKT)")
    item_prior: float = Field(4.0, ge=0, description="precision of the Gaussian prior shrinking item difficulties toward their skills")
    multi_skill: bool = Field(True, description="a response carries all its skills (false: the first only)")
    clickstream: bool = Field(True, description="a past interaction carries its help request, attempts and latency band")
    recency: bool = Field(False, description="heads learn a decay with log distance (forgetting)")
    question_keys: bool = Field(True, description="attention compares the question asked with the questions answered (AKT)")
    practice: bool = Field(True, description="the query carries, per skill, the attempts so far and the last outcome")
    deep_head: bool = Field(False, description="output: a 2-layer MLP on the attention output and the question")

    @model_validator(mode="after")
    def _heads_split_the_embedding(self):
        if self.emb_size % self.num_heads:
            raise broken("emb_size", f"must be divisible by model.num_heads ({self.num_heads}), got {self.emb_size}")
        return self


# what each torch run (the training loop, ktirt/training.py; export's scoring) reads; each section gives its default
Windows = Annotated[int, Field(ge=1, le=65_536, json_schema_extra=cap("a bound on memory"), description="windows per step")]
LearningRate = Annotated[float, Field(gt=0, le=1.0, json_schema_extra=cap("a larger step makes Adam diverge"),
                                      description="Adam's learning rate (above 1 training diverges)")]
Epochs = Annotated[int, Field(ge=1, le=10_000, json_schema_extra=cap("a bound on time"), description="at most this many epochs")]
Patience = Annotated[int, Field(ge=1, description="stop after this many epochs without a validation AUC better by "
                                "more than min_delta")]
MinDelta = Annotated[float, Field(ge=0, lt=1, description="an epoch counts as better only when its validation AUC beats "
                                  "the last such epoch's by more than this (the best epoch's weights are kept either "
                                  "way): a converged run's AUC wanders by about 0.0005 from epoch to epoch")]
Seed = Annotated[int, Field(ge=0, description="seeds numpy and torch")]
TorchDevice = Annotated[Device, Field(description="auto: CUDA when present, else CPU")]
Threads = Annotated[int, Field(ge=1, le=1024, json_schema_extra=cap("more threads than any machine has"),
                               description="torch's CPU threads")]


ShardWindows = Annotated[int, Field(ge=1, le=10_000_000, json_schema_extra=cap("a bound on memory"),
                                    description="windows per shard: a split's windows past one shard are kept on "
                                    "disk and read back one shard at a time (ktirt/kt/window_sets.py), so training "
                                    "memory stays flat as the log grows")]


class TrainSettings(Section):
    """SAKT training (ktirt/kt/sakt_training.py)."""

    batch_size: Windows = 64
    lr: LearningRate = 0.003
    epochs: Epochs = 30
    patience: Patience = 3
    min_delta: MinDelta = 0.0005
    seed: Seed = 42
    device: TorchDevice = "auto"
    threads: Threads = 2
    shard_windows: ShardWindows = 8192
    shuffled_control: bool = Field(False, description="also train once with every split's outcomes shuffled and report "
                                   "that run's test AUC against the shuffled test outcomes (a leakage control, "
                                   "ktirt/leakage.py; doubles training time)")


class WDIRTSettings(Section):
    """Wide & Deep IRT (ktirt/models/wdirt.py) and its drift test (ktirt/irt/drift.py)."""

    history_len: int = Field(50, ge=1, le=1000, json_schema_extra=cap("a batch scores targets x history_len pairs at once"), description="events of clickstream history behind each prediction (a batch scores batch_size x history_len pairs at once)")
    hidden: int = Field(64, ge=1, le=4096, json_schema_extra=cap("a bound on memory"), description="width of the deep part")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout of the deep part")
    discrimination: bool = Field(True, description="false: 1PL (a = 1)")
    prior_strength: float = Field(3.0, ge=0, description="Gaussian prior pulling item difficulties toward their skill's mean")
    skill_prior_strength: float = Field(1.0, gt=0, description="Gaussian prior pulling skills' mean difficulties toward "
                                        "the mean over skills (so an all-wrong or all-right skill stays finite)")
    calibration_sweeps: int = Field(200, ge=1, le=100_000, description="the most block-Newton sweeps of each item "
                                    "calibration (ktirt/irt/newton_calibration.py; it stops sooner once two sweeps in a "
                                    "row move the loss by less than 1e-9): a bound on time on very large logs")
    batch_size: int = Field(1024, ge=1, le=1_048_576, json_schema_extra=cap("a bound on memory"), description="targets per step")
    lr: LearningRate = Field(0.01, description="Adam's learning rate of the deep part (above 1 training diverges)")
    wide_lr_factor: float = Field(5.0, gt=0, le=1000, json_schema_extra=OPTIONAL | cap("a larger step makes Adam diverge"), description="the wide part's learning rate, "
                                  "times lr (optional in params.yaml)")
    epochs: Epochs = 20
    patience: Patience = 3
    min_delta: MinDelta = 0.0005
    seed: Seed = 42
    device: TorchDevice = "auto"
    threads: Threads = 2
    drift_window: Period = Field("W", description="drift windows, a pandas period: W = week (M = calendar month)")
    drift_z: float = Field(3.0, gt=0, description="a flagged window's |z| is above this")
    drift_fdr: float = Field(0.1, gt=0, lt=1, description="and its item passes Benjamini-Hochberg over items at this level")
    drift_min_shift: float = Field(0.5, ge=0, description="and its difficulty shift is above this, in logits")
    drift_min_responses: int = Field(20, ge=1, description="responses per window and before it, else the window is not tested")
    block_events: int = Field(1_048_576, ge=1, description="events of the block of whole students WD-IRT holds at once "
                              "(its targets wait on disk, under $TMPDIR): memory follows it, not the log; a log "
                              "of up to this many events is one block")


class DKTSettings(Section):
    """DKT, the blend's recurrent member (ktirt/models/dkt.py), and its training."""

    hidden: int = Field(64, ge=1, le=4096, json_schema_extra=cap("a bound on memory"), description="embedding and LSTM state size")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout on the LSTM's input and output")
    seq_len: int = Field(200, ge=2, le=MAX_WINDOW, json_schema_extra=cap("a bound on time: the LSTM steps through a window one response at a time"), description="window length (windows as SAKT's)")
    item_prior: float = Field(4.0, ge=0, description="precision of the Gaussian prior shrinking item difficulties toward 0")
    batch_size: Windows = 64
    lr: LearningRate = 0.006
    epochs: Epochs = 30
    patience: Patience = 3
    min_delta: MinDelta = 0.0005
    seed: Seed = 42
    device: TorchDevice = "auto"
    threads: Threads = 2
    shard_windows: ShardWindows = 8192


class ExportSettings(Section):
    """data/exports/ (ktirt/exports)."""

    mastery_items: int = Field(3, ge=1, le=100, json_schema_extra=cap("a bound on time"), description="typical items per skill (nearest its median WD-IRT difficulty) "
                               "mastery asks SAKT about")
    falling_drop: float = Field(0.1, ge=0, le=1, description="mastery report: students whose mastery ends this far "
                                "below its peak on a skill")
    batch_size: int = Field(128, ge=1, le=65_536, json_schema_extra=cap("a bound on memory"), description="windows per SAKT scoring batch")
    device: TorchDevice = "auto"
    threads: Threads = 2


class JoinSettings(Section):
    """validate_join: fails below min_coverage or on any key-type mismatch."""

    min_coverage: float = Field(0.8, ge=0, le=1, description="share of SAKT predictions whose item has WD-IRT parameters")
    samples: int = Field(10, ge=0, le=1000, json_schema_extra=cap("a bound on the report's length"), description="sample students in data/exports/join_report.md")
    seed: int = Field(0, ge=0, description="seeds the sample")


class ReportSettings(Section):
    """data/exports/report.html, one offline page (ktirt/report)."""

    students: int = Field(200, ge=1, le=100_000, json_schema_extra=cap("the page carries each one's trajectory: 200 make 3.3 MB"), description="students whose trajectories the page carries: join.samples' first, "
                          "then test students")


class BlendSettings(Section):
    """The blend (ktirt/blend): a logistic regression on its members' logits, fitted on validation students."""

    members: list[Member] = Field(["sakt", "wdirt", "dkt"], min_length=1, description="the models it stacks, each "
                                  "once (sakt, wdirt, dkt)")
    item_count: bool = Field(False, description="also a feature: log(1 + the item's responses by training students), and "
                             "its product with each logit (no gain on either simulated world)")
    l2: float = Field(1.0, gt=0, le=1e6, json_schema_extra=cap("a bound that keeps weights a number"),
                      description="strength of the L2 penalty on the weights (scikit-learn's 1 / C)")

    @model_validator(mode="after")
    def _each_member_once(self):
        if len(set(self.members)) < len(self.members):
            raise broken("members", f"must name each member once, got {list(self.members)}")
        return self


class Params(BaseModel):
    """The whole params.yaml: every section, each giving every setting but the optional ones."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    data: Annotated[DataSettings, given(DataSettings)]
    simulate: Annotated[SimulateSettings, given(SimulateSettings)]
    split: Annotated[SplitSettings, given(SplitSettings)]
    pykt: Annotated[PyktSettings, given(PyktSettings)]
    model: Annotated[ModelSettings, given(ModelSettings)]
    train: Annotated[TrainSettings, given(TrainSettings)]
    wdirt: Annotated[WDIRTSettings, given(WDIRTSettings)]
    dkt: Annotated[DKTSettings, given(DKTSettings)]
    export: Annotated[ExportSettings, given(ExportSettings)]
    join: Annotated[JoinSettings, given(JoinSettings)]
    report: Annotated[ReportSettings, given(ReportSettings)]
    blend: Annotated[BlendSettings, given(BlendSettings)]


SECTIONS: dict[str, type[Section]] = {name: f.annotation for name, f in Params.model_fields.items()}
for _name, _model in SECTIONS.items():
    _model.section = _name


def check_params(params) -> dict:
    """The whole params file: every section, every required key, nothing unknown; returns `params`, an integer
    setting given as an integral float (64.0) as the integer. The first
    problem (unknown sections first, then sections in Params' order) is one SettingsError line."""
    if not isinstance(params, dict):
        raise SettingsError(f"must be a mapping of sections ({', '.join(SECTIONS)}), got {type(params).__name__}")
    params = {name: integral_floats(SECTIONS[name], v) if name in SECTIONS else v for name, v in params.items()}
    try:
        Params.model_validate(params)
    except ValidationError as exc:
        order = list(SECTIONS)
        err = min(exc.errors(), key=lambda e: order.index(e["loc"][0]) if e["loc"][0] in SECTIONS else -1)
        name = str(err["loc"][0])
        if name not in SECTIONS:
            raise SettingsError(f"{name}: unknown section ({hint(name, SECTIONS)})") from None
        if err["type"] == "missing":
            raise SettingsError(f"{name}: missing section") from None
        raise SettingsError(line(err | {"loc": err["loc"][1:]}, SECTIONS[name], params[name])) from None
    return params
