"""The two engines' models, in plain torch."""
