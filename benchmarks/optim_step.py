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

The optimizers of the 2020s (issue 26) are timed against their references on the
same parameters, with the same gradients, in the same round-robin:

    Adafactor          ours vs torch.optim.Adafactor (default and foreach=True)
    Lion               ours vs lion-pytorch and pytorch-optimizer (its default path)
    Schedule-Free      ours vs the authors' schedulefree (foreach=True, their default,
                       and foreach=False), SGD and AdamW, in train mode
    Muon               ours vs torch.optim.Muon

Adafactor, Lion and Schedule-Free update ResNet-18's parameters like the rows above.
Muon takes matrices only and spends its time in bfloat16 matrix products (slow on a
CPU), so it updates the weight matrices of an MLP instead (``--muon-width``, default
256: a width x 784 input layer and three width x width hidden layers); ours and
torch's see the same matrices. coursekit has one readable path for these optimizers,
so the ratio against a reference's multi-tensor path shows what that costs.

Usage: python benchmarks/optim_step.py [--steps 30] [--device cpu] [--no-fused]
       [--section all|classic|2020s] [--muon-width 256]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import warnings

import torch
import torchvision

import coursekit
import coursekit.optim as ck
from coursekit.analysis.cost import memory_bandwidth, step_times
from coursekit.optim.adafactor import Adafactor
from coursekit.optim.fast import roofline_bytes_per_param
from coursekit.optim.lion import Lion
from coursekit.optim.muon import Muon
from coursekit.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD

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


def _package(name: str):
    """An installed reference package, or None (its rows are then left out)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError:
        return None


def _modern_rows() -> dict[str, dict]:
    """For each 2020s optimizer: variant name -> a function building it on fresh copies."""
    lion_pytorch = _package("lion_pytorch")
    pytorch_optimizer = _package("pytorch_optimizer")
    schedulefree = _package("schedulefree")
    rows = {
        "Adafactor": {
            "ours": lambda ps: Adafactor(ps, lr=1e-2),
            "torch": lambda ps: torch.optim.Adafactor(ps, lr=1e-2),
            "torch-foreach": lambda ps: torch.optim.Adafactor(ps, lr=1e-2, foreach=True),
        },
        "Lion": {"ours": lambda ps: Lion(ps, lr=1e-4, weight_decay=0.1)},
        "Schedule-Free SGD": {"ours": lambda ps: ScheduleFreeSGD(ps, lr=1.0)},
        "Schedule-Free AdamW": {"ours": lambda ps: ScheduleFreeAdamW(ps, lr=2.5e-3)},
    }
    if lion_pytorch:
        rows["Lion"]["lion-pytorch"] = lambda ps: lion_pytorch.Lion(ps, lr=1e-4,
                                                                    weight_decay=0.1)
    if pytorch_optimizer:
        rows["Lion"]["pytorch-optimizer"] = lambda ps: pytorch_optimizer.Lion(
            ps, lr=1e-4, weight_decay=0.1)
    if schedulefree:
        for name, cls, lr in (("Schedule-Free SGD", schedulefree.SGDScheduleFree, 1.0),
                              ("Schedule-Free AdamW", schedulefree.AdamWScheduleFree, 2.5e-3)):
            rows[name]["schedulefree-foreach"] = (
                lambda ps, cls=cls, lr=lr: cls(ps, lr=lr, foreach=True))
            rows[name]["schedulefree"] = lambda ps, cls=cls, lr=lr: cls(ps, lr=lr,
                                                                        foreach=False)
    return rows


def _build(make, params, grads):
    opt = make(_fresh_copy(params, grads))
    if hasattr(opt, "train") and "train_mode" in opt.param_groups[0]:
        opt.train()                                  # Schedule-Free steps in train mode only
    return opt


def _print_ratios(name: str, med: dict[str, float]) -> None:
    print(f"\n{name}")
    for key, seconds in med.items():
        print(f"  {key:<22}{seconds * 1e3:9.2f} ms")
    for key in med:
        if key != "ours":
            print(f"  ratio ours / {key:<22}= {med['ours'] / med[key]:.2f}x")


def bench_modern(steps: int, device: torch.device, muon_width: int) -> None:
    params, grads = _resnet18_params(device)
    n = sum(p.numel() for p in params)
    print(f"\nThe 2020s optimizers. ResNet-18: {n / 1e6:.2f}M parameters, device={device}, "
          f"torch {torch.__version__}, threads={torch.get_num_threads()}, steps={steps}")
    for name, makers in _modern_rows().items():
        variants = {key: _build(make, params, grads) for key, make in makers.items()}
        _print_ratios(name, step_times(variants, steps=steps, warmup=WARMUP))

    g = torch.Generator().manual_seed(0)
    shapes = [(muon_width, 784)] + [(muon_width, muon_width)] * 3
    matrices = [torch.randn(s, generator=g).div_(s[1] ** 0.5).to(device) for s in shapes]
    matrix_grads = [torch.randn(s, generator=g).to(device) for s in shapes]
    variants = {"ours": Muon(_fresh_copy(matrices, matrix_grads), lr=0.02),
                "torch": torch.optim.Muon(_fresh_copy(matrices, matrix_grads), lr=0.02)}
    shown = ", ".join(f"{a}x{b}" for a, b in shapes)
    _print_ratios(f"Muon (the MLP's matrices {shown}: "
                  f"{sum(a * b for a, b in shapes) / 1e6:.2f}M parameters)",
                  step_times(variants, steps=steps, warmup=WARMUP))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    parser.add_argument("--no-fused", action="store_true", help="skip the compiled variants")
    parser.add_argument("--section", choices=["all", "classic", "2020s"], default="all",
                        help="SGD/RMSprop/Adam, the 2020s optimizers, or both")
    parser.add_argument("--muon-width", type=int, default=256,
                        help="width of the MLP whose matrices Muon updates")
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else coursekit.device()
    if args.section in ("all", "classic"):
        bench(args.steps, device, fused=not args.no_fused)
    if args.section in ("all", "2020s"):
        bench_modern(args.steps, device, args.muon_width)


if __name__ == "__main__":
    main()
