"""Shampoo, SOAP, LARS and LAMB beside two maintained implementations each (issue 26).

The references, all in the ``dev`` extra (a test whose package is missing is skipped):

- ``pytorch-optimizer`` (4.1): Shampoo, ScalableShampoo, SOAP (a transcription of the SOAP
  authors' code), LARS, Lamb;
- ``heavyball`` (3.2.1): SOAP. It has no plain Shampoo, LARS or LAMB; it is run eagerly
  (``heavyball.utils.compile_mode = None``, ``compile_step=False``), one tensor at a time
  (``multi_tensor=False``), with its state in float64 (``storage_dtype="float64"``), so it
  is a plain, deterministic float64 computation once its lr and shampoo_beta are given as
  float64 tensors (as Python floats they become float32 numbers against its step counter);
- ``torch-optimizer`` (0.3, no longer released but still installed widely): Shampoo, LARS,
  Lamb, the second implementation where heavyball has none.

As in tests/test_reference_optimizers.py, two runs start from the same float64 weights,
see the same mini-batches, use three parameter groups with their own hyperparameters, and
after 100 steps agree to 1e-12 relative (``RTOL``), losses and weights. Shampoo's roots are
taken by eigendecomposition here and by SVD in pytorch-optimizer; for these well-conditioned
statistics the two agree within the same 1e-12. Where the packages differ from each other or
from the paper, a test shows the difference (they disagree by more than the tolerance) and
that coursekit with the matching option agrees with each; the optimizer's docstring says
which coursekit follows by default. heavyball's SOAP is reproduced to the tolerance only
from its own first eigenbases: w2's first statistic is singular, and in its null space eigh
picks a different orthonormal pair for heavyball's bias-corrected ``G^T G`` than for the
authors' ``(1 - shampoo_beta) G^T G``. From those bases, with heavyball's two further choices
written out in the test (``max(sqrt(v_hat), eps)`` and a power step on ``L + 1e-8 max|eig| I``)
and its lr and shampoo_beta passed as float64 tensors, the runs agree to 1e-12.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import pytest
import torch

from coursekit.optim.layerwise import LAMB, LARS
from coursekit.optim.shampoo import Shampoo
from coursekit.optim.soap import SOAP, project
from tests._optim_helpers import TinyMLP, assert_resumes_exactly, rel_error

STEPS = 100
RTOL = 1e-12
_ROWS = torch.Generator().manual_seed(26)
BATCHES = [torch.randperm(8, generator=_ROWS)[:6] for _ in range(STEPS)]


def _train(model: TinyMLP, optimizer: torch.optim.Optimizer, start: int = 0,
           stop: int = STEPS) -> list[float]:
    return model.train_batches(optimizer, BATCHES[start:stop])


def _groups(model: TinyMLP, options: tuple[dict, dict, dict]) -> list[dict]:
    """Three groups: (w1, unused), (b1,), (w2, b2), each with its own options."""
    params = ([model.w1, model.unused], [model.b1], [model.w2, model.b2])
    return [{"params": ps, **dict(o)} for ps, o in zip(params, options, strict=True)]


def _quiet(make):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make()


def _gap(a: TinyMLP, b: TinyMLP) -> float:
    return max(rel_error(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def _assert_trained(model: TinyMLP) -> None:
    """The run moved the weights: agreement is not two copies of the initial point."""
    assert _gap(model, TinyMLP(torch.float64)) > 1e-2


def _run_pair(make_ours, make_theirs, options, steps: int = STEPS, model=TinyMLP,
              theirs_options=None):
    """Train coursekit's and a package's optimizer from the same start; return both models.

    ``theirs_options`` are the package's names for ``options`` where they differ."""
    ours_model, theirs_model = model(torch.float64), model(torch.float64)
    ours = make_ours(_groups(ours_model, options))
    theirs = _quiet(lambda: make_theirs(_groups(theirs_model, theirs_options or options)))
    ours_losses = _train(ours_model, ours, 0, steps)
    theirs_losses = _train(theirs_model, theirs, 0, steps)
    return ours_model, theirs_model, ours_losses, theirs_losses


def _assert_same_run(make_ours, make_theirs, options, rtol: float = RTOL, steps: int = STEPS,
                     model=TinyMLP, theirs_options=None) -> None:
    ours_model, theirs_model, ours_losses, theirs_losses = _run_pair(
        make_ours, make_theirs, options, steps, model, theirs_options)
    _assert_trained(ours_model)
    assert rel_error(torch.tensor(ours_losses), torch.tensor(theirs_losses)) <= rtol
    assert _gap(ours_model, theirs_model) <= rtol


def _package(name: str):
    return pytest.importorskip(name)


# --- LARS -------------------------------------------------------------------------------

LARS_GROUPS = (
    {"lr": 1.0, "weight_decay": 0.01, "momentum": 0.9, "trust_coefficient": 0.02},
    {"lr": 0.05, "weight_decay": 0.0, "momentum": 0.8, "trust_coefficient": 0.01},
    {"lr": 2.0, "weight_decay": 0.05, "momentum": 0.5, "trust_coefficient": 0.005},
)


