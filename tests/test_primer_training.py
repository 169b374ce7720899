"""coursekit.primer data, training loop, determinism across PYTHONHASHSEED, and drawing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.text import Annotation

from coursekit.primer import (
    SGD,
    Adam,
    BatchIterator,
    MultiNeuronClassifier,
    OneNeuronClassifier,
    Tensor,
    draw_graph,
    make_two_gaussians,
    parse,
    train,
)
from coursekit.stats import running_mean

LAYERED = [["xw = ap*xp + aq*xq + ar*xr + as*xs", "xz = bp*xp + bq*xq + br*xr + bs*xs"],
           ["xo = cp*xw + cq*xz"]]


def test_two_gaussians_have_the_primers_means_and_spreads():
    n, dim = 20_000, 3
    X, y = make_two_gaussians(n, dim=dim, seed=0)
    assert X.shape == (n, dim) and y.shape == (n,)
    assert np.sum(y == 1) == n // 2 and np.sum(y == 0) == n - n // 2
    for label, mean, std in ((0, 2.0, 1.0), (1, 4.0, 2.0)):
        Xc = X[y == label]
        standard_error = std / np.sqrt(len(Xc))
        np.testing.assert_array_less(np.abs(Xc.mean(axis=0) - mean), 5 * standard_error)
        np.testing.assert_allclose(Xc.std(axis=0), std, rtol=0.05)
    assert 0.3 < np.mean(y[: n // 10]) < 0.7  # shuffled, not sorted by class


def test_two_gaussians_depend_only_on_the_seed():
    a, b, c = (make_two_gaussians(100, 2, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="dim must be an integer >= 1, got 0"):
        make_two_gaussians(10, 0, seed=0)


def test_each_epoch_deals_every_sample_once_standardised():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(22, 3))
    y = np.arange(22.0)  # the target identifies the row
    batches = BatchIterator(X, y, batch_size=5, seed=1)
    expected = (X - X.mean(axis=0)) / X.std(axis=0)
    np.testing.assert_allclose(batches.mean, X.mean(axis=0))
    for _ in range(3):  # 22 // 5 = 4 full batches per epoch, 2 rows wait for a later epoch
        epoch = [next(batches) for _ in range(4)]
        rows = np.concatenate([xb for xb, _ in epoch])
        targets = np.concatenate([yb for _, yb in epoch]).astype(int)
        assert all(len(xb) == 5 for xb, _ in epoch)
        assert len(set(targets.tolist())) == 20
        np.testing.assert_allclose(rows, expected[targets], rtol=1e-14)
    np.testing.assert_allclose(batches.transform(X), expected, rtol=1e-14)


def test_normalisation_can_be_switched_off_and_bad_arguments_are_named():
    X = np.arange(12.0).reshape(6, 2)
    xb, yb = next(BatchIterator(X, np.arange(6.0), 6, normalize="none"))
    np.testing.assert_array_equal(xb, X[yb.astype(int)])
    with pytest.raises(ValueError, match="normalize must be one of 'standardize', 'none', "
                                         "got 'max'"):
        BatchIterator(X, np.zeros(6), 2, normalize="max")
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, 6\], got 7"):
        BatchIterator(X, np.zeros(6), 7)
    with pytest.raises(ValueError, match=r"y must be of shape \(6,\), got shape \(5,\)"):
        BatchIterator(X, np.zeros(5), 2)
    with pytest.raises(ValueError,
                       match=r"X must vary in every feature .*, got constant features \[1\]"):
        BatchIterator(np.c_[X[:, 0], np.ones(6)], np.zeros(6), 2)


def test_train_records_each_iterations_loss_as_a_manual_loop_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = make_two_gaussians(300, 4, seed=1)
    model = MultiNeuronClassifier(LAYERED)
    figures = plt.get_fignums()
    history = train(model, Adam(model.parameters(), lr=0.01), data, iterations=120,
                    batch_size=8, seed=3, window=10)
    assert plt.get_fignums() == figures and not list(tmp_path.iterdir())  # no artefacts

    manual = MultiNeuronClassifier(LAYERED)
    opt = Adam(manual.parameters(), lr=0.01)
    batches = BatchIterator(*data, batch_size=8, seed=3)
    losses = []
    for _ in range(120):
        X, y = next(batches)
        opt.zero_grad()
        losses.append(manual.forward_backward(X, y))
        opt.step()
    np.testing.assert_array_equal(history.losses, losses)
    np.testing.assert_allclose(history.running_loss, running_mean(np.array(losses), 10))
    assert history.running_loss[0] == history.losses[0]  # not divided by the window
    assert history.iterations == 120 and history.wall_time > 0
    assert model.named_parameters() == manual.named_parameters()


def test_train_rejects_bad_arguments():
    model = OneNeuronClassifier("xw = ab*xa + bc*xb")
    data = make_two_gaussians(50, 2, seed=0)
    with pytest.raises(ValueError, match="iterations must be an integer >= 0, got -1"):
        train(model, SGD(model.parameters(), lr=0.1), data, iterations=-1, batch_size=8)
    with pytest.raises(ValueError,
                       match=r"data must be a pair \(X, y\), got ndarray of shape \(50, 2\)"):
        train(model, SGD(model.parameters(), lr=0.1), data[0], iterations=1, batch_size=8)
    with pytest.raises(ValueError, match="window must be an integer >= 1, got 0"):
        train(model, SGD(model.parameters(), lr=0.1), data, 1, 8, window=0)


_HASH_SCRIPT = textwrap.dedent("""
    from coursekit.primer import (Adam, MultiNeuronClassifier, OneNeuronClassifier, SGD,
                                  make_two_gaussians, parse, train)
    data = make_two_gaussians(200, 4, seed=0)
    for model, make in [
        (OneNeuronClassifier("xw = ab*xa + bc*xb + cd*xc + ac*xd"), SGD),
        (MultiNeuronClassifier({layers!r}, fast=False), Adam),
        (MultiNeuronClassifier([4, 3, 1]), Adam),
    ]:
        history = train(model, make(model.parameters(), lr=0.05), data, 30, 8)
        print([v.hex() for v in history.losses], model.named_parameters())
    program = parse("xc = ab*xa\\nxd = cd*xc + xb\\nxe = ef*xd + gh*xa")
    print(program.inputs, program.params, [a.target for a in program.assignments])
