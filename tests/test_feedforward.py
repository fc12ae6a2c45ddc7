"""Tests of course_lib.feedforward against PyTorch (float64) and centered numerical gradients."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close, t
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course_lib import feedforward as ff
from course_lib.gradcheck import numerical_gradient, rel_error

SHAPES = [((1, 1), 1), ((4, 3), 5), ((2, 7, 3), 4)]  # input shape (..., D), output width M


@pytest.mark.parametrize(("x_shape", "M"), SHAPES)
def test_affine_forward_matches_torch(rng, x_shape, M):
    x = rng.standard_normal(x_shape)
    W = rng.standard_normal((x_shape[-1], M))
    b = rng.standard_normal(M)
    out, _ = ff.affine_forward(x, W, b)
    assert out.shape == (*x_shape[:-1], M)
    assert_close(out, F.linear(t(x), t(W).T, t(b)))


@pytest.mark.parametrize(("x_shape", "M"), SHAPES)
def test_affine_backward_matches_autograd_and_numerical(rng, x_shape, M):
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal((x_shape[-1], M)), rng.standard_normal(M)
    out, cache = ff.affine_forward(x, W, b)
    dout = rng.standard_normal(out.shape)
    dx, dW, db = ff.affine_backward(dout, cache)

    tx, tW, tb = t(x, True), t(W, True), t(b, True)
    (tx @ tW + tb).backward(t(dout))
    assert_close(dx, tx.grad)
    assert_close(dW, tW.grad)
    assert_close(db, tb.grad)

    f = lambda: ff.affine_forward(x, W, b)[0]  # noqa: E731
    for name, value, grad in [("x", x, dx), ("W", W, dW), ("b", b, db)]:
        assert rel_error(grad, numerical_gradient(f, value, dout)) < 1e-7, name


def test_affine_forward_rejects_mismatched_shapes(rng):
    with pytest.raises(ValueError, match="features"):
        ff.affine_forward(rng.standard_normal((2, 3)), rng.standard_normal((4, 5)), np.zeros(5))


ACTIVATIONS = [("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("relu", torch.relu)]


@pytest.mark.parametrize(("name", "torch_fn"), ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1,), (3, 4), (2, 3, 5)])
def test_activation_forward_backward_match_torch(rng, name, torch_fn, shape):
    forward, backward = ff.ACTIVATIONS[name]
    x = rng.standard_normal(shape) * 3
    if name == "relu":
        x[np.abs(x) < 1e-3] = 0.5  # keep the finite difference away from the kink
    out, cache = forward(x)
    dout = rng.standard_normal(shape)
    dx = backward(dout, cache)

    tx = t(x, True)
    tout = torch_fn(tx)
    tout.backward(t(dout))
    assert_close(out, tout)
    assert_close(dx, tx.grad)
    assert rel_error(dx, numerical_gradient(lambda: forward(x)[0], x, dout)) < 1e-7


def test_relu_gradient_at_zero_is_zero_like_torch():
    x = np.array([-1.0, 0.0, 1.0])
    dx = ff.relu_backward(np.ones(3), ff.relu_forward(x)[1])
    tx = t(x, True)
    torch.relu(tx).sum().backward()
    assert_close(dx, tx.grad)


def test_sigmoid_is_stable_at_extremes():
    x = np.array([-1e4, -745.0, -30.0, 0.0, 30.0, 745.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = ff.sigmoid(x)
    assert np.all(np.isfinite(out))
    assert_close(out, torch.sigmoid(t(x)))


@pytest.mark.parametrize(("N", "C"), [(1, 2), (5, 3), (16, 10)])
def test_softmax_loss_matches_torch(rng, N, C):
    scores = rng.standard_normal((N, C)) * 2
    y = rng.integers(0, C, N)
    loss, dscores = ff.softmax_loss(scores, y)
    ts = t(scores, True)
    tloss = F.cross_entropy(ts, torch.tensor(y))
    tloss.backward()
    assert_close(loss, tloss.item())
    assert_close(dscores, ts.grad)
    assert rel_error(dscores, numerical_gradient(lambda: ff.softmax_loss(scores, y)[0], scores)) < 1e-7


def test_softmax_loss_survives_huge_scores():
    scores = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]])
    y = np.array([2, 0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dscores = ff.softmax_loss(scores, y)
    assert_close(loss, F.cross_entropy(t(scores), torch.tensor(y)).item())
    assert np.all(np.isfinite(dscores))


@pytest.mark.parametrize("y", [np.array([0, 3]), np.array([0.0, 1.0]), np.array([-1, 0]), np.array([0])])
def test_softmax_loss_rejects_bad_labels(y):
    with pytest.raises(ValueError):
        ff.softmax_loss(np.zeros((2, 3)), y)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (4, 3), elements=st.floats(-50, 50)), st.lists(st.integers(0, 2), min_size=4, max_size=4))
def test_softmax_loss_properties(scores, labels):
    y = np.array(labels)
    loss, dscores = ff.softmax_loss(scores, y)
    assert loss >= 0
    np.testing.assert_allclose(dscores.sum(axis=1), 0.0, atol=1e-12)  # probabilities minus one-hot
    assert_close(loss, F.cross_entropy(t(scores), torch.tensor(y)).item())


@pytest.mark.parametrize("N", [1, 7])
def test_bce_with_logits_matches_torch(rng, N):
    logits = rng.standard_normal(N) * 4
    y = rng.integers(0, 2, N).astype(np.float64)
    loss, dlogits = ff.bce_with_logits_loss(logits, y)
    tz = t(logits, True)
    tloss = F.binary_cross_entropy_with_logits(tz, t(y))
    tloss.backward()
    assert_close(loss, tloss.item())
    assert_close(dlogits, tz.grad)
    assert rel_error(dlogits, numerical_gradient(lambda: ff.bce_with_logits_loss(logits, y)[0], logits)) < 1e-7


def test_bce_is_stable_at_extremes():
    logits = np.array([-1e4, 1e4, -800.0, 800.0])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, _ = ff.bce_with_logits_loss(logits, y)
    assert_close(loss, F.binary_cross_entropy_with_logits(t(logits), t(y)).item())


def _torch_mlp_loss(params, x, y, activation, n_layers):
    act = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[activation]
    h = t(x)
    for layer in range(1, n_layers + 1):
        h = h @ params[f"W{layer}"] + params[f"b{layer}"]
        if layer < n_layers:
            h = act(h)
    if h.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(h[:, 0], t(y))
    return F.cross_entropy(h, torch.tensor(y))


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("sizes", [[3, 4, 2], [5, 6, 7, 3], [4, 5, 1]])
def test_mlp_loss_and_gradients_match_torch(rng, activation, sizes):
    model = ff.MLP.create(sizes, activation=activation, seed=3)
    x = rng.standard_normal((6, sizes[0]))
    y = rng.integers(0, max(2, sizes[-1]), 6)
    loss, grads = model.loss(x, y)

    tparams = {k: t(v, True) for k, v in model.params.items()}
    tloss = _torch_mlp_loss(tparams, x, y, activation, model.num_layers)
    tloss.backward()
    assert_close(loss, tloss.item())
    for name, p in tparams.items():
        assert_close(grads[name], p.grad)
    if activation != "relu":  # relu's kink can sit inside the finite-difference step
        for name in ["W1", "b1", f"W{model.num_layers}"]:
            num = numerical_gradient(lambda: model.loss(x, y)[0], model.params[name])
            assert rel_error(grads[name], num) < 1e-7, name


def test_mlp_create_validates_arguments():
    with pytest.raises(ValueError, match="activation"):
        ff.MLP.create([2, 3], activation="swish")
    with pytest.raises(ValueError, match="sizes"):
        ff.MLP.create([2])


@pytest.mark.parametrize(("momentum", "weight_decay"), [(0.0, 0.0), (0.9, 0.0), (0.9, 1e-2)])
def test_sgd_momentum_matches_torch_optimizer(rng, momentum, weight_decay):
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    tparams = [t(params["w"], True), t(params["b"], True)]
    opt = torch.optim.SGD(tparams, lr=0.1, momentum=momentum, weight_decay=weight_decay)
    velocity = {}
    for _ in range(4):
        grads = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
        ff.sgd_momentum_step(params, grads, velocity, lr=0.1, momentum=momentum, weight_decay=weight_decay)
        opt.zero_grad()
        tparams[0].grad, tparams[1].grad = t(grads["w"]), t(grads["b"])
        opt.step()
    assert_close(params["w"], tparams[0])
    assert_close(params["b"], tparams[1])


def test_make_spirals_is_deterministic_and_balanced():
    x1, y1 = ff.make_spirals(50, 3, seed=7)
    x2, y2 = ff.make_spirals(50, 3, seed=7)
    x3, _ = ff.make_spirals(50, 3, seed=8)
    assert x1.shape == (150, 2) and y1.shape == (150,)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert np.bincount(y1).tolist() == [50, 50, 50]
    assert np.all(np.linalg.norm(x1, axis=1) <= 1.0 + 1e-12)


def test_train_mlp_learns_spirals_and_is_reproducible():
    x, y = ff.make_spirals(100, 3, noise=0.1, seed=0)
    runs = []
    for _ in range(2):
        model = ff.MLP.create([2, 32, 32, 3], seed=0)
        hist = ff.train_mlp(model, x, y, epochs=150, batch_size=32, lr=0.05, seed=0, progress=False)
        runs.append((model, hist))
    (model, hist), (_, hist2) = runs
    assert hist.loss == hist2.loss  # bit-for-bit reproducible from the seeds
    assert hist.loss[-1] < 0.25 * hist.loss[0]
    assert hist.train_acc[-1] > 0.95
    linear = ff.MLP.create([2, 3], seed=0)
    hist_lin = ff.train_mlp(linear, x, y, epochs=150, batch_size=32, lr=0.05, seed=0, progress=False)
    assert hist_lin.train_acc[-1] < 0.7  # the spirals are not linearly separable


def test_train_mlp_rejects_mismatched_data():
    with pytest.raises(ValueError, match="labels"):
        ff.train_mlp(ff.MLP.create([2, 2]), np.zeros((3, 2)), np.zeros(2, dtype=int), progress=False)


# ----------------------------------------------------------------------------------------------------------
# Adam (adam_step) and train_mlp_with
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lr", "betas", "eps", "weight_decay"),
    [(1e-3, (0.9, 0.999), 1e-8, 0.0), (0.05, (0.8, 0.99), 1e-6, 1e-2), (0.3, (0.0, 0.5), 1e-3, 0.0)],
)
def test_adam_step_matches_torch_optimizer_over_several_steps(rng, lr, betas, eps, weight_decay):
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    tparams = [t(params["w"], True), t(params["b"], True)]
    opt = torch.optim.Adam(tparams, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    state = {}
    for _ in range(6):
        # gradients of very different scales per coordinate: Adam's per-coordinate scaling is what is tested
        scale = np.array([1e-3, 1.0, 1e2])[:, None]
        grads = {"w": rng.standard_normal((3, 2)) * scale, "b": rng.standard_normal(2)}
        ff.adam_step(params, grads, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        opt.zero_grad()
        tparams[0].grad, tparams[1].grad = t(grads["w"]), t(grads["b"])
        opt.step()
        assert_close(params["w"], tparams[0])
        assert_close(params["b"], tparams[1])
    assert state["t"] == 6


def test_adam_first_step_moves_every_coordinate_by_lr():
    # at t = 1 the bias-corrected step is lr * g / (|g| + eps): lr times the sign, whatever the gradient's scale
    params = {"w": np.zeros(4)}
    grads = {"w": np.array([1e-4, -3.0, 250.0, -0.5])}
    ff.adam_step(params, grads, {}, lr=0.01, eps=1e-12)
    np.testing.assert_allclose(params["w"], -0.01 * np.sign(grads["w"]), rtol=1e-7)


def test_train_mlp_with_sgd_step_reproduces_train_mlp():
    x, y = ff.make_spirals(40, 3, seed=1)
    a, b = ff.MLP.create([2, 8, 3], seed=2), ff.MLP.create([2, 8, 3], seed=2)
    hist_a = ff.train_mlp(a, x, y, epochs=5, batch_size=16, lr=0.05, momentum=0.9, seed=3, progress=False)
    velocity = {}
    hist_b = ff.train_mlp_with(
        b, x, y, lambda p, g: ff.sgd_momentum_step(p, g, velocity, 0.05, 0.9), epochs=5, batch_size=16, seed=3
    )
    assert hist_a.loss == hist_b.loss and hist_a.train_acc == hist_b.train_acc
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_train_mlp_with_adam_learns_spirals():
    x, y = ff.make_spirals(100, 3, noise=0.1, seed=0)
    model, state = ff.MLP.create([2, 32, 32, 3], seed=0), {}
    hist = ff.train_mlp_with(model, x, y, lambda p, g: ff.adam_step(p, g, state, lr=1e-2), epochs=60, seed=0)
    assert hist.loss[-1] < 0.25 * hist.loss[0]
    assert hist.train_acc[-1] > 0.9
    with pytest.raises(ValueError, match="labels"):
        ff.train_mlp_with(model, x, y[:-1], lambda p, g: None)
