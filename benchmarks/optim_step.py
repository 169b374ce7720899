"""Step time of coursekit's optimizers vs torch.optim on a ResNet-18 parameter set.

For SGD with momentum, RMSprop and Adam, every variant updates its own copy of
ResNet-18's ~11.7M parameters with the same random gradients:

    ours          the readable per-tensor path (what the lectures show)
    ours-foreach  coursekit's multi-tensor path (foreach=True, identical numbers)
    ours-fused    coursekit's compiled single-pass path (fused=True)
    torch         torch.optim's default on this device (per-tensor loop on CPU)
    torch-foreach torch.optim with foreach=True
    torch-fused   torch.optim with fused=True (SGD and Adam; RMSprop has none)

The variants take turns step by step (round-robin, so a slow moment of the machine
hits them all) after warm-up steps (which include torch.compile's compilation),
and the script prints each variant's median step time, the ratios measured in
this run, and the *roofline*: the bytes a step must move per parameter (Adam in
fp32: read param, grad, m, v and write param, m, v = 28 B) times the number of
parameters, divided by the step time, next to the bandwidth of an in-place add
(``a.add_(b)``: read two arrays, write one) measured on the same machine.

Usage: python benchmarks/optim_step.py [--steps 30] [--device cpu] [--no-fused]
"""

from __future__ import annotations

import argparse
import inspect

import torch
import torchvision

import coursekit
import coursekit.optim as ck
from coursekit.analysis.cost import memory_bandwidth, step_times
from coursekit.optim.fast import roofline_bytes_per_param

OPTIMIZERS = {
    "SGD momentum": (ck.SGD, torch.optim.SGD, dict(lr=0.01, momentum=0.9), "sgd_momentum"),
    "RMSprop": (ck.RMSprop, torch.optim.RMSprop, dict(lr=0.01), "rmsprop"),
    "Adam": (ck.Adam, torch.optim.Adam, dict(lr=1e-3), "adam"),
}
WARMUP = 3


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


def _variants(ours_cls, torch_cls, kwargs, params, grads, fused: bool) -> dict:
    variants = {
        "ours": ours_cls(_fresh_copy(params, grads), **kwargs),
        "ours-foreach": ours_cls(_fresh_copy(params, grads), foreach=True, **kwargs),
        "torch": torch_cls(_fresh_copy(params, grads), **kwargs),
        "torch-foreach": torch_cls(_fresh_copy(params, grads), foreach=True, **kwargs),
    }
    if fused:
        variants["ours-fused"] = ours_cls(_fresh_copy(params, grads), fused=True, **kwargs)
        if "fused" in inspect.signature(torch_cls).parameters:   # RMSprop has none
            variants["torch-fused"] = torch_cls(_fresh_copy(params, grads), fused=True, **kwargs)
    return variants


def bench(steps: int, device: torch.device, fused: bool) -> None:
    params, grads = _resnet18_params(device)
    n = sum(p.numel() for p in params)
    bandwidth = memory_bandwidth(n, device)
    print(f"ResNet-18: {len(params)} tensors, {n / 1e6:.2f}M parameters, device={device}, "
          f"torch {torch.__version__}, threads={torch.get_num_threads()}, steps={steps}")
    print(f"memory bandwidth (a.add_(b), 12 B/element): {bandwidth:.1f} GB/s")
    for name, (ours_cls, torch_cls, kwargs, algorithm) in OPTIMIZERS.items():
        variants = _variants(ours_cls, torch_cls, kwargs, params, grads, fused)
        med = step_times(variants, steps=steps, warmup=WARMUP)
        roofline = roofline_bytes_per_param(algorithm)
        print(f"\n{name} (roofline {roofline} B/param = {roofline * n / 1e6:.0f} MB per step)")
        for key, seconds in med.items():
            achieved = roofline * n / seconds / 1e9
            print(f"  {key:<14}{seconds * 1e3:9.2f} ms   {achieved:6.1f} GB/s "
                  f"({achieved / bandwidth:5.0%} of memory bandwidth)")
        print(f"  ratio ours / torch default        = {med['ours'] / med['torch']:.2f}x")
        print(f"  ratio ours-foreach / torch-foreach = "
              f"{med['ours-foreach'] / med['torch-foreach']:.2f}x")
        if "ours-fused" in med and "torch-fused" in med:
            print(f"  ratio ours-fused / torch-fused    = "
                  f"{med['ours-fused'] / med['torch-fused']:.2f}x")
        if "ours-fused" in med:
            print(f"  ratio ours-fused / torch default  = {med['ours-fused'] / med['torch']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    parser.add_argument("--no-fused", action="store_true", help="skip the compiled variants")
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else coursekit.device()
    bench(args.steps, device, fused=not args.no_fused)


if __name__ == "__main__":
    main()
