"""geomem benchmark suite: ``python -m benchmarks [--quick] [--cases ...] [--out PATH]`` (see ``__main__``)."""
