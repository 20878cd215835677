"""geomem.report."""