@pytest.mark.parametrize("nesterov", [False, True])
def test_lars_matches_pytorch_optimizer_with_vectors_excluded(nesterov):
    """pytorch-optimizer's LARS leaves parameters with ndim <= 1 out of the trust ratio and
    the weight decay: coursekit's default ``exclude="vectors"``; no eps in the ratio."""
    package = _package("pytorch_optimizer")
    _assert_same_run(lambda g: LARS(g, nesterov=nesterov),
                     lambda g: package.LARS(g, nesterov=nesterov, foreach=False), LARS_GROUPS)


@pytest.mark.parametrize("nesterov", [False, True])
def test_lars_matches_torch_optimizer_with_no_weight_decay_groups_excluded(nesterov):
    """torch-optimizer's LARS leaves out the groups with ``weight_decay=0`` and adds 1e-8 to
    the ratio's denominator: ``exclude="no_weight_decay", eps=1e-8``."""
    package = _package("torch_optimizer")
    _assert_same_run(lambda g: LARS(g, nesterov=nesterov, exclude="no_weight_decay", eps=1e-8),
                     lambda g: package.LARS(g, momentum=0.9, nesterov=nesterov), LARS_GROUPS)


def test_lars_packages_disagree_on_which_parameters_are_excluded():
    """b2 (a bias in a group with weight decay) is excluded by pytorch-optimizer's rule and
    not by torch-optimizer's: the two packages part ways, and coursekit's rules follow each."""
    first, second = _package("pytorch_optimizer"), _package("torch_optimizer")
    a, b, _, _ = _run_pair(lambda g: first.LARS(g, foreach=False), second.LARS, LARS_GROUPS)
    assert _gap(a, b) > 1e-6
    ours_vectors, _, _, _ = _run_pair(LARS, second.LARS, LARS_GROUPS)
    ours_no_wd, _, _, _ = _run_pair(lambda g: LARS(g, exclude="no_weight_decay", eps=1e-8),
                                    second.LARS, LARS_GROUPS)
    assert _gap(ours_vectors, a) <= RTOL and _gap(ours_no_wd, b) <= RTOL


def test_lars_starts_the_momentum_buffer_as_torch_sgd_where_pytorch_optimizer_damps_it():
    """With ``dampening > 0`` pytorch-optimizer's buffer starts at 0, so its first step is
    ``(1 - dampening) d_1``; coursekit (like torch.optim.SGD and torch-optimizer) starts it
    at ``d_1``."""
    first, second = _package("pytorch_optimizer"), _package("torch_optimizer")
    options = tuple({**o, "dampening": 0.3} for o in LARS_GROUPS)
    _assert_same_run(lambda g: LARS(g, exclude="no_weight_decay", eps=1e-8), second.LARS,
                     options)
    ours, theirs, _, _ = _run_pair(LARS, lambda g: first.LARS(g, foreach=False), options)
    assert _gap(ours, theirs) > 1e-3


def test_lars_scales_each_layer_by_its_trust_ratio():
    """One step from known values: d = eta ||w|| / (||g|| + wd ||w||) (g + wd w)."""
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]], dtype=torch.float64))      # ||w|| = 5
    b = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    w.grad = torch.tensor([[0.0, 2.0]], dtype=torch.float64)                    # ||g|| = 2
    b.grad = torch.tensor([0.5], dtype=torch.float64)
    LARS([w, b], lr=1.0, momentum=0.0, weight_decay=0.1, trust_coefficient=0.01).step()
    ratio = 0.01 * 5 / (2 + 0.1 * 5)
    expected = [[3.0 - ratio * 0.3, 4.0 - ratio * (2.0 + 0.4)]]
    assert torch.allclose(w, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-15)
    assert torch.allclose(b, torch.tensor([0.5], dtype=torch.float64), rtol=0, atol=1e-15)


# --- LAMB -------------------------------------------------------------------------------

LAMB_GROUPS = (
    {"lr": 0.01, "weight_decay": 0.01, "betas": (0.9, 0.999)},
    {"lr": 0.003, "weight_decay": 0.0, "betas": (0.85, 0.99)},
    {"lr": 0.02, "weight_decay": 0.05, "betas": (0.8, 0.99)},
)
# The settings of the paper's third version that both packages implement.
PACKAGES_LAMB = dict(bias_correction=False, weight_norm_clip=10.0, exclude="none")


