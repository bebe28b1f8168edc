"""Shared test configuration: hypothesis profiles and backend fixtures."""

import os

import jax
from hypothesis import settings

jax.config.update("jax_enable_x64", True)

# The built-in "ci" profile (derandomized, no deadline) under CI; a short
# local default keeps `make test` quick on a 2-core machine.
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
