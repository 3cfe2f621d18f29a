"""Settings of the embedded default simulation, validated once so bad params fail before any work."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ktirt.errors import SettingsError, check_known

ITEMS_PER_STUDENT = 1.05
"""EDM Cup 2023's ratio (about 36.8 k problems for 35 k students): `n_items: auto` scales the bank with it."""


@dataclass(frozen=True)
class SimulationConfig:
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
        check_known("simulate", d, {f.name for f in fields(cls)})
        return cls(**d).validated()

    @property
    def items(self) -> int:
        """The item bank size, `n_items` or, when it is `auto`, 1.05 items per student (at least enough
        for one unit test and one problem set per skill)."""
        if self.n_items != "auto":
            return int(self.n_items)
        need = self.n_skills * (self.unit_test_size + self.problems_per_assignment)
        return max(round(ITEMS_PER_STUDENT * self.n_students), need)

    def validated(self) -> "SimulationConfig":
        for name in ("n_students", "n_skills", "class_size", "units_per_class", "assignments_per_unit",
                     "problems_per_assignment", "unit_test_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise SettingsError(f"simulate.{name} must be a positive integer, got {v!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise SettingsError(f"simulate.seed must be a non-negative integer, got {self.seed!r}")
        if self.n_items != "auto" and (isinstance(self.n_items, bool) or not isinstance(self.n_items, int)):
            raise SettingsError(f"simulate.n_items must be a positive integer or 'auto', got {self.n_items!r}")
        need = self.n_skills * (self.unit_test_size + self.problems_per_assignment)
        if self.items < need:
            raise SettingsError(
                f"simulate.n_items={self.items} is too small: {self.n_skills} skills need at least {need} "
                "(one unit test and one problem set each)"
            )
        if self.units_per_class > self.n_skills:
            raise SettingsError(f"simulate.units_per_class={self.units_per_class} exceeds simulate.n_skills={self.n_skills}")
        for name in ("drift_fraction", "evaluation_fraction"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise SettingsError(f"simulate.{name} must be in [0, 1), got {v!r}")
        if self.drift_shift < 0:
            raise SettingsError(f"simulate.drift_shift must be non-negative, got {self.drift_shift!r}")
        return self

    def to_dict(self) -> dict:
        return asdict(self) | {"items": self.items}