@pytest.mark.parametrize("decoupled", [True, False])
def test_lamb_matches_pytorch_optimizer(decoupled):
    """pytorch-optimizer: no bias correction, ||theta|| clipped at 10, eps added to the
    step's norm too, nothing excluded; decoupled weight decay by default. ``adam_debias=True``
    turns off its division of the step by ``1 - beta1^t`` (next test)."""
    package = _package("pytorch_optimizer")
    _assert_same_run(
        lambda g: LAMB(g, eps=1e-6, decoupled_weight_decay=decoupled, eps_in_trust_ratio=True,
                       **PACKAGES_LAMB),
        lambda g: package.Lamb(g, eps=1e-6, weight_decouple=decoupled, adam_debias=True,
                               foreach=False),
        LAMB_GROUPS)


def test_pytorch_optimizer_lamb_lengthens_its_first_steps_by_default():
    """By default pytorch-optimizer divides the whole step, after the trust ratio, by
    ``1 - beta1^t``: step t is ``lr / (1 - beta1^t) * ||theta||`` long, ten times the
    paper's at t = 1 with beta1 = 0.9. Neither the paper nor torch-optimizer does this, and
    coursekit offers no option for it."""
    package = _package("pytorch_optimizer")
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64))
    start = w.detach().clone()
    w.grad = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    package.Lamb([w], lr=0.01, betas=(0.9, 0.999), foreach=False).step()
    length = (w - start).norm().item() / start.norm().item()
    assert abs(length - 0.01 / (1 - 0.9)) < 1e-6   # eps = 1e-6 in the ratio: not exactly
    ours, theirs, _, _ = _run_pair(
        lambda g: LAMB(g, decoupled_weight_decay=True, eps_in_trust_ratio=True, **PACKAGES_LAMB),
        lambda g: package.Lamb(g, foreach=False), LAMB_GROUPS)
    assert _gap(ours, theirs) > 1e-3


def test_lamb_matches_torch_optimizer():
    """torch-optimizer: the paper's third version (no bias correction, ``weight_decay *
    theta`` added to the step before the ratio), ||theta|| clipped at 10, nothing excluded."""
    package = _package("torch_optimizer")
    _assert_same_run(lambda g: LAMB(g, eps=1e-6, **PACKAGES_LAMB),
                     lambda g: package.Lamb(g, eps=1e-6), LAMB_GROUPS)


def test_lamb_packages_differ_on_weight_decay_and_the_ratios_eps():
    """With weight decay pytorch-optimizer (decoupled, eps in the ratio) and torch-optimizer
    (the paper's coupled form) part ways; coursekit's options reproduce each (above)."""
    first, second = _package("pytorch_optimizer"), _package("torch_optimizer")
    a, b, _, _ = _run_pair(lambda g: first.Lamb(g, adam_debias=True, foreach=False),
                           second.Lamb, LAMB_GROUPS)
    assert _gap(a, b) > 1e-6


def test_lamb_default_is_the_published_algorithm_not_the_packages():
    """coursekit's default bias-corrects m and v (the published Algorithm 2) and excludes
    vectors; the packages do neither, and land elsewhere. Each setting alone matters."""
    second = _package("torch_optimizer")
    reference, _, _, _ = _run_pair(lambda g: LAMB(g, **PACKAGES_LAMB), second.Lamb, LAMB_GROUPS)
    for change in ({"bias_correction": True}, {"exclude": "vectors"}):
        ours, _, _, _ = _run_pair(lambda g, c=change: LAMB(g, **{**PACKAGES_LAMB, **c}),
                                  second.Lamb, LAMB_GROUPS)
        assert _gap(ours, reference) > 1e-4


class _BigMLP(TinyMLP):
    """TinyMLP with its weights scaled so that ||w1|| and ||w2|| exceed 10."""

    def __init__(self, dtype: torch.dtype, seed: int = 0):
        super().__init__(dtype, seed)
        with torch.no_grad():
            self.w1.mul_(5)
            self.w2.mul_(5)


def test_lamb_clips_the_weight_norm_at_10_only_when_asked():
    """Both packages compute phi(||theta||) = min(||theta||, 10); the authors' BERT code and
    coursekit's default use ||theta|| itself. On weights of norm above 10 the runs differ."""
    package = _package("torch_optimizer")
    _assert_same_run(lambda g: LAMB(g, **PACKAGES_LAMB), package.Lamb, LAMB_GROUPS,
                     model=_BigMLP)
    unclipped = {**PACKAGES_LAMB, "weight_norm_clip": None}
    ours, theirs, _, _ = _run_pair(lambda g: LAMB(g, **unclipped), package.Lamb, LAMB_GROUPS,
                                   model=_BigMLP)
    assert _gap(ours, theirs) > 1e-3


def test_lamb_step_has_the_norm_of_the_weight_times_lr():
    """phi(||theta||) / ||u|| * u has norm ||theta||: the step is lr ||theta|| long."""
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64))
    start = w.detach().clone()
    w.grad = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    LAMB([w], lr=0.1, weight_decay=0.01).step()
    assert abs((w - start).norm().item() - 0.1 * start.norm().item()) < 1e-14


# --- Shampoo ----------------------------------------------------------------------------

