"""Knowledge-tracing data: vocabularies, per-student sequences, windows, and pyKT's file format."""
