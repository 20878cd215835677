"""geomem.experiments."""