SHAMPOO_GROUPS = (
    {"lr": 0.05, "eps": 1e-4, "momentum": 0.0, "weight_decay": 0.01},
    {"lr": 0.02, "eps": 1e-3, "momentum": 0.5, "weight_decay": 0.0},
    {"lr": 0.1, "eps": 1e-4, "momentum": 0.9, "weight_decay": 0.05},
)


def _renamed(options, **names):
    """The groups' options under a package's names (``eps="matrix_eps"``)."""
    return tuple({names.get(k, k): v for k, v in o.items()} for o in options)


@pytest.mark.parametrize("decoupled", [False, True])
def test_shampoo_matches_pytorch_optimizer(decoupled):
    """pytorch-optimizer's Shampoo is the paper's algorithm with the same momentum and weight
    decay; it takes roots by SVD and coursekit by eigendecomposition, equal here to 1e-12."""
    package = _package("pytorch_optimizer")
    _assert_same_run(lambda g: Shampoo(g, decoupled_weight_decay=decoupled),
                     lambda g: package.Shampoo(g, weight_decouple=decoupled),
                     SHAMPOO_GROUPS, theirs_options=_renamed(SHAMPOO_GROUPS, eps="matrix_eps"))


def test_shampoo_matches_pytorch_optimizers_scalable_shampoo_set_up_as_the_paper():
    """ScalableShampoo (Anil et al., 2020) becomes the paper's algorithm on matrices without
    grafting, momentum or exponential averaging (betas=(0, 1)), preconditioning from the
    first step with fresh roots at every step, SVD roots and whole matrices. It leaves
    vectors unpreconditioned, so only the weights are trained here (the biases stay put)."""
    package = _package("pytorch_optimizer")
    from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting

    def weights_only(groups):
        return [{**g, "params": [p for p in g["params"] if p.ndim == 2]} for g in groups]

    options = tuple({"lr": o["lr"]} for o in SHAMPOO_GROUPS)
    # beta2 = 1 sums the statistics; its constructor refuses 1, a group's own betas do not.
    theirs_options = tuple({**o, "betas": (0.0, 1.0)} for o in options)
    _assert_same_run(
        lambda g: Shampoo(weights_only(g), eps=1e-4),
        lambda g: package.ScalableShampoo(
            weights_only(g), matrix_eps=1e-4, start_preconditioning_step=1,
            preconditioning_compute_steps=1, graft_type=LayerWiseGrafting.NONE, nesterov=False,
            use_svd=True, shape_interpretation=False),
        options, theirs_options=theirs_options)


def test_shampoo_refreshes_its_roots_from_the_first_step_where_pytorch_optimizer_waits():
    """With ``precondition_frequency=f`` pytorch-optimizer computes the roots at t = f, 2f,
    ... from zero matrices, so its first f - 1 steps leave the weights where they are;
    coursekit refreshes at t = 1, 1 + f, ... (as torch-optimizer does) and moves at once."""
    package = _package("pytorch_optimizer")
    model = TinyMLP(torch.float64)
    start = model.w2.detach().clone()
    _train(model, package.Shampoo(model.parameters(), lr=0.1, preconditioning_compute_steps=3),
           0, 2)
    assert torch.equal(model.w2, start)
    ours = TinyMLP(torch.float64)
    _train(ours, Shampoo(ours.parameters(), lr=0.1, precondition_frequency=3), 0, 2)
    assert rel_error(ours.w2, start) > 1e-3


def test_shampoo_matches_torch_optimizer_on_vectors_with_its_exponent():
    """torch-optimizer raises H to -1/k, not the paper's -1/(2k): with ``inverse_root=1``
    coursekit agrees with it on vectors (k = 1), trained here with the weights held fixed,
    including the refresh every third step that both take at t = 1, 4, 7, ..."""
    package = _package("torch_optimizer")

    def vectors_only(groups):
        return [{**g, "params": [p for p in g["params"] if p.ndim == 1]} for g in groups]

    # H^{-1} g is a long step while H is small: eps of order one keeps it in bounds.
    options = tuple({**o, "eps": 1.0 + i} for i, o in enumerate(SHAMPOO_GROUPS))
    _assert_same_run(
        lambda g: Shampoo(vectors_only(g), inverse_root=1, precondition_frequency=3),
        lambda g: package.Shampoo(vectors_only(g), update_freq=3),
        options, theirs_options=_renamed(options, eps="epsilon"))


def test_torch_optimizer_shampoo_differs_from_the_paper_on_matrices():
    """On matrices torch-optimizer differs twice: the exponent (-1/2 for a matrix, not -1/4)
    and statistics of the right side taken from the gradient already preconditioned on the
    left. Even with coursekit's ``inverse_root=2`` the runs part ways (the second
    difference); with the paper's exponent too."""
    package = _package("torch_optimizer")
    theirs_options = _renamed(SHAMPOO_GROUPS, eps="epsilon")
    same_root, theirs, _, _ = _run_pair(lambda g: Shampoo(g, inverse_root=2), package.Shampoo,
                                        SHAMPOO_GROUPS, theirs_options=theirs_options)
    paper, _, _, _ = _run_pair(Shampoo, package.Shampoo, SHAMPOO_GROUPS,
                               theirs_options=theirs_options)
    assert rel_error(same_root.w2, theirs.w2) > 1e-4
    assert rel_error(paper.w2, theirs.w2) > 1e-4


