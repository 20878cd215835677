"""geomem.geology."""
