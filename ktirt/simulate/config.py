"""Settings of the embedded default simulation: the simulate section of params.yaml (ktirt.settings), validated
once so bad params fail before any work, and the item bank size they give."""

from __future__ import annotations

from ktirt.settings import SimulateSettings

ITEMS_PER_STUDENT = 1.05
"""EDM Cup 2023's ratio (about 36.8 k problems for 35 k students): `n_items: auto` scales the bank with it."""


class SimulationConfig(SimulateSettings):
    """ktirt.settings.SimulateSettings (its fields, defaults and rules) and what follows from them."""

    @property
    def items(self) -> int:
        """The item bank size, `n_items` or, when it is `auto`, 1.05 items per student (at least enough
        for one unit test and one problem set per skill)."""
        if self.n_items != "auto":
            return int(self.n_items)
        return max(round(ITEMS_PER_STUDENT * self.n_students), self.bank_minimum)

    def to_dict(self) -> dict:
        return self.model_dump() | {"items": self.items}
