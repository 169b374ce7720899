"""Grading tests of the example assignment (``example.ipynb``).

Probes run in the student's process and call the notebook's functions; the
references run in the grader with ``torch.optim`` in float64, an implementation
independent of the solution notebook. Public tests have fixed inputs and ship
with the homework; hidden tests draw theirs from ``seed``.
"""

import numpy as np
import torch

from coursekit.grading import Assignment, Question, Test, probe


def _tensor(x):
    return torch.tensor(x, dtype=torch.float64)


# Question 1: heavy-ball momentum ---------------------------------------------

@probe
def momentum_steps(student, theta, grads, velocity, lr, mu):
    """Call the student's momentum_step once per gradient, threading the state."""
    step = student["momentum_step"]
    for grad in grads:
        theta, velocity = step(theta, grad, velocity, lr=lr, mu=mu)
    return {"theta": theta, "velocity": velocity}


def momentum_reference(theta, grads, velocity, lr, mu):
    """torch.optim.SGD with momentum (dampening 0): v = mu v + g; theta -= lr v."""
    param = torch.nn.Parameter(_tensor(theta))
    optimizer = torch.optim.SGD([param], lr=lr, momentum=mu)
    optimizer.state[param]["momentum_buffer"] = _tensor(velocity)
    for grad in grads:
        param.grad = _tensor(grad)
        optimizer.step()
    return {"theta": param.detach().numpy(),
            "velocity": optimizer.state[param]["momentum_buffer"].numpy()}


def random_momentum_inputs(rng):
    dim = 5
    return {"theta": rng.normal(size=dim), "grads": rng.normal(size=(4, dim)),
            "velocity": np.zeros(dim), "lr": rng.uniform(0.01, 0.2),
            "mu": rng.uniform(0.5, 0.95)}


# Question 2: one Adam step ------------------------------------------------------

