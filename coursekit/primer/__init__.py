"""The primer: backpropagation from scratch on a small computational graph.

Networks are written as expressions (``xw = ab*xa + bc*xb + cd*xc + ac*xd``),
parsed into a graph of numpy operations, trained with optimizers a student can
write in a dozen lines, and checked against torch. The expression language and the
one- and multi-neuron classifiers follow Avi Kak's ComputationalGraphPrimer, the
primer to which the ECE 60146 homework report (ECE 60146, 2024) added SGD with
momentum and Adam; backpropagation itself is Rumelhart et al. (1986). The pieces,
one file each:

``engine``
    Tensor, the operations (forward value and derivative side by side) and Graph
    (topological order, forward, backward).
``expressions``
    The expression language: parser, Program, ExpressionError.
``models``
    OneNeuronClassifier, MultiNeuronClassifier and their torch twins.
``data``
    make_two_gaussians and BatchIterator.
``optimizers``
    Optimizer (the extension point), SGD, SGDMomentum, Adam.
``training``
    train -> History.
``draw``
    draw_graph, with matplotlib.

Example::

    from coursekit import primer
    X, y = primer.make_two_gaussians(5000, dim=4, seed=0)
    model = primer.OneNeuronClassifier("xw = ab*xa + bc*xb + cd*xc + ac*xd")
    history = primer.train(model, primer.SGD(model.parameters(), lr=1e-2), (X, y),
                           iterations=2000, batch_size=8)

References
----------
.. [1] ECE 60146 (2024). Homework 2 report: SGD with momentum (SGD+) and Adam for Avi Kak's
   ComputationalGraphPrimer. Student homework report, ECE 60146 Deep Learning, Purdue
   University, Spring 2024. [ece60146hw2]
.. [2] Rumelhart, D. E., Hinton, G. E. and Williams, R. J. (1986). Learning representations
   by back-propagating errors. Nature, 323(6088), 533–536. doi:10.1038/323533a0.
   [rumelhart1986learning]
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
