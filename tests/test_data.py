"""coursekit.data: the datasets as tensors, their splits, the offline errors, the batches.

The torchvision datasets are exercised through torchvision's real readers on
small files each test writes in the dataset's own on-disk format: MNIST's
big-endian IDX files in ``<root>/MNIST/raw`` and CIFAR-10's pickled batches in
``<root>/cifar-10-batches-py``. Expected tensors are computed from the bytes
written, in NumPy float64.
"""

from __future__ import annotations

import pickle
import struct
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from coursekit import data


def _write_idx(path: Path, array: np.ndarray) -> None:
    """The IDX format: zero, zero, type 0x08 (uint8), ndim, big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist(root: Path, folder: str, n_train: int = 40, n_test: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        _write_idx(root / folder / "raw" / name, array)
    return arrays


CIFAR_NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _write_cifar10(root: Path, per_batch: int = 3, n_test: int = 4, seed: int = 0):
    """Six pickled batches of rows [R(1024) G(1024) B(1024)] and batches.meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        batch = {"batch_label": name, "data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                 "labels": rng.integers(0, 10, n).tolist(),
                 "filenames": [f"{name}_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch))
        batches[name] = batch
    meta = {"label_names": CIFAR_NAMES, "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return batches


def _raw(split: data.Split, dataset: data.Dataset) -> np.ndarray:
    """Undo the normalisation: x * std_c + mean_c, in float64."""
    shape = (1, -1, *[1] * (split.x.ndim - 2))
    mean = np.array(dataset.mean).reshape(shape)
    std = np.array(dataset.std).reshape(shape)
    return split.x.double().numpy() * std + mean


def _normalised(raw: np.ndarray, train_raw: np.ndarray) -> np.ndarray:
    """(raw - mean_c) / std_c with the (1/n) statistics of the training images, per channel."""
    axes = (0, 2, 3)
    mean = train_raw.mean(axis=axes, keepdims=True)
    std = train_raw.std(axis=axes, keepdims=True)
    return (raw - mean) / std


# ----------------------------------------------------------------------------- digits


def test_digits_splits_partition_sklearn_digits_exactly():
    dataset = data.load("digits", valid_fraction=0.1, test_fraction=0.2, seed=0)
    bunch = load_digits()
    n = len(bunch.target)
    assert len(dataset.test) == round(0.2 * n)
    assert len(dataset.valid) == round(0.1 * (n - len(dataset.test)))
    assert len(dataset.train) + len(dataset.valid) + len(dataset.test) == n

    def rows(split):  # pixels back on the 0..16 grid, with the label
        pixels = np.rint(_raw(split, dataset) * 16).astype(int).reshape(len(split), -1)
        return [(*row, label) for row, label in zip(pixels, split.y.tolist(), strict=True)]

    ours = Counter(rows(dataset.train) + rows(dataset.valid) + rows(dataset.test))
    theirs = Counter((*row, label) for row, label in
                     zip(bunch.images.astype(int).reshape(n, -1), bunch.target, strict=True))
    assert ours == theirs


def test_digits_shapes_dtypes_and_classes():
    dataset = data.load("digits")
    assert dataset.input_shape == (1, 8, 8)
    assert dataset.train.x.dtype == torch.float32 and dataset.train.y.dtype == torch.int64
    assert dataset.classes == tuple(str(k) for k in range(10))
    assert set(dataset.test.y.tolist()) == set(range(10))


def test_training_split_is_standardised_per_channel():
    dataset = data.load("digits")
    x = dataset.train.x.double()
    assert abs(x.mean().item()) < 1e-6
    assert abs(x.std(correction=0).item() - 1) < 1e-6
    assert abs(dataset.test.x.double().mean().item()) > 1e-4  # test uses train's statistics


def test_split_is_fixed_by_seed():
    first, again, other = data.load(seed=3), data.load(seed=3), data.load(seed=4)
    assert torch.equal(first.test.x, again.test.x) and torch.equal(first.valid.y, again.valid.y)
    assert not torch.equal(first.test.y, other.test.y)


def test_split_argument_returns_that_part():
    whole = data.load("digits", seed=1)
    test = data.load("digits", "test", seed=1)
    assert isinstance(test, data.Split) and test.part == "test"
    assert torch.equal(test.x, whole.test.x) and torch.equal(test.y, whole.test.y)


def test_zero_valid_fraction_gives_empty_valid_split():
    dataset = data.load("digits", valid_fraction=0.0)
    assert len(dataset.valid) == 0 and dataset.valid.input_shape == (1, 8, 8)


# ----------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("name", data.SYNTHETIC)
def test_synthetic_sets_are_balanced_2d_and_reproducible(name):
    dataset = data.load(name, n_samples=400, seed=5)
    assert dataset.input_shape == (2,) and dataset.num_classes == 2
    labels = torch.cat([dataset.train.y, dataset.valid.y, dataset.test.y])
    assert labels.bincount().tolist() == [200, 200]
    assert torch.equal(dataset.train.x, data.load(name, n_samples=400, seed=5).train.x)


def test_two_gaussians_centres_and_spread_match_the_definition():
    noise = 0.5
    dataset = data.load("two_gaussians", n_samples=4000, noise=noise, test_fraction=0.5)
    points = _raw(dataset.train, dataset)
    labels = dataset.train.y.numpy()
    tolerance = 5 * noise / np.sqrt(len(labels) / 2)
    np.testing.assert_allclose(points[labels == 0].mean(axis=0), [-1, -1], atol=tolerance)
    np.testing.assert_allclose(points[labels == 1].mean(axis=0), [1, 1], atol=tolerance)
    np.testing.assert_allclose(points[labels == 1].std(axis=0), [noise, noise], rtol=0.1)


# ----------------------------------------------------------------------------- torchvision


@pytest.mark.parametrize(("name", "folder"),
                         [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_format_files_load_through_torchvision(tmp_path, name, folder):
    arrays = _write_mnist(tmp_path, folder)
    dataset = data.load(name, root=tmp_path, valid_fraction=0.0)
    train_raw = arrays["train-images-idx3-ubyte"][:, None].astype(np.float64) / 255
    test_raw = arrays["t10k-images-idx3-ubyte"][:, None].astype(np.float64) / 255

    assert dataset.input_shape == (1, 28, 28) and dataset.num_classes == 10
    np.testing.assert_allclose(dataset.train.x.numpy(), _normalised(train_raw, train_raw),
                               atol=1e-5)
    np.testing.assert_allclose(dataset.test.x.numpy(), _normalised(test_raw, train_raw),
                               atol=1e-5)
    assert dataset.train.y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert dataset.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_mnist_validation_split_comes_from_the_official_training_set(tmp_path, monkeypatch):
    arrays = _write_mnist(tmp_path, "MNIST", n_train=40)
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path))
    dataset = data.load("mnist", valid_fraction=0.25)
    assert (len(dataset.train), len(dataset.valid), len(dataset.test)) == (30, 10, 12)
    ours = sorted(dataset.train.y.tolist() + dataset.valid.y.tolist())
    assert ours == sorted(arrays["train-labels-idx1-ubyte"].tolist())


def test_cifar10_pickled_batches_load_through_torchvision_without_md5(tmp_path):
    batches = _write_cifar10(tmp_path)
    dataset = data.load("cifar10", root=tmp_path, verify=False, valid_fraction=0.0)
    train_rows = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    train_raw = train_rows.reshape(-1, 3, 32, 32).astype(np.float64) / 255
    test_raw = batches["test_batch"]["data"].reshape(-1, 3, 32, 32).astype(np.float64) / 255

    assert dataset.input_shape == (3, 32, 32)
    assert dataset.classes == tuple(CIFAR_NAMES)
    np.testing.assert_allclose(dataset.mean, train_raw.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(dataset.train.x.numpy(), _normalised(train_raw, train_raw),
                               atol=1e-5)
    np.testing.assert_allclose(dataset.test.x.numpy(), _normalised(test_raw, train_raw),
                               atol=1e-5)
    assert dataset.test.y.tolist() == batches["test_batch"]["labels"]


def test_cifar10_files_that_fail_the_official_md5_are_rejected_clearly(tmp_path):
    _write_cifar10(tmp_path)
    with pytest.raises(data.DatasetCorruptError, match="verify=False"):
        data.load("cifar10", root=tmp_path)


def test_unreadable_mnist_file_is_reported_as_corrupt(tmp_path):
    _write_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(data.DatasetCorruptError, match="mnist"):
        data.load("mnist", root=tmp_path)


def test_missing_dataset_error_says_where_and_how(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load("mnist", root=tmp_path)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "download=True" in message and "fallback='digits'" in message
    assert "COURSEKIT_DATA" in message


def test_partially_present_dataset_names_the_missing_files(tmp_path):
    _write_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    assert not data.is_present("mnist", root=tmp_path)
    with pytest.raises(data.DatasetNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.load("mnist", root=tmp_path)


def test_fallback_returns_digits_and_warns_once(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_FALLBACK_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = data.load("cifar10", root=tmp_path, fallback="digits")
        second = data.load("cifar10", "train", root=tmp_path, fallback="digits")
    assert [str(w.message).startswith("cifar10 was not found") for w in caught] == [True]
    assert first.name == "digits" and first.input_shape == (1, 8, 8)
    assert torch.equal(first.train.x, data.load("digits").train.x)
    assert torch.equal(second.x, first.train.x)


def test_data_root_prefers_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path / "env"))
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_root() == tmp_path / "env"
    monkeypatch.delenv("COURSEKIT_DATA")
    assert data.data_root() == Path.home() / ".coursekit" / "data"
    assert data.is_present("digits")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"name": "imagenet"}, r"^name must be one of .*'digits'.*, got 'imagenet'"),
    ({"split": "training"}, r"^split must be one of None, 'train', .*, got 'training'"),
    ({"valid_fraction": 1.0}, r"^valid_fraction must be in \[0, 1\), got 1\.0"),
    ({"test_fraction": 0}, r"^test_fraction must be in \(0, 1\), got 0"),
    ({"seed": -1}, "^seed must be an integer >= 0, got -1"),
    ({"n_samples": 100}, "^n_samples and noise must be None for 'digits'"),
    ({"name": "mnist", "fallback": "cifar10"}, "^fallback must be .*, got 'cifar10'"),
    ({"name": "moons", "n_samples": 3}, "^n_samples must be an integer >= 10, got 3"),
    ({"name": "moons", "noise": -0.5}, r"^noise must be >= 0, got -0\.5"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(**kwargs)


# ----------------------------------------------------------------------------- batches


def test_each_epoch_visits_every_example_once_in_a_fresh_order():
    n, batch_size = 103, 16
    batches = data.Batches(torch.arange(n).float(), torch.arange(n), batch_size, seed=7)
    epochs = [[yb for _, yb in batches] for _ in range(3)]
    for epoch in epochs:
        assert [len(yb) for yb in epoch] == [16] * 6 + [7]
        assert sorted(torch.cat(epoch).tolist()) == list(range(n))
    orders = [torch.cat(epoch) for epoch in epochs]
    assert not torch.equal(orders[0], orders[1]) and not torch.equal(orders[1], orders[2])


def test_batches_pair_inputs_with_their_own_targets():
    x = torch.arange(50).float().view(50, 1) * 10
    batches = data.Batches(x, torch.arange(50), batch_size=8, seed=1)
    for xb, yb in batches:
        assert torch.equal(xb[:, 0], yb.float() * 10)


def test_order_depends_only_on_seed_and_epoch():
    def order(seed, epoch):
        batches = data.Batches(torch.zeros(64, 2), torch.arange(64), 10, seed=seed)
        batches.set_epoch(epoch)
        return torch.cat([yb for _, yb in batches])

    assert torch.equal(order(3, 2), order(3, 2))
    assert not torch.equal(order(3, 2), order(3, 1))
    assert not torch.equal(order(3, 2), order(4, 2))
    batches = data.Batches(torch.zeros(64, 2), torch.arange(64), 10, seed=3)
    for _ in range(2):
        list(batches)
    assert torch.equal(torch.cat([yb for _, yb in batches]), order(3, 2))


def test_drop_last_and_unshuffled_slices():
    batches = data.Batches(torch.zeros(103, 3), torch.arange(103), 16, shuffle=False,
                           drop_last=True)
    assert len(batches) == 6
    assert torch.equal(torch.cat([yb for _, yb in batches]), torch.arange(96))


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize(("examples", "batch_size"), [(16, 16), (17, 16), (40, 16), (1, 16),
                                                      (0, 4), (1294, 1294)])
def test_steps_per_epoch_counts_the_batches_that_batches_yields(examples, batch_size, drop_last):
    batches = data.Batches(torch.zeros(examples, 2), torch.arange(examples), batch_size,
                           drop_last=drop_last)
    assert data.steps_per_epoch(examples, batch_size, drop_last=drop_last) == len(list(batches))


def test_split_batches_and_to_keep_device():
    split = data.load("digits", "valid")
    assert split.to("cpu") is split
    xb, yb = next(iter(split.batches(batch_size=10)))
    assert xb.shape == (10, 1, 8, 8) and yb.shape == (10,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_on_gpu_follow_the_cpu_order():
    x, y = torch.randn(500, 4), torch.arange(500)
    on_cpu = [yb for _, yb in data.Batches(x, y, 64, seed=2)]
    on_gpu = [yb for _, yb in data.Batches(x.cuda(), y.cuda(), 64, seed=2)]
    assert all(b.is_cuda for b in on_gpu)
    assert torch.equal(torch.cat(on_cpu), torch.cat(on_gpu).cpu())


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"batch_size": 0}, "^batch_size must be an integer >= 1, got 0"),
    ({"seed": 1.5}, r"^seed must be an integer >= 0, got 1\.5"),
])
def test_bad_batches_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.Batches(torch.zeros(4, 1), torch.zeros(4), **kwargs)
