"""A fixture that runs a test with one torch thread.

CI and the course's laptops have two cores shared with other work; torch's
intra-op thread pool then spends more time waiting for a busy core than
computing on these tiny networks (an MLP step on the digits takes ~50x longer
with two contended threads than with one). Test modules that train opt in with
``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` after importing it.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
