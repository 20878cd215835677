"""geomem.metrics."""
