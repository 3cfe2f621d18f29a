"""What the two engines publish side by side (data/exports/), the join check, and the per-student trace."""