def test_shampoo_on_a_vector_is_full_matrix_adagrad():
    """k = 1: theta -= lr (eps I + sum g g^T)^{-1/2} g, written out with numpy-free torch."""
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    gradients = [torch.tensor(g, dtype=torch.float64)
                 for g in ([0.3, -0.1, 0.2], [0.1, 0.4, -0.3], [-0.2, 0.2, 0.1])]
    optimizer = Shampoo([theta], lr=0.1, eps=1e-3)
    expected = theta.detach().clone()
    h = 1e-3 * torch.eye(3, dtype=torch.float64)
    for g in gradients:
        theta.grad = g.clone()
        optimizer.step()
        h = h + torch.outer(g, g)
        eigenvalues, vectors = torch.linalg.eigh(h)
        expected = expected - 0.1 * (vectors @ torch.diag(eigenvalues**-0.5) @ vectors.T @ g)
    assert rel_error(theta, expected) <= 1e-14


# --- SOAP -------------------------------------------------------------------------------

SOAP_GROUPS = (
    {"lr": 0.01, "weight_decay": 0.01, "betas": (0.9, 0.95), "precondition_frequency": 1},
    {"lr": 0.003, "weight_decay": 0.0, "betas": (0.85, 0.99), "eps": 1e-10},
    {"lr": 0.02, "weight_decay": 0.05, "betas": (0.8, 0.95), "shampoo_beta": 0.9,
     "precondition_frequency": 3},
)


@pytest.mark.parametrize("precondition_1d", [False, True])
def test_soap_matches_pytorch_optimizer_the_authors_algorithm(precondition_1d):
    """pytorch-optimizer transcribes the authors' code; with its float32 QR
    (``float32_qr=True``) coursekit takes the very same steps."""
    package = _package("pytorch_optimizer")
    _assert_same_run(lambda g: SOAP(g, float32_qr=True, precondition_1d=precondition_1d),
                     lambda g: package.SOAP(g, precondition_1d=precondition_1d),
                     SOAP_GROUPS)


def test_soap_computes_its_bases_in_the_parameters_dtype_where_pytorch_optimizer_uses_float32():
    """pytorch-optimizer's QR in float32 leaves its float64 run about 1e-7 off per refresh,
    which the power steps carry forward: well above the float64 tolerance."""
    package = _package("pytorch_optimizer")
    ours, theirs, _, _ = _run_pair(SOAP, package.SOAP, SOAP_GROUPS)
    assert _gap(ours, theirs) > 1e-8


def _heavyball():
    package = _package("heavyball")
    import heavyball.utils
    heavyball.utils.compile_mode = None   # eager: no torch.compile anywhere
    return package


def _heavyball_soap(groups, **options):
    """heavyball's SOAP as a plain float64 computation, with the authors' layout."""
    return _heavyball().SOAP(groups, storage_dtype="float64", compile_step=False,
                             multi_tensor=False, use_precond_schedule=False, palm=False,
                             merge_dims=False, warmup_steps=0, **options)


HEAVYBALL_GROUPS = tuple({k: v for k, v in o.items()
                          if k not in ("weight_decay", "precondition_frequency")}
                         for o in SOAP_GROUPS)

# heavyball combines a group's lr (its warm-up factor, ``base_lr * step / step.clamp(...)`` in
# BaseOpt._step_inner) and its shampoo_beta (debiased, utils.beta_debias(beta, step)) with its
# int64 step tensor: given as Python floats they become float32 numbers, about 1e-8 off; as
# 0-dim float64 tensors they stay float64. shampoo_beta is given in every group: where a group
# leaves it out, coursekit uses beta2 and heavyball 0.95.
HEAVYBALL_FLOAT64_GROUPS = tuple(
    {**o, "lr": torch.tensor(o["lr"], dtype=torch.float64),
     "shampoo_beta": torch.tensor(o.get("shampoo_beta", o["betas"][1]), dtype=torch.float64)}
    for o in HEAVYBALL_GROUPS)


def _heavyball_state(optimizer, param: torch.Tensor, name: str):
    """heavyball's SOAP state ``name`` ("Q", "GG") of ``param``, without its bucket axis."""
    state = optimizer.state[param][0]
    (key,) = [k for k in state if k.startswith(f"scale_by_soap_{name}_")]
    return [None if x is None else x[0] for x in state[key]]


