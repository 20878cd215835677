"""geomem.physics."""
