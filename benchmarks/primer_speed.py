"""Speed of coursekit.primer against its torch twin on the ECE 60146 report's workload.

The primer's layered example (inputs xp, xq, xr, xs; layer 1 with neurons xw
and xz; layer 2 with xo), Adam (lr 1e-3), batch 8, 50,000 iterations, on the
two-Gaussian data. Both sides start from the same parameters and see the same
batches; the torch side is ``torch.nn`` (float64) with ``torch.optim.Adam``.
The primer of the ECE 60146 homework report needed ~79 s for this run (ECE 60146,
2024).

Usage::

    python benchmarks/primer_speed.py                  # 50,000 iterations each
    python benchmarks/primer_speed.py --iterations 5000
    python benchmarks/primer_speed.py --torch-iterations 10000   # torch timed on fewer, scaled

References
----------
.. [1] ECE 60146 (2024). Homework 2 report: SGD with momentum (SGD+) and Adam for Avi Kak's
   ComputationalGraphPrimer. Student homework report, ECE 60146 Deep Learning, Purdue
   University, Spring 2024. [ece60146hw2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from coursekit.primer import Adam, BatchIterator, MultiNeuronClassifier, make_two_gaussians, train

LAYERS = [
    ["xw = ap*xp + aq*xq + ar*xr + as*xs",
     "xz = bp*xp + bq*xq + br*xr + bs*xs"],
    ["xo = cp*xw + cq*xz"],
]
BATCH_SIZE = 8
LR = 1e-3
SEED = 0


def run_torch(model: MultiNeuronClassifier, data, iterations: int) -> tuple[float, np.ndarray]:
    """The torch twin on the same batches; return (seconds, losses)."""
    net = model.to_torch()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.MSELoss()
    batches = BatchIterator(*data, BATCH_SIZE, seed=SEED)
    losses = np.empty(iterations)
    start = time.perf_counter()
    for t in range(iterations):
        X, y = next(batches)
        optimizer.zero_grad()
        loss = loss_fn(net(torch.from_numpy(X)), torch.from_numpy(y))
        loss.backward()
        optimizer.step()
        losses[t] = loss.item()
    return time.perf_counter() - start, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50_000,
                        help="iterations of the primer model (default 50,000)")
    parser.add_argument("--torch-iterations", type=int, default=None,
                        help="iterations of the torch twin, time scaled up (default: same)")
    args = parser.parse_args()
    n_ours = args.iterations
    n_torch = args.torch_iterations or n_ours
    data = make_two_gaussians(5000, dim=4, seed=SEED)

    model = MultiNeuronClassifier(LAYERS, seed=SEED)
    reference = MultiNeuronClassifier(LAYERS, seed=SEED)  # untouched copy for the twin
    history = train(model, Adam(model.parameters(), lr=LR, fused=True), data,
                    iterations=n_ours, batch_size=BATCH_SIZE, seed=SEED)
    torch_seconds, torch_losses = run_torch(reference, data, n_torch)

    ours_us = 1e6 * history.wall_time / n_ours
    torch_us = 1e6 * torch_seconds / n_torch
    n = min(n_ours, n_torch)
    agreement = np.max(np.abs(history.losses[:n] - torch_losses[:n]))
    print("primer speed: multi-neuron classifier 4 -> 2 -> 1 (the primer's layered example), "
          f"Adam lr={LR}, batch {BATCH_SIZE}")
    print(f"coursekit.primer (numpy, dense layers, fused Adam): {n_ours} iterations in "
          f"{history.wall_time:.2f} s = {ours_us:.1f} us/iteration")
    scaled = ("" if n_torch == n_ours
              else f" (scaled to {n_ours} iterations: {torch_us * n_ours / 1e6:.1f} s)")
    print(f"torch twin (torch.nn float64 + torch.optim.Adam, same batches): {n_torch} iterations "
          f"in {torch_seconds:.2f} s = {torch_us:.1f} us/iteration{scaled}")
    print(f"ratio ours/torch (time per iteration): {ours_us / torch_us:.3f} (target <= 0.2); "
          f"the ECE 60146 report's primer took ~79 s for 50,000 iterations")
    print(f"max |loss difference| over the first {n} iterations: {agreement:.1e}")


if __name__ == "__main__":
    main()
