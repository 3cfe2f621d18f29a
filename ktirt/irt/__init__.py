"""Item response theory: the Wide & Deep IRT engine's training, item parameters and drift."""
