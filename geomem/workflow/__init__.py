"""geomem.workflow: what every recipe (``geomem compare``, ``sweep``, ``invert``, …) shares.

- :mod:`~geomem.workflow.problem`: the inverse problem — model set and split, parameterization, survey →
  operator, truth, noise → data and γ (one seeding rule), observed data;
- :mod:`~geomem.workflow.priors`: priors by name (shipped, learned folders, checkpoints, memorized);
- :mod:`~geomem.workflow.posteriors`: posteriors by kind (lookup, linearized, sampled), each a
  :class:`~geomem.posterior.result.PosteriorSamples`;
- :mod:`~geomem.workflow.scoring`: memorization with nulls and posterior quality, tables;
- :mod:`~geomem.workflow.cache`: content-addressed stage caching and the shared forward-data cache;
- :mod:`~geomem.workflow.parallel`: Dask clients and batched forward modelling.
"""