""").format(layers=LAYERED)


def test_results_do_not_depend_on_pythonhashseed():
    runs = [subprocess.Popen([sys.executable, "-c", _HASH_SCRIPT], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, PYTHONHASHSEED=hash_seed))
            for hash_seed in ("1", "4242")]  # both at once: the imports dominate
    outputs = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        outputs.append(stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") == 4


def test_drawing_a_network_shows_every_variable_and_parameter():
    model = MultiNeuronClassifier(LAYERED)
    ax = draw_graph(model)
    texts = {t.get_text() for t in ax.texts}
    names = {"xp", "xq", "xr", "xs", "xw", "xz", "xo", "ap", "aq", "ar", "as", "bp", "bq",
             "br", "bs", "cp", "cq"}
    assert names <= texts
    arrows = [c for c in ax.get_children() if isinstance(c, Annotation)]
    assert len(arrows) == 4 + 4 + 2  # one per term
    plt.close(ax.figure)


def test_drawing_an_engine_graph_shows_each_node_and_edge_once():
    x = Tensor([1.0, 2.0], name="x")
    w = Tensor(0.5, requires_grad=True, name="w")
    b = Tensor(0.1, requires_grad=True, name="b")
    fig, ax = plt.subplots()
    assert draw_graph((x * w + b).sigmoid(), ax=ax) is ax
    labels = sorted(t.get_text() for t in ax.texts if t.get_text())
    assert labels == sorted(["x", "w", "b", "*", "+", "sigmoid"])
    assert len([c for c in ax.get_children() if isinstance(c, Annotation)]) == 5
    plt.close(fig)
    ax = draw_graph(parse("xo = ab*xa^2 + xb/cd"))
    assert any("ab*xa^2" in t.get_text() for t in ax.texts)  # non-linear: shown in the node
    plt.close(ax.figure)
    with pytest.raises(TypeError, match=r"^obj must be a Tensor, Graph, Program or primer model, "
                                        r"got 'xo = ab\*xa'"):
        draw_graph("xo = ab*xa")
