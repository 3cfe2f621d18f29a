"""Features computed from the canonical events, in strict time order."""
