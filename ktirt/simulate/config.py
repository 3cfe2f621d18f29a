"""Settings of the embedded default simulation, validated once so bad params fail before any work."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ktirt.settings import check_section

ITEMS_PER_STUDENT = 1.05
"""EDM Cup 2023's ratio (about 36.8 k problems for 35 k students): `n_items: auto` scales the bank with it."""


@dataclass(frozen=True)
class SimulationConfig:
    profile: str = "edm_cup"
    """the world simulated (ktirt.settings.PROFILES)"""
    seed: int = 2023
    n_students: int = 2000
    n_skills: int = 24
    n_items: int | str = "auto"
    class_size: int = 25
    units_per_class: int = 4
    assignments_per_unit: int = 3
    problems_per_assignment: int = 18
    unit_test_size: int = 6
    drift_fraction: float = 0.05
    drift_shift: float = 1.2
    evaluation_fraction: float = 0.2
    start_date: str = "2022-08-29"

    @classmethod
    def from_dict(cls, d: dict) -> "SimulationConfig":
        return cls(**check_section("simulate", d)).validated()

    @property
    def items(self) -> int:
        """The item bank size, `n_items` or, when it is `auto`, 1.05 items per student (at least enough
        for one unit test and one problem set per skill)."""
        if self.n_items != "auto":
            return int(self.n_items)
        need = self.n_skills * (self.unit_test_size + self.problems_per_assignment)
        return max(round(ITEMS_PER_STUDENT * self.n_students), need)

    def validated(self) -> "SimulationConfig":
        """Types, ranges and the bank-size and units-per-class rules: ktirt.settings' `simulate` section."""
        check_section("simulate", asdict(self))
        return self

    def to_dict(self) -> dict:
        return asdict(self) | {"items": self.items}
