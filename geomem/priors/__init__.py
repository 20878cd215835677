"""geomem.priors."""
