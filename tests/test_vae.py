"""Tests of coursekit.vae against torch.distributions, closed forms, a linear-Gaussian
model with a known posterior, brute-force sums and properties of the bounds."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributions as D
import torch.nn.functional as F

from coursekit import metrics as M
from coursekit import vae as V
from coursekit.latent import LinearGaussianModel

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def normal(mean, var):
    return D.Independent(D.Normal(mean, var.sqrt()), 1)


def binary(n, d, gen):
    return torch.bernoulli(torch.full((n, d), 0.4), generator=gen)


# ------------------------------------------------------------------ helpers
def test_log_normal_matches_torch_distributions(gen):
    x = torch.randn(7, 3, 4, generator=gen, dtype=F64)
    mean = torch.randn(3, 4, generator=gen, dtype=F64)
    var = torch.rand(7, 1, 4, generator=gen, dtype=F64) + 0.1
    ref = normal(mean, var).log_prob(x)
    out = V.log_normal(x, mean, var)
    assert out.shape == (7, 3)
    assert torch.allclose(out, ref, atol=1e-12)


def test_sample_gaussian_is_mean_plus_sqrt_var_times_the_same_noise():
    mean = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64)
    var = torch.tensor([[4.0, 0.25, 1e-3]], dtype=F64)
    z = V.sample_gaussian(mean.expand(5, 3), var, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(z, mean + var.sqrt() * eps, atol=1e-14)
    # moments of many draws: mean and variance (not the standard deviation) as given
    big = V.sample_gaussian(mean.expand(200_000, 3), var, generator=torch.Generator()
                            .manual_seed(1))
    assert torch.allclose(big.mean(0), mean[0], atol=5 * (var[0] / 200_000).sqrt().max())
    assert torch.allclose(big.var(0), var[0], rtol=0.02)


def test_reparameterised_gradient_of_a_known_expectation():
    # E[z^2] = m^2 + v for z ~ N(m, v): d/dm = 2m, d/dv = 1
    m = torch.tensor([0.7, -1.5], dtype=F64, requires_grad=True)
    v = torch.tensor([0.3, 2.0], dtype=F64, requires_grad=True)
    n = 400_000
    z = V.sample_gaussian(m.expand(n, 2), v.expand(n, 2), generator=torch.Generator()
                          .manual_seed(0))
    (z ** 2).mean(0).sum().backward()
    target = torch.autograd.grad((m ** 2 + v).sum(), [m, v])
    assert torch.allclose(m.grad, target[0], atol=0.02)
    assert torch.allclose(v.grad, target[1], atol=0.02)


def test_log_normal_mixture_matches_mixture_same_family(gen):
    k, d = 5, 3
    means = torch.randn(k, d, generator=gen, dtype=F64) * 2
    vars_ = torch.rand(k, d, generator=gen, dtype=F64) + 0.05
    z = torch.randn(11, 4, d, generator=gen, dtype=F64) * 3
    mix = D.MixtureSameFamily(D.Categorical(logits=torch.zeros(k, dtype=F64)),
                              normal(means, vars_))
    out = V.log_normal_mixture(z, means, vars_)
    assert out.shape == (11, 4)
    assert torch.allclose(out, mix.log_prob(z), atol=1e-10)
    # far from every component the log-sum-exp stays finite
    assert torch.isfinite(V.log_normal_mixture(torch.full((1, d), 1e3, dtype=F64), means,
                                               vars_)).all()


def test_kl_normal_matches_torch_and_monte_carlo(gen):
    qm, pm = torch.randn(2, 6, 4, generator=gen, dtype=F64)
    qv, pv = torch.rand(2, 6, 4, generator=gen, dtype=F64) + 0.2
    kl = V.kl_normal(qm, qv, pm, pv)
    assert kl.shape == (6,)
    assert torch.allclose(kl, D.kl_divergence(normal(qm, qv), normal(pm, pv)), atol=1e-12)
    assert (kl >= 0).all()
    assert torch.allclose(V.kl_normal(qm, qv, qm, qv), torch.zeros(6, dtype=F64), atol=1e-12)
    # Monte Carlo: E_q[log q(z) - log p(z)]
    z = V.sample_gaussian(qm.expand(100_000, 6, 4), qv, generator=gen)
    terms = V.log_normal(z, qm, qv) - V.log_normal(z, pm, pv)
    se = terms.std(0) / math.sqrt(100_000)
    assert ((terms.mean(0) - kl).abs() < 5 * se).all()


def test_log_bernoulli_with_logits_matches_torch_and_is_finite(gen):
    x = binary(9, 5, gen)
    logits = torch.randn(9, 5, generator=gen) * 3
    ref = D.Independent(D.Bernoulli(logits=logits), 1).log_prob(x)
    assert torch.allclose(V.log_bernoulli_with_logits(x, logits), ref, atol=1e-5)
    extreme = torch.tensor([[200.0, -200.0]])
    out = V.log_bernoulli_with_logits(torch.tensor([[0.0, 1.0]]), extreme)
    assert torch.isfinite(out).all() and torch.allclose(out, torch.tensor([-400.0]))


def test_helpers_reject_bad_input():
    a = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="var"):
        V.log_normal(a, a, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="var"):
        V.sample_gaussian(a, -torch.ones(3, 2))
    with pytest.raises(ValueError, match="x/mean/var"):
        V.log_normal(torch.zeros(3, 2), torch.zeros(4, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="p_var: expected strictly positive"):
        V.kl_normal(a, torch.ones(3, 2), a, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="means/vars"):
        V.log_normal_mixture(a, torch.zeros(2), torch.ones(2))
    with pytest.raises(TypeError, match="logits"):
        V.log_bernoulli_with_logits(a, "0 1")
    with pytest.raises(ValueError, match="logits: expected last dimension d=2 like x"):
        V.log_bernoulli_with_logits(a, torch.zeros(3, 1))


# ------------------------------------------------------------------ VAE
@pytest.fixture
def small_vae():
    torch.manual_seed(0)
    return V.VAE(12, 3, hidden=(16,)).double()


def test_negative_elbo_pieces_against_torch_distributions(small_vae, gen):
    x = binary(20, 12, gen).double()
    for beta in (1.0, 2.5):
        small_vae.beta = beta
        torch.manual_seed(5)
        nelbo, kl, rec = small_vae.negative_elbo(x)
        assert torch.allclose(nelbo, rec + beta * kl)
        # independent recomputation with the same noise
        torch.manual_seed(5)
        qm, qv = small_vae.encode(x)
        z = qm + qv.sqrt() * torch.randn_like(qm)
        prior = normal(torch.zeros_like(qm), torch.ones_like(qv))
        kl_ref = D.kl_divergence(normal(qm, qv), prior).mean()
        rec_ref = -D.Independent(D.Bernoulli(logits=small_vae.decode(z)), 1).log_prob(x).mean()
        assert torch.allclose(kl, kl_ref, atol=1e-10)
        assert torch.allclose(rec, rec_ref, atol=1e-10)


def test_iwae_with_one_sample_is_the_elbo_in_expectation(small_vae, gen):
    # L_1 = E_q[log p(x, z) - log q(z|x)] (Monte Carlo KL) and the NELBO with the
    # closed-form KL estimate the same number: compare their averages over many draws
    x = binary(30, 12, gen).double()
    torch.manual_seed(1)
    n = 2000
    with torch.no_grad():
        iwae1 = torch.stack([-small_vae.negative_iwae_bound(x, 1) for _ in range(n)])
        elbo = torch.stack([-small_vae.negative_elbo(x)[0] for _ in range(n)])
    se = math.sqrt(iwae1.var() / n + elbo.var() / n)
    assert abs(float(iwae1.mean() - elbo.mean())) < 4 * se
    # and the bound is not trivially equal draw by draw
    assert float((iwae1 - elbo).abs().max()) > 10 * se


def test_iwae_bound_is_non_decreasing_in_k(small_vae, gen):
    x = binary(10, 12, gen).double()
    torch.manual_seed(2)
    ks, reps = (1, 4, 16, 64), 300
    with torch.no_grad():
        bounds = {k: torch.stack([-small_vae.negative_iwae_bound(x, k) for _ in range(reps)])
                  for k in ks}
    for k0, k1 in zip(ks[:-1], ks[1:]):
        diff = bounds[k1].mean() - bounds[k0].mean()
        se = math.sqrt(bounds[k1].var() / reps + bounds[k0].var() / reps)
        assert diff > 3 * se, (k0, k1, float(diff), se)


def _softplus_inverse(y):
    y = torch.as_tensor(y, dtype=F64)
    return y + torch.log(-torch.expm1(-y))


def linear_gaussian_vae():
    """A Gaussian VAE with linear decoder N(Wz + b, s2 I) and the encoder set to the exact
    posterior (W has orthogonal columns, so the posterior covariance is diagonal)."""
    d, k, s2 = 5, 2, 0.3
    g = torch.Generator().manual_seed(4)
    Q, _ = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=F64))
    W = Q * torch.tensor([2.0, 0.7], dtype=F64)
    b = torch.randn(d, generator=g, dtype=F64)
    M_diag = (W * W).sum(0) + s2
    model = V.VAE(d, k, hidden=(), likelihood="gaussian").double()
    enc, dec = model.encoder.net[0], model.decoder.net[0]
    with torch.no_grad():
        A = W.T / M_diag[:, None]
        enc.weight.zero_()
        enc.weight[:k] = A
        enc.bias[:k] = -A @ b
        enc.bias[k:] = _softplus_inverse(s2 / M_diag - V.VAR_FLOOR)
        dec.weight.zero_()
        dec.weight[:d] = W
        dec.bias[:d] = b
        dec.bias[d:] = _softplus_inverse(s2 - V.VAR_FLOOR)
    return model, LinearGaussianModel(W, b, s2)


def test_iwae_and_nll_are_exact_with_the_exact_posterior():
    model, lgm = linear_gaussian_vae()
    x, _ = lgm.sample(8, generator=torch.Generator().manual_seed(0))
    # the encoder really is the posterior (independent closed form in coursekit.latent)
    mean, cov = lgm.posterior(x)
    qm, qv = model.encode(x)
    assert torch.allclose(qm, mean, atol=1e-10)
    assert torch.allclose(torch.diag_embed(qv), cov.expand(8, 2, 2), atol=1e-10)
    log_px = lgm.log_marginal(x)
    with torch.no_grad():
        assert torch.allclose(model.log_weights(x, 7), log_px.expand(7, 8), atol=1e-8)
        for k in (1, 10):
            assert torch.allclose(-model.negative_iwae_bound(x, k), log_px.mean(), atol=1e-8)
        nll = M.estimate_nll(model, x, k=5, reduction="none", batch_size=3)
    assert torch.allclose(nll, -log_px, atol=1e-8)
    # the ELBO with the exact posterior is log p(x) in expectation
    torch.manual_seed(0)
    with torch.no_grad():
        nelbo = torch.stack([model.negative_elbo(x)[0] for _ in range(3000)])
    assert abs(float(nelbo.mean() + log_px.mean())) < 4 * float(nelbo.std()) / math.sqrt(3000)


def test_gaussian_likelihood_matches_torch(gen):
    torch.manual_seed(0)
    model = V.VAE(2, 2, hidden=8, likelihood="gaussian").double()
    x = torch.randn(6, 2, generator=gen, dtype=F64)
    z = torch.randn(4, 6, 2, generator=gen, dtype=F64)
    m, v = model.decode(z)
    assert torch.allclose(model.log_likelihood(x, z), normal(m, v).log_prob(x), atol=1e-10)
    assert model.sample(5).shape == (5, 2)


def test_estimate_nll_is_the_negative_iwae_bound_with_the_same_noise(small_vae, gen):
    x = binary(16, 12, gen).double()
    torch.manual_seed(9)
    a = M.estimate_nll(small_vae, x, k=32, batch_size=16, chunk_size=8)
    torch.manual_seed(9)
    with torch.no_grad():
        b = small_vae.negative_iwae_bound(x, 32, chunk_size=8)
        torch.manual_seed(9)
        # chunks of 8 draw the same noise as this direct computation, chunk by chunk
        qm, qv = small_vae.encode(x)
        parts = []
        for _ in range(4):
            z = qm + qv.sqrt() * torch.randn(8, 16, 3, dtype=F64)
            log_p = D.Independent(D.Bernoulli(logits=small_vae.decode(z)), 1).log_prob(x)
            log_p = log_p + normal(torch.zeros(3, dtype=F64), torch.ones(3, dtype=F64)
                                   ).log_prob(z)
            parts.append(log_p - normal(qm, qv).log_prob(z))
        w = torch.cat(parts)
    assert torch.allclose(a, b, atol=1e-10)
    ref = -(torch.log(torch.exp(w).mean(0))).mean()
    assert torch.allclose(a, ref, atol=1e-8)
    assert M.estimate_nll(small_vae, x, k=4, reduction="none").shape == (16,)


def test_sample_and_reconstruct_shapes_and_ranges(small_vae, gen):
    g = torch.Generator().manual_seed(0)
    s = small_vae.sample(7, generator=g)
    assert s.shape == (7, 12) and set(s.unique().tolist()) <= {0.0, 1.0}
    p = small_vae.sample(7, mean=True)
    assert ((p > 0) & (p < 1)).all()
    x = binary(5, 12, gen).double()
    r = small_vae.reconstruct(x)
    qm, _ = small_vae.encode(x)
    assert torch.allclose(r, torch.sigmoid(small_vae.decode(qm)))


def test_active_units_counts_dimensions_whose_mean_moves(gen):
    torch.manual_seed(0)
    model = V.VAE(12, 4, hidden=(16,)).double()
    last = model.encoder.net[-1]
    with torch.no_grad():
        last.weight[[0, 2]] *= 20.0  # z_0 and z_2 vary strongly with x
        last.weight[[1, 3]] = 0.0  # the means of z_1 and z_3 no longer depend on x
    x = binary(100, 12, gen).double()
    activity, active = M.active_units(model, x)
    assert active.tolist() == [True, False, True, False]
    qm, _ = model.encode(x)
    assert torch.allclose(activity, qm.var(0))


def test_training_lowers_the_negative_elbo():
    from coursekit.data import digits_loader, load_digits
    from coursekit.train import fit

    torch.manual_seed(0)
    model = V.VAE(64, 8, hidden=(64,))
    x_val, _ = load_digits("val", binarize="static")

    def val_nelbo():
        torch.manual_seed(123)
        with torch.no_grad():
            return float(torch.stack([model.negative_elbo(x_val)[0] for _ in range(5)]).mean())

    before = val_nelbo()
    hist = fit(model, V.vae_loss, digits_loader("train", binarize="dynamic", batch_size=64),
               epochs=15, progress=False)
    after = val_nelbo()
    assert hist.epochs["loss"][-1] < hist.epochs["loss"][0]
    assert set(hist.train) == {"loss", "kl", "rec"}
    assert after < before - 10, (before, after)


# ------------------------------------------------------------------ posterior collapse
def test_free_bits_kl_against_a_loop_and_its_gradient(gen):
    kl = torch.rand(6, 4, generator=gen, dtype=F64) * torch.tensor([0.1, 2.0, 0.3, 1.0],
                                                                    dtype=F64)
    kl.requires_grad_(True)
    lam = 0.5
    expected = 0.0
    for j in range(4):  # per dimension: batch mean, then max with lambda
        expected += max(lam, sum(float(kl[b, j].detach()) for b in range(6)) / 6)
    out = V.free_bits_kl(kl, lam)
    assert math.isclose(float(out.detach()), expected, rel_tol=1e-12)
    # lambda = 0: the batch-mean KL summed over dimensions
    assert torch.isclose(V.free_bits_kl(kl, 0.0), kl.sum(1).mean())
    # no gradient for dimensions below lambda, 1/batch for the others
    (grad,) = torch.autograd.grad(out, kl)
    above = kl.mean(0) > lam
    assert above.tolist() == [False, True, False, True]
    assert torch.allclose(grad, above.to(F64).expand(6, 4) / 6)
    with pytest.raises(ValueError, match="free_bits"):
        V.free_bits_kl(kl, -1.0)
    with pytest.raises(ValueError, match="kl_per_dim"):
        V.free_bits_kl(kl[0], 0.1)


def test_vae_with_free_bits_reports_the_true_kl_and_optimises_the_clamped_one(gen):
    torch.manual_seed(0)
    plain = V.VAE(12, 3, hidden=(16,)).double()
    fb = V.VAE(12, 3, hidden=(16,), free_bits=0.3).double()
    fb.load_state_dict(plain.state_dict())
    x = binary(20, 12, gen).double()
    torch.manual_seed(5)
    nelbo, kl, rec = plain.negative_elbo(x)
    torch.manual_seed(5)
    nelbo_fb, kl_fb, rec_fb = fb.negative_elbo(x)
    assert torch.isclose(kl, kl_fb) and torch.isclose(rec, rec_fb)
    qm, qv = plain.encode(x)
    per_dim = D.kl_divergence(D.Normal(qm, qv.sqrt()), D.Normal(0.0, 1.0))  # (20, 3)
    assert torch.allclose(fb.kl_per_dim(qm, qv), per_dim)
    clamped = per_dim.mean(0).clamp_min(0.3).sum()
    assert torch.isclose(nelbo_fb, rec + clamped)
    assert nelbo_fb >= nelbo - 1e-12  # clamping from below can only raise the objective
    with pytest.raises(NotImplementedError):
        V.GMVAE(12, 3, hidden=(16,), k=2).kl_per_dim(qm, qv)


def test_kl_weight_is_a_linear_warm_up_to_one():
    assert V.kl_weight(0, 100) == 0.0
    assert V.kl_weight(25, 100) == 0.25
    assert V.kl_weight(100, 100) == 1.0
    assert V.kl_weight(1000, 100) == 1.0
    assert math.isclose(V.kl_weight(50, 100, start=0.2), 0.6)
    with pytest.raises(ValueError, match="warmup_steps"):
        V.kl_weight(3, 0)


def test_kl_annealing_sets_beta_per_training_step_only(gen):
    from coursekit.train import evaluate, fit

    torch.manual_seed(0)
    model = V.VAE(12, 3, hidden=(16,))
    loss = V.KLAnnealing(warmup_steps=10)
    x = binary(40, 12, gen)
    hist = fit(model, loss, x, epochs=3, batch_size=10, progress=False)  # 12 steps
    assert loss.step == 12
    assert hist.train["beta"][:4] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert model.beta == 1.0 and hist.train["beta"][-1] == 1.0
    model.beta = 0.5
    evaluate(model, loss, x)  # eval mode: neither the counter nor beta move
    assert loss.step == 12 and model.beta == 0.5


# ------------------------------------------------------------------ autoregressive decoder
@pytest.mark.parametrize("ar_hidden", [(), (32,), (24, 24)])
def test_autoregressive_decoder_is_autoregressive_and_normalised(ar_hidden, gen):
    import itertools

    torch.manual_seed(0)
    model = V.AutoregressiveVAE(5, 2, hidden=(8,), ar_hidden=ar_hidden).double()
    z = torch.randn(2, dtype=F64)
    x = torch.rand(5, dtype=F64)
    jac = torch.autograd.functional.jacobian(lambda v: model.decoder(z, v), x)  # (5, 5)
    assert (jac.triu() == 0).all(), "logit j may only depend on pixels before j"
    assert (jac.tril(-1).abs() > 0).any()
    # sum of p(x|z) over all 2^5 binary images is 1, for several z
    xs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)), dtype=F64)  # (32, 5)
    zs = torch.randn(3, 1, 2, generator=gen, dtype=F64).expand(3, 32, 2)
    with torch.no_grad():
        total = model.log_likelihood(xs, zs).exp().sum(-1)
    assert torch.allclose(total, torch.ones(3, dtype=F64), atol=1e-12)


def test_autoregressive_vae_likelihood_sampling_and_bounds(gen):
    torch.manual_seed(0)
    model = V.AutoregressiveVAE(6, 2, hidden=(8,), ar_hidden=(16,)).double()
    x = binary(4, 6, gen).double()
    z = torch.randn(4, 2, generator=gen, dtype=F64)
    # chain rule by hand: each pixel's Bernoulli from a pass that sees only the earlier pixels
    ref = torch.zeros(4, dtype=F64)
    for j in range(6):
        seen = torch.cat([x[:, :j], torch.zeros(4, 6 - j, dtype=F64)], 1)
        logit = model.decoder(z, seen)[:, j]
        ref = ref + D.Bernoulli(logits=logit).log_prob(x[:, j])
    assert torch.allclose(model.log_likelihood(x, z), ref, atol=1e-12)
    assert torch.allclose(model.decode(z, x), model.decoder(z, x))
    with pytest.raises(ValueError, match="x: an autoregressive decoder"):
        model.decode(z)
    s = model.sample(7, generator=torch.Generator().manual_seed(1))
    assert s.shape == (7, 6) and set(s.unique().tolist()) <= {0.0, 1.0}
    p = model.sample(7, mean=True)
    assert ((p > 0) & (p < 1)).all()
    assert model.reconstruct(x).shape == (4, 6)
    torch.manual_seed(2)
    nelbo, kl, rec = model.negative_elbo(x)
    assert torch.isclose(nelbo, kl + rec)
    assert float(M.estimate_nll(model, x, k=50)) > 0


# ------------------------------------------------------------------ GMVAE
def test_gmvae_prior_kl_and_sampling(gen):
    torch.manual_seed(0)
    model = V.GMVAE(12, 3, hidden=(16,), k=4).double()
    z = torch.randn(9, 3, generator=gen, dtype=F64)
    mix = D.MixtureSameFamily(D.Categorical(logits=torch.zeros(4, dtype=F64)),
                              normal(model.prior_means, model.prior_vars))
    assert torch.allclose(model.log_prior(z), mix.log_prob(z), atol=1e-10)
    x = binary(6, 12, gen).double()
    torch.manual_seed(1)
    nelbo, kl, rec = model.negative_elbo(x)
    assert torch.allclose(nelbo, rec + kl)
    # the single-sample KL uses the same z as the reconstruction term
    torch.manual_seed(1)
    qm, qv = model.encode(x)
    zs = qm + qv.sqrt() * torch.randn_like(qm)
    kl_ref = (normal(qm, qv).log_prob(zs) - mix.log_prob(zs)).mean()
    assert torch.allclose(kl, kl_ref, atol=1e-10)
    # prior samples: the mixture's mean
    s = model.sample_z(100_000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(s.mean(0), model.prior_means.mean(0).detach(), atol=0.03)
    assert model.sample(3).shape == (3, 12)


def test_gmvae_monte_carlo_kl_is_unbiased_for_a_standard_normal_prior(gen):
    torch.manual_seed(0)
    model = V.GMVAE(12, 3, hidden=(16,), k=2).double()
    vae = V.VAE(12, 3, hidden=(16,)).double()
    vae.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        model.prior_means.zero_()
        model.prior_raw_vars.fill_(float(_softplus_inverse(1 - V.VAR_FLOOR)))
    x = binary(4, 12, gen).double()
    with torch.no_grad():
        kls = torch.stack([model.negative_elbo(x)[1] for _ in range(4000)])
        analytic = vae.negative_elbo(x)[1]
    assert abs(float(kls.mean() - analytic)) < 4 * float(kls.std()) / math.sqrt(4000)


# ------------------------------------------------------------------ SSVAE
@pytest.fixture
def ssvae():
    torch.manual_seed(0)
    return V.SSVAE(12, 2, y_dim=3, hidden=(16,), alpha=7.0).double()


def _brute_elbo(model, x, y, eps):
    """ELBO(x, y) = log p(x|y,z) + log p(y) - KL(q(z|x,y) || p(z)) with torch.distributions."""
    qm, qv = model.encode(x, y)
    z = qm + qv.sqrt() * eps
    log_px = D.Independent(D.Bernoulli(logits=model.decode(z, y)), 1).log_prob(x)
    log_py = D.Categorical(logits=torch.zeros(model.y_dim, dtype=F64)).log_prob(y)
    kl = D.kl_divergence(normal(qm, qv), normal(torch.zeros_like(qm), torch.ones_like(qv)))
    return log_px + log_py - kl


def test_ssvae_objective_pieces_against_brute_force(ssvae, gen):
    x = binary(5, 12, gen).double()
    y = torch.tensor([0, 2, 1, 1, 0])
    eps = torch.randn(3, 5, 2, generator=gen, dtype=F64)
    # labelled
    assert torch.allclose(ssvae.labelled_negative_elbo(x, y, eps=eps[0]),
                          -_brute_elbo(ssvae, x, y, eps[0]), atol=1e-10)
    # unlabelled: sum over every label, weighted by q(y|x), plus the entropy of q(y|x)
    q_y = D.Categorical(logits=ssvae.classify(x))
    total = q_y.entropy()
    for c in range(3):
        yc = torch.full((5,), c)
        total = total + q_y.probs[:, c] * _brute_elbo(ssvae, x, yc, eps[c])
    assert torch.allclose(ssvae.unlabelled_negative_elbo(x, eps=eps), -total, atol=1e-10)
    # the classification term
    out = ssvae.loss(x, x[:3], y[:3])
    ce = -q_y.log_prob(y)[:3].mean()
    assert torch.allclose(out["ce"], ce, atol=1e-10)
    assert torch.allclose(out["loss"], 7.0 * ce + out["nelbo_u"] + out["nelbo_l"])


def test_ssvae_without_generative_term_trains_only_the_classifier(gen):
    torch.manual_seed(0)
    model = V.SSVAE(12, 2, y_dim=3, hidden=(16,), gen_weight=0.0)
    x = binary(6, 12, gen)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = model.loss(x, x, y)
    out["loss"].backward()
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is not None for p in model.classifier.parameters())
    assert torch.allclose(out["loss"], F.cross_entropy(model.classify(x), y))
    assert model.predict(x).shape == (6,)


def test_ssvae_training_fits_the_labelled_set(gen):
    torch.manual_seed(0)
    model = V.SSVAE(64, 4, hidden=(32,), alpha=20.0)
    from coursekit.data import load_digits

    x, y = load_digits("train", binarize="static")
    xl, yl = x[:40], y[:40]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for i in range(80):
        out = model.loss(x[(i * 64) % 1100:(i * 64) % 1100 + 64], xl, yl)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert (model.predict(xl) == yl).float().mean() > 0.9


# ------------------------------------------------------------------ bad input
def test_bad_input_raises_value_errors_naming_the_argument(small_vae, ssvae):
    with pytest.raises(ValueError, match="likelihood"):
        V.VAE(4, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="beta"):
        V.VAE(4, 2, beta=-1)
    with pytest.raises(ValueError, match="z_dim"):
        V.VAE(4, 0)
    with pytest.raises(ValueError, match="hidden"):
        V.VAE(4, 2, hidden=(0,))
    with pytest.raises(ValueError, match="x: expected shape"):
        small_vae.negative_elbo(torch.zeros(3, 11, dtype=F64))
    with pytest.raises(ValueError, match="k"):
        small_vae.negative_iwae_bound(torch.zeros(3, 12, dtype=F64), 0)
    with pytest.raises(ValueError, match="z: expected"):
        small_vae.decode(torch.zeros(3, 4, dtype=F64))
    with pytest.raises(ValueError, match="reduction"):
        M.estimate_nll(small_vae, torch.zeros(3, 12), k=2, reduction="sum")
    with pytest.raises(ValueError, match="k"):
        V.GMVAE(4, 2, k=0)
    with pytest.raises(ValueError, match="y: expected labels"):
        ssvae.labelled_negative_elbo(torch.zeros(2, 12, dtype=F64), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="alpha"):
        V.SSVAE(4, 2, alpha=-1)


# ------------------------------------------------------------------ GPU
@pytest.mark.gpu
def test_one_training_step_on_cuda():
    device = torch.device("cuda")
    for model in (V.VAE(64, 8, hidden=32), V.GMVAE(64, 8, hidden=32, k=3),
                  V.AutoregressiveVAE(64, 8, hidden=32, ar_hidden=32, free_bits=0.1)):
        model = model.to(device)
        x = torch.bernoulli(torch.full((16, 64), 0.3, device=device))
        opt = torch.optim.Adam(model.parameters())
        loss = V.KLAnnealing(warmup_steps=10)(model, x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert loss.device.type == "cuda" and torch.isfinite(loss)
        assert float(M.estimate_nll(model, x, k=10)) > 0
        assert model.sample(3).device.type == "cuda"
    ss = V.SSVAE(64, 4, hidden=32).to(device)
    out = ss.loss(x, x[:4], torch.tensor([0, 1, 2, 3], device=device))
    out["loss"].backward()
    assert torch.isfinite(out["loss"])


@pytest.mark.parametrize("make", [lambda: V.VAE(4, 2), lambda: V.SSVAE(4, 2, y_dim=3)])
def test_bernoulli_models_refuse_pixels_outside_the_unit_interval_and_nan(make):
    model = make()
    counts = torch.tensor([[0.0, 3.0, 16.0, 1.0]])  # raw digit counts, not rescaled
    with pytest.raises(ValueError, match=r"x: a Bernoulli decoder models pixel values in "
                                         r"\[0, 1\], got values in \[0, 16\]"):
        model.encode(counts) if isinstance(model, V.VAE) else model.classify(counts)
    nan = torch.tensor([[0.0, math.nan, 1.0, 0.5]])
    with pytest.raises(ValueError, match="x: expected finite values"):
        model.encode(nan) if isinstance(model, V.VAE) else model.classify(nan)
    soft = torch.tensor([[0.0, 0.25, 1.0, 0.5]])  # probabilities as targets stay allowed
    assert torch.isfinite(model.encode(soft)[0] if isinstance(model, V.VAE)
                          else model.classify(soft)).all()


def test_gaussian_vae_accepts_any_finite_values():
    x = torch.tensor([[0.0, 3.0, 16.0, -1.0]])
    assert torch.isfinite(V.VAE(4, 2, likelihood="gaussian").negative_elbo(x)[0])
