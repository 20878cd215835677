"""geomem.posterior."""
