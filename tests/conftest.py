"""Shared test settings: serial Devito, quiet logs, offline Hugging Face libraries (what the CLI sets), and a
forward-data cache private to the test session."""

import os
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GEOMEM_CACHE", tempfile.mkdtemp(prefix="geomem-test-cache-"))

from geomem.env import apply_defaults  # noqa: E402

apply_defaults()
