"""One module per job type; the registry maps type names to their model and processor."""