@probe
def adam_steps(student, theta, grads, m, v, t, lr, beta1, beta2, eps):
    """Call the student's adam_step for steps t, t+1, ..., one per gradient."""
    step = student["adam_step"]
    for k, grad in enumerate(grads):
        theta, m, v = step(theta, grad, m, v, t + k, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    return {"theta": theta, "m": m, "v": v}


@probe
def adam_moments(student, theta, grads, m, v, t, lr, beta1, beta2, eps):
    """Only the moments m and v after the student's adam_step calls."""
    step = student["adam_step"]
    for k, grad in enumerate(grads):
        theta, m, v = step(theta, grad, m, v, t + k, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    return {"m": m, "v": v}


def adam_reference(theta, grads, m, v, t, lr, beta1, beta2, eps):
    """torch.optim.Adam started from state (m, v) after t - 1 steps."""
    param = torch.nn.Parameter(_tensor(theta))
    optimizer = torch.optim.Adam([param], lr=lr, betas=(beta1, beta2), eps=eps)
    optimizer.state[param].update(step=torch.tensor(float(t - 1)), exp_avg=_tensor(m),
                                  exp_avg_sq=_tensor(v))
    for grad in grads:
        param.grad = _tensor(grad)
        optimizer.step()
    state = optimizer.state[param]
    return {"theta": param.detach().numpy(), "m": state["exp_avg"].numpy(),
            "v": state["exp_avg_sq"].numpy()}


def adam_moments_reference(**inputs):
    result = adam_reference(**inputs)
    return {"m": result["m"], "v": result["v"]}


def random_adam_state(rng, steps):
    dim = 6
    return {"theta": rng.normal(size=dim), "grads": rng.normal(size=(steps, dim)),
            "m": 0.1 * rng.normal(size=dim), "v": 0.1 * rng.uniform(size=dim),
            "t": int(rng.integers(2, 50)), "lr": rng.uniform(1e-3, 1e-1),
            "beta1": rng.uniform(0.8, 0.95), "beta2": rng.uniform(0.9, 0.999), "eps": 1e-8}


def random_adam_start(rng):
    dim = 4
    return {"theta": rng.normal(size=dim), "grads": rng.normal(size=(5, dim)),
            "m": np.zeros(dim), "v": np.zeros(dim), "t": 1, "lr": rng.uniform(1e-3, 1e-1),
            "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


ADAM_FIRST_STEP = {"theta": np.array([0.5, -1.0, 2.0]), "grads": np.array([[0.2, -0.4, 1.5]]),
                   "m": np.zeros(3), "v": np.zeros(3), "t": 1, "lr": 0.1, "beta1": 0.9,
                   "beta2": 0.999, "eps": 1e-8}


# Question 3: an Adam trajectory ---------------------------------------------------

@probe
def trajectory(student, A, b, theta0, num_steps, lr):
    """The student's adam_trajectory on f(x) = x^T A x / 2 - b^T x."""
    def grad_fn(theta):
        return A @ theta - b

    path = student["adam_trajectory"](theta0, grad_fn, num_steps, lr=lr)
    return np.asarray(path, dtype=np.float64)


def trajectory_reference(A, b, theta0, num_steps, lr):
    """torch.optim.Adam on the same quadratic, gradients from autograd."""
    A, b = _tensor(A), _tensor(b)
    param = torch.nn.Parameter(_tensor(theta0))
    optimizer = torch.optim.Adam([param], lr=lr)
    path = [param.detach().clone()]
    for _ in range(num_steps):
        optimizer.zero_grad()
        loss = 0.5 * param @ A @ param - b @ param
        loss.backward()
        optimizer.step()
        path.append(param.detach().clone())
    return torch.stack(path).numpy()


def random_quadratic(rng):
    dim = 3
    M = rng.normal(size=(dim, dim))
    return {"A": M @ M.T + dim * np.eye(dim), "b": rng.normal(size=dim),
            "theta0": rng.normal(size=dim), "num_steps": int(rng.integers(5, 20)),
            "lr": rng.uniform(0.01, 0.1)}


ASSIGNMENT = Assignment(seed=20240917, questions=[
    Question("momentum", "Heavy-ball momentum step", [
        Test("first_step", momentum_steps, reference=momentum_reference, points=1,
             description="one step from a non-zero velocity",
             inputs={"theta": np.array([1.0, -2.0, 0.5]), "grads": np.array([[0.3, -0.1, 2.0]]),
                     "velocity": np.array([0.1, 0.0, -0.2]), "lr": 0.1, "mu": 0.9}),
        Test("several_steps", momentum_steps, reference=momentum_reference, points=2,
             hidden=True, inputs=random_momentum_inputs),
    ]),
    Question("adam", "One Adam step", [
        Test("first_step", adam_steps, reference=adam_reference, points=1,
             description="the first step (t = 1) from zero moments", inputs=ADAM_FIRST_STEP),
        Test("moments", adam_moments, reference=adam_moments_reference, points=1,
             hidden=True, inputs=lambda rng: random_adam_state(rng, steps=1)),
        Test("later_step", adam_steps, reference=adam_reference, points=1, hidden=True,
             inputs=lambda rng: random_adam_state(rng, steps=1)),
        Test("several_steps", adam_steps, reference=adam_reference, points=2, hidden=True,
             inputs=random_adam_start),
    ]),
    Question("trajectory", "An Adam trajectory", [
        Test("short_run", trajectory, reference=trajectory_reference, points=1,
             description="3 steps on a 2-d quadratic",
             inputs={"A": np.array([[3.0, 0.5], [0.5, 1.0]]), "b": np.array([1.0, -1.0]),
                     "theta0": np.array([0.0, 0.0]), "num_steps": 3, "lr": 0.1}),
        Test("longer_run", trajectory, reference=trajectory_reference, points=1,
             hidden=True, inputs=random_quadratic),
    ]),
])
