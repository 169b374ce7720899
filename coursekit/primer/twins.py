"""The torch.nn twins of the primer's classifiers, for checking the primer against torch.

Built by :meth:`coursekit.primer.MultiNeuronClassifier.to_torch`; kept in their own
file so that the primer itself imports NumPy only.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit.primer.expressions import Program
from coursekit.primer.models import _bias_name

__all__ = ["DenseTwin", "ExpressionTwin"]


class DenseTwin(nn.Module):
    """``nn.Linear`` layers with sigmoids, weights copied from the primer model."""

    def __init__(self, weight_names: list[list[list[str]]],
                 layers: tuple[tuple[str, ...], ...], values: dict[str, float]):
        super().__init__()
        self.linears = nn.ModuleList()
        self._names = []
        for matrix, layer in zip(weight_names, layers, strict=True):
            linear = nn.Linear(len(matrix), len(layer), dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor([[values[n] for n in row] for row in matrix],
                                                dtype=torch.float64).T)
                linear.bias.copy_(torch.tensor([values[_bias_name(t)] for t in layer],
                                              dtype=torch.float64))
            self.linears.append(linear)
            self._names.append((matrix, layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for linear in self.linears:
            x = torch.sigmoid(linear(x))
        return x[:, 0]

    def named_scalars(self) -> dict[str, float]:
        """Every parameter by its primer name."""
        out = {}
        for linear, (matrix, layer) in zip(self.linears, self._names, strict=True):
            for i, row in enumerate(matrix):
                for j, name in enumerate(row):
                    out[name] = linear.weight[j, i].item()
            for j, target in enumerate(layer):
                out[_bias_name(target)] = linear.bias[j].item()
        return out



class ExpressionTwin(nn.Module):
    """The same expressions evaluated with torch operations; one scalar per parameter."""

    def __init__(self, program: Program, values: dict[str, float]):
        super().__init__()
        self.program = program
        self.scalars = nn.ParameterDict(
            {name: nn.Parameter(torch.tensor(value, dtype=torch.float64))
             for name, value in values.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leaves = {name: x[:, i] for i, name in enumerate(self.program.inputs)}
        leaves.update(self.scalars.items())
        env = self.program.evaluate(
            leaves,
            activation=lambda target, v: torch.sigmoid(v + self.scalars[_bias_name(target)]))
        return env[self.program.outputs[0]]

    def named_scalars(self) -> dict[str, float]:
        """Every parameter by its primer name."""
        return {name: p.item() for name, p in self.scalars.items()}