class _HeavyballSOAP(SOAP):
    """coursekit's SOAP (``eps_placement="v_hat"``, no decay, a refresh every step) with
    heavyball's two choices written out:

    - ``floor``: the denominator is ``max(sqrt(v_hat), eps)``, not ``sqrt(v_hat) + eps``
      (heavyball's utils.eps_sqrt);
    - ``lift``: the power step is taken on ``L + lift * max|diag(Q^T L Q)| * I``, that is
      ``QR(L Q + lift * max|...| * Q)`` (utils.get_orthogonal_matrix_QR's ``work``, with its
      floor of 1e-8: it is not the group's eps).

    Not written out, as they change nothing but rounding: heavyball keeps its statistics
    bias-corrected (``L / (1 - shampoo_beta^t)``; eigenvectors, the estimates' order, the QR
    and the relative lift do not see the scale), keeps ``m`` in the eigenbasis and rotates
    it at each refresh (coursekit projects ``m`` kept in the original basis), and puts the
    sorted QR's columns back in their old places (coursekit permutes ``v`` instead)."""

    def __init__(self, params, *, floor: bool = True, lift: float = 1e-8, **options):
        super().__init__(params, weight_decay=0.0, precondition_frequency=1, **options)
        self.floor, self.lift = floor, lift

    def update(self, param, grad, state, group):
        if state["step"] == 0:      # statistics and bases only, as coursekit's SOAP
            super().update(param, grad, state, group)
            return
        beta1, beta2 = group["betas"]
        shampoo_beta = beta2 if group["shampoo_beta"] is None else group["shampoo_beta"]
        state["step"] += 1
        t = state["step"] - 1
        m, v, bases = state["exp_avg"], state["exp_avg_sq"], state["Q"]
        m.lerp_(grad, 1 - beta1)
        v.lerp_(project(grad, bases).square(), 1 - beta2)
        sqrt_v_hat = (v / (1 - beta2**t)).sqrt()
        denom = sqrt_v_hat.clamp(min=group["eps"]) if self.floor else sqrt_v_hat + group["eps"]
        param.sub_(project(project(m, bases) / denom, bases, back=True),
                   alpha=group["lr"] / (1 - beta1**t))
        self._accumulate(state["GG"], grad, shampoo_beta)
        for dim, (statistic, basis) in enumerate(zip(state["GG"], bases, strict=True)):
            if statistic is None:
                continue
            power = statistic @ basis
            estimates = (basis * power).sum(dim=0)
            power = power + self.lift * estimates.abs().max() * basis
            order = torch.argsort(estimates, descending=True)
            v.copy_(v.index_select(dim, order))
            bases[dim] = torch.linalg.qr(power.index_select(1, order))[0]


def _run_from_heavyballs_first_bases(make_ours, theirs_options=HEAVYBALL_FLOAT64_GROUPS):
    """Both optimizers take the first step (bases only, no move); coursekit's then gets
    heavyball's bases for w1 and w2 (its own pick in w2's null space set aside: see
    test_heavyball_soap_starts_from_another_eigenbasis_of_a_singular_statistic), and both
    take the remaining steps."""
    ours_model, theirs_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    ours = make_ours(_groups(ours_model, HEAVYBALL_GROUPS))
    theirs = _quiet(lambda: _heavyball_soap(_groups(theirs_model, theirs_options),
                                            weight_decay=0.0, precondition_frequency=1))
    ours_losses, theirs_losses = _train(ours_model, ours, 0, 1), _train(theirs_model, theirs, 0, 1)
    for name in ("w1", "w2"):
        ours.state[getattr(ours_model, name)]["Q"] = [
            q.clone() for q in _heavyball_state(theirs, getattr(theirs_model, name), "Q")]
    ours_losses += _train(ours_model, ours, 1, STEPS)
    theirs_losses += _train(theirs_model, theirs, 1, STEPS)
    return ours_model, theirs_model, ours_losses, theirs_losses


