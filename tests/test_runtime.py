"""coursekit.seed, coursekit.device and coursekit.fast_mode."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import coursekit


def _draw():
    return random.random(), np.random.rand(), torch.rand(3).tolist()  # noqa: NPY002


def test_seed_makes_python_numpy_and_torch_repeatable():
    coursekit.seed(123)
    first = _draw()
    coursekit.seed(123)
    assert _draw() == first
    coursekit.seed(124)
    assert _draw() != first


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "3", True])
def test_seed_rejects_bad_values(bad):
    with pytest.raises((TypeError, ValueError), match="seed"):
        coursekit.seed(bad)


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert coursekit.device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert coursekit.device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert coursekit.device() == torch.device("cpu")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False),
                                                 ("", False)])
def test_fast_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSEKIT_FAST", value)
    assert coursekit.fast_mode() is expected


def test_environment_reports_versions_device_and_datasets(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path))
    monkeypatch.setenv("COURSEKIT_FAST", "1")
    report = {r["item"]: r["value"] for r in coursekit.environment()}
    assert report["torch"] == torch.__version__
    assert report["device"].startswith(coursekit.device().type)
    assert report["data root"] == str(tmp_path)
    assert report["dataset mnist"] == "missing"          # tmp_path is empty
    assert report["CI mode (COURSEKIT_FAST)"] == "on"
