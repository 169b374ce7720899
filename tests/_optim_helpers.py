"""Shared fixtures for the optimizer tests: a tiny MLP with awkward parameters."""

from __future__ import annotations

import torch


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(|a|, |b|): the relative error of a tensor as a whole (cs231n style)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-300)
    return (a - b).abs().max().item() / scale


def train_steps(loss, optimizer: torch.optim.Optimizer, batches) -> list[float]:
    """One optimizer step per batch, ``loss(batch)`` its loss; the losses."""
    losses = []
    for rows in batches:
        optimizer.zero_grad()
        value = loss(rows)
        value.backward()
        optimizer.step()
        losses.append(value.item())
    return losses


def copy_weights(to: list[torch.Tensor], source: list[torch.Tensor]) -> None:
    """Copy ``source``'s values into ``to``, parameter by parameter."""
    with torch.no_grad():
        for mine, theirs in zip(to, source, strict=True):
            mine.copy_(theirs)


class TinyMLP:
    """A 4-5-3 tanh MLP as raw parameters, with two deliberate oddities.

    ``w1`` is a *non-contiguous* parameter (a transposed view) and ``unused`` never
    enters the loss, so its ``grad`` stays ``None``. ``groups()`` splits the
    parameters into two groups with different options.
    """

    def __init__(self, dtype: torch.dtype, seed: int = 0):
        g = torch.Generator().manual_seed(seed)

        def randn(*shape):
            return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)

        self.w1 = torch.nn.Parameter(randn(4, 5).t())  # shape (5, 4), strides of a transpose
        self.b1 = torch.nn.Parameter(randn(5))
        self.w2 = torch.nn.Parameter(randn(3, 5))
        self.b2 = torch.nn.Parameter(randn(3))
        self.unused = torch.nn.Parameter(randn(2))
        data = torch.Generator().manual_seed(1234)  # the data never depends on ``seed``
        self.x = torch.randn(8, 4, generator=data, dtype=torch.float64).to(dtype)
        self.y = torch.randn(8, 3, generator=data, dtype=torch.float64).to(dtype)
        assert not self.w1.is_contiguous()

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.w1, self.b1, self.unused, self.w2, self.b2]

    def groups(self, **second_group_options) -> list[dict]:
        return [
            {"params": [self.w1, self.b1, self.unused]},
            {"params": [self.w2, self.b2], **second_group_options},
        ]

    def loss(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The mean squared error on every sample, or on the samples ``rows``."""
        x, y = (self.x, self.y) if rows is None else (self.x[rows], self.y[rows])
        hidden = torch.tanh(x @ self.w1.t() + self.b1)
        return ((hidden @ self.w2.t() + self.b2 - y) ** 2).mean()

    def train_batches(self, optimizer: torch.optim.Optimizer,
                      batches: list[torch.Tensor]) -> list[float]:
        """One step per batch of sample indices; the losses."""
        return train_steps(self.loss, optimizer, batches)

    def train(self, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
        """``steps`` steps on every sample; the losses."""
        return train_steps(self.loss, optimizer, [None] * steps)

    def copy_from(self, other: TinyMLP) -> None:
        copy_weights(self.parameters(), other.parameters())


def assert_resumes_exactly(make, batches: list[torch.Tensor], at: int) -> None:
    """Save ``make(model)``'s state after ``at`` of ``batches``, load it into a fresh
    optimizer on a copy of the weights, continue: the weights are the uninterrupted run's,
    bit for bit."""
    import copy

    whole = TinyMLP(torch.float64)
    whole.train_batches(make(whole), batches)
    first, second = TinyMLP(torch.float64), TinyMLP(torch.float64)
    optimizer = make(first)
    first.train_batches(optimizer, batches[:at])
    saved = copy.deepcopy(optimizer.state_dict())
    second.copy_from(first)
    resumed = make(second)
    resumed.load_state_dict(saved)
    second.train_batches(resumed, batches[at:])
    for p, q in zip(second.parameters(), whole.parameters(), strict=True):
        assert torch.equal(p, q)
