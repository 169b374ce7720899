"""One epoch of minibatches: coursekit.data.Batches against a DataLoader over a TensorDataset.

Both shuffle every epoch and yield ``(x, y)`` batches of the same size. The
reference is what a PyTorch tutorial writes, ``DataLoader(TensorDataset(x, y),
batch_size, shuffle=True)``, which fetches every example with a Python call and
stacks them again (``collate``); ``Batches`` indexes the tensors once per batch.
On a GPU the data sits on the device for ``Batches``; the DataLoader's batches are
moved there one by one (``pin_memory=True``, ``non_blocking=True``), as usual.

Shapes: the digits (1797 x 1 x 8 x 8) and MNIST (60000 x 1 x 28 x 28), filled
with random numbers (the timing does not depend on the values). Each time is
the best of ``--repeats`` epochs. Prints the ratio ours / reference (below 1 means
``Batches`` is faster).

    python benchmarks/loader_speed.py [--device cpu|cuda] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable

import torch
from torch.utils.data import DataLoader, TensorDataset

import coursekit
from coursekit.data import Batches

SHAPES = {"digits": (1797, (1, 8, 8)), "mnist": (60000, (1, 28, 28))}


def epoch_seconds(epochs: Iterable, device: torch.device, repeats: int) -> float:
    """Best wall time of one full pass over ``epochs``, touching every batch on ``device``."""
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        checksum = torch.zeros((), device=device)
        for x, y in epochs:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            checksum += x[0, 0, 0, 0] + y[0]
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=str(coursekit.device()))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 on a busy machine")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    for name, (n, shape) in SHAPES.items():
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(n, *shape, generator=generator)
        y = torch.randint(0, 10, (n,), generator=generator)
        x_device, y_device = x.to(device), y.to(device)
        dataset = TensorDataset(x, y)
        for batch_size in (64, 256):
            batches = Batches(x_device, y_device, batch_size, shuffle=True, seed=0)
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                pin_memory=device.type == "cuda")
            ours = epoch_seconds(batches, device, args.repeats)
            reference = epoch_seconds(loader, device, args.repeats)
            print(f"{name:6s} n={n:5d} batch={batch_size:3d}: Batches {ours * 1e3:8.2f} ms/epoch, "
                  f"DataLoader(TensorDataset) {reference * 1e3:8.2f} ms/epoch, "
                  f"ratio ours/reference = {ours / reference:.4f} "
                  f"({reference / ours:.0f}x faster)")


if __name__ == "__main__":
    main()