def test_heavyball_soap_starts_from_another_eigenbasis_of_a_singular_statistic():
    """The first difference. w2's gradient (3 x 5) has rank 3, so its first right statistic
    ``R`` (5 x 5) has a null space of dimension 2, in which any orthonormal pair is an
    eigenbasis. coursekit and the authors take ``R = (1 - shampoo_beta) G^T G``; heavyball
    keeps bias-corrected statistics, so its first is ``G^T G`` (utils.init_preconditioner:
    ``update_ggt(grad, state["GG"], ..., 0)``). The two scalings' roundings make eigh return
    different pairs there: both bases diagonalize ``R`` and agree on its three other
    eigenvectors up to sign, but their null-space columns are rotated against each other.
    SOAP's first rotated step depends on that pick (Adam's coordinate-wise scaling is not
    invariant under rotation), so the matrix's first step already differs (about 1e-3)."""
    ours_model, theirs_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    ours = SOAP(_groups(ours_model, HEAVYBALL_GROUPS), weight_decay=0.0,
                precondition_frequency=1, eps_placement="v_hat")
    theirs = _quiet(lambda: _heavyball_soap(_groups(theirs_model, HEAVYBALL_FLOAT64_GROUPS),
                                            weight_decay=0.0, precondition_frequency=1))
    _train(ours_model, ours, 0, 1)
    _train(theirs_model, theirs, 0, 1)
    statistic = ours.state[ours_model.w2]["GG"][1]
    shampoo_beta = HEAVYBALL_GROUPS[2]["shampoo_beta"]
    assert rel_error(_heavyball_state(theirs, theirs_model.w2, "GG")[1],
                     statistic / (1 - shampoo_beta)) <= RTOL
    eigenvalues = torch.linalg.eigvalsh(statistic)
    assert (eigenvalues[:2].abs() <= RTOL * eigenvalues[-1]).all()
    assert eigenvalues[2] > 1e-3 * eigenvalues[-1]
    ours_basis = ours.state[ours_model.w2]["Q"][1]
    theirs_basis = _heavyball_state(theirs, theirs_model.w2, "Q")[1]
    for basis in (ours_basis, theirs_basis):
        rotated = basis.T @ statistic @ basis
        assert rel_error(rotated, torch.diag(rotated.diagonal())) <= RTOL
    overlap = (ours_basis.T @ theirs_basis).abs()
    assert rel_error(overlap[:3, :3], torch.eye(3)) <= RTOL
    # Which pair eigh returns is rounding's pick: only that the two are not the same pair
    # (up to sign and order) is asserted.
    null_overlap = overlap[3:, 3:]
    assert min(rel_error(null_overlap, torch.eye(2)),
               rel_error(null_overlap, torch.eye(2).flip(0))) > 1e-2
    two_steps, theirs_two_steps, _, _ = _run_pair(
        lambda g: SOAP(g, weight_decay=0.0, precondition_frequency=1, eps_placement="v_hat"),
        lambda g: _heavyball_soap(g, weight_decay=0.0, precondition_frequency=1),
        HEAVYBALL_GROUPS, steps=2, theirs_options=HEAVYBALL_FLOAT64_GROUPS)
    assert rel_error(two_steps.w2, theirs_two_steps.w2) > 1e-4


def test_soap_with_heavyballs_first_bases_and_choices_takes_heavyballs_steps():
    """Given heavyball's first bases, coursekit's SOAP with heavyball's eps floor and lifted
    power step (_HeavyballSOAP) and heavyball's scalars kept in float64 takes heavyball's
    99 further steps to 1e-12 (losses and weights, every group)."""
    ours, theirs, ours_losses, theirs_losses = _run_from_heavyballs_first_bases(
        lambda g: _HeavyballSOAP(g, eps_placement="v_hat"))
    _assert_trained(ours)
    assert rel_error(torch.tensor(ours_losses), torch.tensor(theirs_losses)) <= RTOL
    assert _gap(ours, theirs) <= RTOL


@pytest.mark.parametrize("without", ["floor", "lift", "float64_scalars", "both_choices"])
def test_each_of_heavyballs_choices_alone_moves_soap_off_its_steps(without):
    """Each of the differences matters on its own: with heavyball's first bases, dropping
    the eps floor (eps added, as coursekit's ``eps_placement="v_hat"``), the lift of the
    power step, or heavyball's scalars in float64 leaves the runs more than 1e-12 apart;
    coursekit's SOAP as it is (both choices dropped) too. Each gap is about 1e-7 to 1e-6."""
    make_ours = {
        "floor": lambda g: _HeavyballSOAP(g, floor=False, eps_placement="v_hat"),
        "lift": lambda g: _HeavyballSOAP(g, lift=0.0, eps_placement="v_hat"),
        "float64_scalars": lambda g: _HeavyballSOAP(g, eps_placement="v_hat"),
        "both_choices": lambda g: SOAP(g, weight_decay=0.0, precondition_frequency=1,
                                       eps_placement="v_hat"),
    }[without]
    theirs_options = HEAVYBALL_GROUPS if without == "float64_scalars" else HEAVYBALL_FLOAT64_GROUPS
    ours, theirs, _, _ = _run_from_heavyballs_first_bases(make_ours, theirs_options)
    assert _gap(ours, theirs) > 1e-8


def test_soap_and_heavyball_solve_the_same_problem_but_not_with_the_same_numbers():
    """From their own first bases (coursekit's SOAP as it is, with ``eps_placement="v_hat"``,
    no weight decay and a refresh every step) the runs reach the same loss curve to 1% but
    their weights stay more than 1e-6 apart, and the vectors' plain Adam steps (whose eps,
    1e-10, is far below sqrt(v_hat)) agree to 1e-9 at the second step while w2's already
    differs: the pick in the null space of the first statistic (the test above) sends the
    matrices elsewhere, and the vectors follow."""
    ours, theirs, ours_losses, theirs_losses = _run_pair(
        lambda g: SOAP(g, weight_decay=0.0, precondition_frequency=1, eps_placement="v_hat"),
        lambda g: _heavyball_soap(g, weight_decay=0.0, precondition_frequency=1),
        HEAVYBALL_GROUPS)
    _assert_trained(ours)
    assert rel_error(torch.tensor(ours_losses), torch.tensor(theirs_losses)) < 1e-2
    assert _gap(ours, theirs) > 1e-6
    one_step, theirs_one_step, _, _ = _run_pair(
        lambda g: SOAP(g, weight_decay=0.0, precondition_frequency=1, eps_placement="v_hat"),
        lambda g: _heavyball_soap(g, weight_decay=0.0, precondition_frequency=1),
        HEAVYBALL_GROUPS, steps=2)
    assert rel_error(one_step.b1, theirs_one_step.b1) < 1e-9
    assert rel_error(one_step.w2, theirs_one_step.w2) > 1e-7


