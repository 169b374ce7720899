"""Step time of coursekit's optimizers vs torch.optim on a ResNet-18 parameter set.

For SGD with momentum, RMSprop and Adam, every variant updates its own copy of
ResNet-18's ~11.7M parameters with the same random gradients. The variants take
turns step by step (round-robin, so a slow moment of the machine hits them all),
and the script prints the median step time of each and the ratios measured in
this run:

    ours / torch default   (torch's default on CPU is the per-tensor for-loop)
    ours / torch foreach   (torch's multi-tensor path, foreach=True)

Usage: python benchmarks/optim_step.py [--steps 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

import coursekit
import coursekit.optim as ck

OPTIMIZERS = {
    "SGD momentum": (ck.SGD, torch.optim.SGD, dict(lr=0.01, momentum=0.9)),
    "RMSprop": (ck.RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    "Adam": (ck.Adam, torch.optim.Adam, dict(lr=1e-3)),
}


def _resnet18_params(device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    model = torchvision.models.resnet18(weights=None)
    params = [p.detach().to(device) for p in model.parameters()]
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(p.shape, generator=g).to(device) for p in params]
    return params, grads


def _fresh_copy(params, grads) -> list[torch.nn.Parameter]:
    copies = [torch.nn.Parameter(p.clone()) for p in params]
    for c, g in zip(copies, grads, strict=True):
        c.grad = g.clone()
    return copies


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(steps: int, device: torch.device) -> None:
    params, grads = _resnet18_params(device)
    n = sum(p.numel() for p in params)
    print(f"ResNet-18: {len(params)} tensors, {n / 1e6:.2f}M parameters, device={device}, "
          f"torch {torch.__version__}, threads={torch.get_num_threads()}, steps={steps}")
    print(f"{'optimizer':<14}{'ours ms':>10}{'torch ms':>10}{'foreach ms':>12}"
          f"{'ours/torch':>12}{'ours/foreach':>14}")
    for name, (ours_cls, torch_cls, kwargs) in OPTIMIZERS.items():
        variants = {
            "ours": ours_cls(_fresh_copy(params, grads), **kwargs),
            "torch": torch_cls(_fresh_copy(params, grads), foreach=False, **kwargs),
            "foreach": torch_cls(_fresh_copy(params, grads), foreach=True, **kwargs),
        }
        times: dict[str, list[float]] = {key: [] for key in variants}
        for i in range(steps + 3):           # the first 3 rounds are warm-up
            for key, opt in variants.items():
                _sync(device)
                start = time.perf_counter()
                opt.step()
                _sync(device)
                if i >= 3:
                    times[key].append(time.perf_counter() - start)
        med = {key: statistics.median(t) * 1e3 for key, t in times.items()}
        print(f"{name:<14}{med['ours']:>10.2f}{med['torch']:>10.2f}{med['foreach']:>12.2f}"
              f"{med['ours'] / med['torch']:>11.2f}x{med['ours'] / med['foreach']:>13.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else coursekit.device()
    bench(args.steps, device)


if __name__ == "__main__":
    main()
