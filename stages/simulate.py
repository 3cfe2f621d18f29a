"""Stage `simulate`: write the embedded default, EDM Cup 2023 tables from the seeded generative model (or, with
`simulate.profile: skill_builder`, the second world as ASSISTments 2009's skill-builder file; with
`simulate.profile: ednet_kt1`, the default world as EdNet KT1's one CSV per student)."""

import logging

import click
from _stage import OutputPath, load_params, params_option, stage

from ktirt.errors import SettingsError
from ktirt.io import atomic_path
from ktirt.simulate import SimulationConfig, simulate

log = logging.getLogger("simulate")
PLACEHOLDER = "NOT_SIMULATED.txt"
READ_AS = {"edm_cup": "synthetic", "skill_builder": "assistments_2009", "ednet_kt1": "ednet_kt1"}
"""the data.source that reads each profile's files: with it the stage simulates, with another it writes a note"""
WRITES = {"skill_builder": "ASSISTments 2009's skill_builder_data.csv", "ednet_kt1": "EdNet KT1's files"}


@click.command()
@params_option
@click.option("--out", default="data/raw/synthetic", show_default=True, type=OutputPath("folder"))
@stage
def main(params_path: str, out: str) -> None:
    """Simulate the raw tables that data.source reads: reads params.yaml's simulate section and data.source, writes
    data/raw/synthetic/ (EDM Cup 2023's tables, with simulate.profile: skill_builder ASSISTments 2009's
    skill_builder_data.csv, with simulate.profile: ednet_kt1 EdNet KT1's KT1/ and contents/; the generative
    model's truth in _truth/).

    With a real source the stage still runs (DVC has no optional stages) but costs nothing: its folder
    holds only a note, so a real-data experiment does not spend minutes simulating what it never reads."""
    cfg = SimulationConfig.from_dict(load_params(params_path, "simulate"))
    source = load_params(params_path, "data").get("source", "synthetic")
    if cfg.profile != "edm_cup" and source == "synthetic":
        raise SettingsError(f"simulate.profile {cfg.profile} writes {WRITES[cfg.profile]}: read it with data.source: "
                            f"{READ_AS[cfg.profile]}")
    with atomic_path(out) as tmp:
        if source == READ_AS[cfg.profile]:
            simulate(cfg, tmp)
            return
        tmp.mkdir()
        (tmp / PLACEHOLDER).write_text(f"Nothing simulated: data.source is {source!r} in {params_path}.\n"
                                       "Set data.source: synthetic to write the simulated EDM Cup 2023 tables here "
                                       "(or simulate.profile: skill_builder with data.source: assistments_2009, "
                                       "simulate.profile: ednet_kt1 with data.source: ednet_kt1).\n", encoding="utf-8")
        log.info("data.source is %r: nothing to simulate (wrote %s/%s)", source, out, PLACEHOLDER)


if __name__ == "__main__":
    main()