def test_soap_eps_placement_changes_the_steps():
    """``eps`` on ``sqrt(v)`` (the authors') and on ``sqrt(v_hat)`` (Adam's)
    give different runs when eps is not negligible against sqrt(v)."""
    options = tuple({**o, "eps": 1e-3} for o in SOAP_GROUPS)
    authors, adams, _, _ = _run_pair(SOAP, lambda g: SOAP(g, eps_placement="v_hat"), options)
    assert _gap(authors, adams) > 1e-4


# --- state_dict round trips and bad hyperparameters --------------------------------------

ROUND_TRIPS = {
    "LARS": lambda model: LARS(_groups(model, LARS_GROUPS), nesterov=True),
    "LARS-excluding-no-weight-decay": lambda model: LARS(_groups(model, LARS_GROUPS),
                                                         exclude="no_weight_decay"),
    "LAMB": lambda model: LAMB(_groups(model, LAMB_GROUPS)),
    "LAMB-packages": lambda model: LAMB(_groups(model, LAMB_GROUPS), **PACKAGES_LAMB,
                                        decoupled_weight_decay=True),
    "Shampoo": lambda model: Shampoo(_groups(model, SHAMPOO_GROUPS), precondition_frequency=3),
    "SOAP": lambda model: SOAP(_groups(model, SOAP_GROUPS), precondition_1d=True),
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_state_dict_round_trip_continues_the_uninterrupted_run(name):
    """Save at step 50, load into a fresh optimizer on a copy of the weights, continue:
    the result is the uninterrupted run's, bit for bit."""
    assert_resumes_exactly(ROUND_TRIPS[name], BATCHES, 50)


BAD_HYPERPARAMETERS = [
    (LARS, {"lr": -1}, "lr must be >= 0, got -1"),
    (LARS, {"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
    (LARS, {"trust_coefficient": 0}, "trust_coefficient must be > 0, got 0"),
    (LARS, {"weight_decay": -0.1}, "weight_decay must be >= 0, got -0.1"),
    (LARS, {"nesterov": True, "momentum": 0.0},
     "nesterov must be False unless momentum > 0 and dampening = 0, got True"),
    (LARS, {"exclude": "bias"},
     "exclude must be one of 'vectors', 'no_weight_decay', 'all', 'none', got 'bias'"),
    (LAMB, {"betas": (0.9, 1.0)}, r"betas\[1\] must be in \[0, 1\), got 1.0"),
    (LAMB, {"eps": -1e-6}, "eps must be >= 0, got -1e-06"),
    (LAMB, {"weight_norm_clip": 0.0}, "weight_norm_clip must be > 0, got 0.0"),
    (LAMB, {"exclude": None}, "exclude must be one of .*, got None"),
    (Shampoo, {"eps": 0}, "eps must be > 0, got 0"),
    (Shampoo, {"momentum": -0.5}, r"momentum must be in \[0, 1\), got -0.5"),
    (Shampoo, {"precondition_frequency": 0},
     "precondition_frequency must be an integer >= 1, got 0"),
    (Shampoo, {"inverse_root": 2.5}, "inverse_root must be an integer >= 1, got 2.5"),
    (SOAP, {"shampoo_beta": 1.0}, r"shampoo_beta must be in \[0, 1\), got 1.0"),
    (SOAP, {"precondition_frequency": 0},
     "precondition_frequency must be an integer >= 1, got 0"),
    (SOAP, {"eps_placement": "sqrt"}, "eps_placement must be one of 'v', 'v_hat', got 'sqrt'"),
    (SOAP, {"lr": float("nan")}, "lr must be finite, got nan"),
]


@pytest.mark.parametrize(("cls", "options", "message"), BAD_HYPERPARAMETERS,
                         ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_bad_hyperparameters_fail_with_a_message_naming_them(cls, options, message):
    with pytest.raises(ValueError, match=message):
        cls([torch.nn.Parameter(torch.zeros(2, 2))], **options)


@pytest.mark.parametrize("cls", [LARS, LAMB])
def test_a_group_with_an_unknown_exclude_rule_is_refused(cls):
    params = [torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="exclude must be one of"):
        cls([{"params": [params[0]]}, {"params": [params[1]], "exclude": "biases"}])
