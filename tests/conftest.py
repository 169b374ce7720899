"""Suite-wide settings.

Tests run with one torch thread: CI and students' laptops have two cores, and on
the course's tiny tensors torch's intra-op thread pool spends more time waiting
for a busy core than computing (an MLP step on the digits is ~50x slower with two
contended threads). One thread also makes reductions run in a fixed order.
Hypothesis runs derandomized (a fixed seed) for the same reason.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

# Property tests draw their examples from a fixed seed: the same inputs on every
# run and every machine, so CI never fails on a case nobody can reproduce.
settings.register_profile("coursekit", derandomize=True, deadline=None)
settings.load_profile("coursekit")


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Notebooks under tests/ are fixtures (example and hostile submissions), not lessons:
# nbval must not execute them.
collect_ignore_glob = ["**/*.ipynb", "*.ipynb"]
