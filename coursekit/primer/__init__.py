"""The primer: backpropagation from scratch on a small computational graph.

Networks are written as expressions (``xw = ab*xa + bc*xb + cd*xc + ac*xd``),
parsed into a graph of numpy operations, trained with optimizers a student can
write in a dozen lines, and checked against torch. The pieces, one file each:

``engine``       Tensor, the operations (forward value and derivative side by
                 side) and Graph (topological order, forward, backward).
``expressions``  The expression language: parser, Program, ExpressionError.
``models``       OneNeuronClassifier, MultiNeuronClassifier and their torch twins.
``data``         make_two_gaussians and BatchIterator.
``optimizers``   Optimizer (the extension point), SGD, SGDMomentum, Adam.
``training``     train -> History.
``draw``         draw_graph, with matplotlib.

Example::

    from coursekit import primer
    X, y = primer.make_two_gaussians(5000, dim=4, seed=0)
    model = primer.OneNeuronClassifier("xw = ab*xa + bc*xb + cd*xc + ac*xd")
    history = primer.train(model, primer.SGD(model.parameters(), lr=1e-2), (X, y),
                           iterations=2000, batch_size=8)
"""

from coursekit.primer.data import BatchIterator, make_two_gaussians
from coursekit.primer.draw import draw_graph
from coursekit.primer.engine import Graph, Op, Tensor, bce, mse, sigmoid_layer
from coursekit.primer.expressions import ExpressionError, Program, parse, parse_layers
from coursekit.primer.models import MultiNeuronClassifier, OneNeuronClassifier
from coursekit.primer.optimizers import SGD, Adam, Optimizer, SGDMomentum
from coursekit.primer.training import History, train

__all__ = [
    "SGD",
    "Adam",
    "BatchIterator",
    "ExpressionError",
    "Graph",
    "History",
    "MultiNeuronClassifier",
    "OneNeuronClassifier",
    "Op",
    "Optimizer",
    "Program",
    "SGDMomentum",
    "Tensor",
    "bce",
    "draw_graph",
    "make_two_gaussians",
    "mse",
    "parse",
    "parse_layers",
    "sigmoid_layer",
    "train",
]
