"""coursekit.gan and metrics.mode_coverage against independent computations."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from coursekit.data import mode_centres, toy2d
from coursekit.gan import (
    F_DIVERGENCES,
    LOSSES,
    Discriminator,
    Generator,
    discriminator_loss,
    f_conjugate,
    f_divergence,
    f_gan_bound,
    f_gan_generator_loss,
    f_generator,
    fit_discriminator,
    gradient_penalty,
    jensen_shannon,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    optimal_discriminator,
    r1_penalty,
    train_gan,
    wasserstein1_1d,
    wgan_critic_loss,
    wgan_generator_loss,
)
from coursekit.metrics import mode_coverage

GRID = torch.linspace(-30, 30, 200_001, dtype=torch.float64)


def gaussian(mean, std):
    return lambda x: torch.as_tensor(scipy.stats.norm(mean, std).logpdf(x.numpy()))


# --------------------------------------------------------------------------------------
# the classic GAN losses
# --------------------------------------------------------------------------------------
def test_discriminator_loss_is_binary_cross_entropy_of_real_against_fake():
    g = torch.Generator().manual_seed(0)
    real, fake = 3 * torch.randn(50, generator=g), 3 * torch.randn(70, 1, generator=g)
    bce = nn.functional.binary_cross_entropy_with_logits
    expected = (bce(real, torch.ones(50)) + bce(fake[:, 0], torch.zeros(70)))
    assert torch.allclose(discriminator_loss(real, fake), expected, atol=1e-6)
    # a confident discriminator still gives finite losses
    assert math.isfinite(discriminator_loss(torch.tensor([200.0]), torch.tensor([-200.0])))
    assert math.isfinite(minimax_generator_loss(torch.tensor([-200.0])))


def test_the_minimax_generator_loss_saturates_where_the_nonsaturating_one_does_not():
    logits = torch.tensor([-8.0, -2.0, 0.0, 2.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(minimax_generator_loss(logits), logits)
    (g_ns,) = torch.autograd.grad(nonsaturating_generator_loss(logits), logits)
    d = torch.sigmoid(logits.detach())
    assert torch.allclose(g_minimax, -d / 4) and torch.allclose(g_ns, (d - 1) / 4)
    # rejected samples (logit -8): minimax gradient ~ 3e-4/4, non-saturating ~ -1/4
    assert abs(g_minimax[0]) < 1e-3 < 0.2 < abs(g_ns[0])
    # both losses are log(1 - D) and -log D of D = sigmoid(logit)
    assert torch.allclose(minimax_generator_loss(logits), torch.log(1 - d).mean())
    assert torch.allclose(nonsaturating_generator_loss(logits), -torch.log(d).mean())


def test_the_optimal_discriminator_minimises_the_loss_and_leaves_log4_minus_2jsd():
    p, q = gaussian(0.0, 1.0), gaussian(1.5, 0.7)
    lp, lq = p(GRID), q(GRID)

    def expected_loss(d):  # E_p[-log D] + E_q[-log(1 - D)] by quadrature
        return float(torch.trapezoid(-torch.exp(lp) * torch.log(d)
                                     - torch.exp(lq) * torch.log1p(-d), GRID))

    d_star = optimal_discriminator(lp, lq).clamp(1e-300, 1 - 1e-16)
    best = expected_loss(d_star)
    assert best == pytest.approx(math.log(4) - 2 * jensen_shannon(p, q, GRID), abs=1e-6)
    for wrong in (torch.full_like(GRID, 0.5), torch.sigmoid(GRID - 0.5).clamp(1e-12, 1 - 1e-12),
                  (d_star * 0.9).clamp(1e-300, 1)):
        assert expected_loss(wrong) > best + 1e-4


def test_wgan_losses_and_the_gradient_penalty_of_a_linear_critic():
    real, fake = torch.randn(40, 1), torch.randn(40, 1) + 1
    assert torch.allclose(wgan_critic_loss(real, fake), fake.mean() - real.mean())
    assert torch.allclose(wgan_generator_loss(fake), -fake.mean())
    critic = nn.Linear(3, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, -1.0, 2.0]]))  # |w| = 3
    x, y = torch.randn(16, 3), torch.randn(16, 3)
    penalty = gradient_penalty(critic, x, y)
    assert torch.allclose(penalty, torch.tensor(4.0))  # (|w| - 1)^2 at every x_hat
    penalty.backward()
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert torch.allclose(critic.weight.grad, 2 * 2 * critic.weight.detach() / 3)
    with torch.no_grad():
        critic.weight.div_(3)
    assert float(gradient_penalty(critic, x, y).detach()) == pytest.approx(0.0, abs=1e-10)


def test_r1_is_the_mean_squared_gradient_norm_on_the_data():
    x = torch.randn(32, 2, dtype=torch.float64)
    a = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    r1 = r1_penalty(lambda v: a * (v ** 2).sum(1), x)  # grad = 2 a x
    assert torch.allclose(r1, (4 * a ** 2 * (x ** 2).sum(1)).mean())
    (da,) = torch.autograd.grad(r1, a)  # differentiable in the discriminator's parameters
    assert torch.allclose(da, (8 * a.detach() * (x ** 2).sum(1)).mean())
    y = torch.tensor([0, 1] * 16)
    conditional = r1_penalty(lambda v, c: (v[:, 0] * c), x.float(), condition=y)
    assert torch.allclose(conditional, torch.tensor(0.5))  # |grad| = 1 for half the rows


def test_a_packed_critic_is_penalised_per_pack():
    """With pack m, one interpolation weight per pack and one norm over the pack's input:
    a linear critic over the concatenated pack has |grad| = |w| per pack."""
    disc = Discriminator(features=2, hidden=(), pack=3)
    with torch.no_grad():
        disc.net[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 2.0, 2.0, 0.0]]))  # |w| = 3
    real, fake = torch.randn(12, 2), torch.randn(12, 2)
    assert torch.allclose(gradient_penalty(disc, real, fake), torch.tensor(4.0))
    assert torch.allclose(r1_penalty(disc, real), torch.tensor(9.0))
    seen = []
    disc.forward = lambda x: seen.append(x.detach().clone()) or x.reshape(4, 6).sum(1)
    gradient_penalty(disc, torch.zeros(12, 2), torch.ones(12, 2))
    weights = seen[0][:, 0].reshape(4, 3)
    assert torch.equal(weights, weights[:, :1].expand(4, 3))
    with pytest.raises(ValueError, match="multiple of the critic's pack=3"):
        r1_penalty(disc, real[:10])


def test_the_gradient_penalty_samples_the_segment_between_real_and_fake():
    seen = []

    def critic(x_hat):
        seen.append(x_hat.detach().clone())
        return (x_hat ** 2).sum(1)

    real, fake = torch.zeros(500, 2), torch.ones(500, 2)
    gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    t = seen[0][:, 0]
    assert torch.equal(seen[0][:, 0], seen[0][:, 1])  # one eps per pair
    assert 0 <= float(t.min()) and float(t.max()) <= 1
    assert scipy.stats.kstest(t.numpy(), "uniform").pvalue > 1e-3


# --------------------------------------------------------------------------------------
# f-divergences and f-GAN
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("divergence", F_DIVERGENCES)
def test_each_conjugate_is_the_supremum_over_u(divergence):
    u = torch.logspace(-6, 6, 400_001, dtype=torch.float64)
    f = f_generator(divergence, u)
    assert float(f_generator(divergence, torch.ones(1, dtype=torch.float64))) == 0.0
    ts = {"kl": [-2.0, 0.0, 1.5], "reverse_kl": [-5.0, -1.0, -0.2],
          "js": [-3.0, 0.0, 0.6], "pearson": [-1.5, 0.0, 3.0]}[divergence]
    for t in ts:
        brute = float((t * u - f).max())
        assert float(f_conjugate(divergence, torch.tensor(t, dtype=torch.float64))) == \
            pytest.approx(brute, abs=1e-6, rel=1e-6)


def _closed_forms(m1, s1, m2, s2):
    kl = math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    rkl = math.log(s1 / s2) + (s2 ** 2 + (m1 - m2) ** 2) / (2 * s1 ** 2) - 0.5
    return kl, rkl


def test_quadrature_f_divergences_match_closed_forms_between_gaussians():
    p, q = gaussian(0.0, 1.0), gaussian(1.0, 1.3)
    kl, rkl = _closed_forms(0.0, 1.0, 1.0, 1.3)
    assert f_divergence("kl", p, q, GRID) == pytest.approx(kl, rel=1e-6)
    assert f_divergence("reverse_kl", p, q, GRID) == pytest.approx(rkl, rel=1e-6)
    # Pearson chi^2 with equal variances: exp((m1 - m2)^2 / s^2) - 1
    assert f_divergence("pearson", p, gaussian(1.0, 1.0), GRID) == pytest.approx(
        math.e - 1, rel=1e-6)
    js = jensen_shannon(p, q, GRID)
    assert f_divergence("js", p, q, GRID) == pytest.approx(2 * js, rel=1e-9)
    assert 0 < js < math.log(2)
    assert jensen_shannon(q, p, GRID) == pytest.approx(js, rel=1e-9)
    far = jensen_shannon(gaussian(-12, 0.5), gaussian(12, 0.5), GRID)
    assert far == pytest.approx(math.log(2), abs=1e-6)


def _inverse_activation(divergence, t):
    if divergence == "reverse_kl":
        return -torch.log(-t)
    if divergence == "js":
        return -torch.log(2 * torch.exp(-t) - 1)
    return t


def _f_prime(divergence, u):
    return {"kl": lambda: torch.log(u) + 1, "reverse_kl": lambda: -1 / u,
            "js": lambda: torch.log(2 * u / (u + 1)), "pearson": lambda: 2 * (u - 1)}[divergence]()


@pytest.mark.parametrize("divergence", F_DIVERGENCES)
def test_the_f_gan_bound_is_tight_at_f_prime_of_the_ratio_and_lower_elsewhere(divergence):
    """With T = f'(p/q) the Monte Carlo bound matches the quadrature divergence; a
    perturbed critic gives less, on the same samples."""
    m1, s1, m2, s2 = 0.0, 1.0, 0.8, 1.2
    g = torch.Generator().manual_seed(1)
    xp = (m1 + s1 * torch.randn(400_000, generator=g, dtype=torch.float64))
    xq = (m2 + s2 * torch.randn(400_000, generator=g, dtype=torch.float64))
    p, q = gaussian(m1, s1), gaussian(m2, s2)

    def raw(x, shift=0.0):
        return _inverse_activation(divergence, _f_prime(divergence, torch.exp(p(x) - q(x)))) + shift

    truth = f_divergence(divergence, p, q, GRID)
    tight = float(f_gan_bound(divergence, raw(xp), raw(xq)))
    assert tight == pytest.approx(truth, rel=0.03, abs=2e-3)
    for shift in (-0.5, 0.3):
        assert float(f_gan_bound(divergence, raw(xp, shift), raw(xq, shift))) < tight
    # the generator's loss is the bound's Q-term: bound - E_P[T]
    assert torch.allclose(f_gan_generator_loss(divergence, raw(xq)),
                          f_gan_bound(divergence, raw(xp), raw(xq)) - _t_mean(divergence, raw(xp)))


def _t_mean(divergence, v):
    """E_P[T] alone: the bound with a fake term whose conjugate is zero."""
    from coursekit.gan.divergences import f_divergence_terms

    return f_divergence_terms(divergence, v, v)[0].mean()


def test_wasserstein1_of_sorted_samples_matches_scipy():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(1000, generator=g), 0.5 * torch.randn(1000, generator=g) + 2
    assert float(wasserstein1_1d(x, y)) == pytest.approx(
        scipy.stats.wasserstein_distance(x.numpy(), y.numpy()), rel=1e-5)
    with pytest.raises(ValueError, match="y: expected as many"):
        wasserstein1_1d(x, y[:10])


def test_unknown_divergences_and_bad_scores_are_named():
    with pytest.raises(ValueError, match="divergence"):
        f_gan_bound("hellinger", torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="real_logits"):
        discriminator_loss(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="fake: expected the shape"):
        gradient_penalty(nn.Linear(2, 1), torch.zeros(4, 2), torch.zeros(3, 2))


# --------------------------------------------------------------------------------------
# networks and training
# --------------------------------------------------------------------------------------
def test_packing_judges_m_samples_as_one_row():
    d = Discriminator(features=2, hidden=(8,), pack=3)
    x = torch.randn(12, 2)
    out = d(x)
    assert out.shape == (4,)
    assert torch.allclose(out, d.net(x.reshape(4, 6))[:, 0])
    with pytest.raises(ValueError, match="multiple of pack=3"):
        d(torch.randn(10, 2))


def test_conditional_networks_take_one_hot_labels_and_refuse_missing_ones():
    g = Generator(features=64, latent_dim=8, hidden=(16,), num_classes=10, output="sigmoid")
    d = Discriminator(features=64, hidden=(16,), num_classes=10)
    y = torch.arange(10)
    x = g.sample(10, y, generator=torch.Generator().manual_seed(0))
    assert x.shape == (10, 64) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert d(x, y).shape == (10,)
    z = torch.randn(10, 8)
    other = g(z, (y + 1) % 10)
    assert not torch.allclose(g(z, y), other)  # the label changes the sample
    with pytest.raises(ValueError, match="class-conditional"):
        d(x)
    with pytest.raises(ValueError, match="unconditional"):
        Generator()(torch.randn(3, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels in \[0, 9\]"):
        d(x, y + 1)
    assert Generator().double().sample(5).dtype == torch.float64


def _radius_error(generator):
    with torch.no_grad():
        return float((generator.sample(1000).norm(dim=1) - 1).abs().mean())


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_moves_the_generator_towards_the_ring(loss):
    """300 generator steps bring samples from near the origin towards the ring of radius 1
    (the mean distance to the ring falls by over a third; how well each loss ends up
    covering the modes is the benchmark's job)."""
    torch.manual_seed(0)
    gen, disc = Generator(hidden=(32, 32)), Discriminator(hidden=(32, 32))
    before = _radius_error(gen)
    wasserstein = loss.startswith("wgan")
    n_critic = {"wgan": 2, "wgan-gp": 3}.get(loss, 1)
    trainer = train_gan(gen, disc, toy2d("ring8", 4096, seed=0), loss=loss, steps=300 * n_critic,
                        n_critic=n_critic, batch_size=128, lr=1e-4 if loss == "wgan-gp" else 1e-3,
                        betas=(0.5, 0.9) if wasserstein else (0.5, 0.999), clip_value=0.05,
                        progress=False, seed=0)
    history = trainer.history
    assert len(history.train["d_loss"]) == 300 * n_critic
    assert len(history.train["g_loss"]) == 300
    assert ("penalty" in history.train) == (loss == "wgan-gp")
    assert _radius_error(gen) < 0.65 * before
    if loss == "wgan":
        assert max(float(p.abs().max()) for p in disc.parameters()) <= 0.05 + 1e-7


def test_r1_a_generator_ema_and_lr_drops_are_wired_into_training():
    torch.manual_seed(0)
    gen, disc = Generator(hidden=(16,)), Discriminator(hidden=(16,))
    trainer = train_gan(gen, disc, toy2d("ring8", 512, seed=0), steps=20, batch_size=64,
                        r1_weight=1.0, ema_decay=0.9, lr_drops=(0.5, 0.9), progress=False)
    assert len(trainer.history.train["r1"]) == 20
    for optimizer in trainer.optimizers.values():  # 1e-3, divided by 10 at steps 10 and 18
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)
    ema = trainer.ema["generator"]
    assert ema.updates == 20
    with ema.applied():
        averaged = [p.detach().clone() for p in gen.parameters()]
    assert not all(torch.equal(a, p) for a, p in zip(averaged, gen.parameters()))
    with pytest.raises(ValueError, match="batch_size: expected at least"):
        train_gan(gen, Discriminator(pack=4), toy2d("ring8", 64, seed=0), batch_size=2)


def test_the_generator_update_leaves_the_discriminator_gradients_alone():
    """After a step, the discriminator's .grad holds the gradient of its own loss only: the
    generator's update ran through a frozen discriminator (and leaves it requiring grad)."""
    torch.manual_seed(0)
    gen, disc = Generator(hidden=(16,)), Discriminator(hidden=(16,))
    trainer = train_gan(gen, disc, toy2d("ring8", 256, seed=0), steps=1, batch_size=64,
                        progress=False)
    optimizer = trainer.optimizers["discriminator"]
    snapshots, step = [], optimizer.step

    def recording_step(*args, **kwargs):
        snapshots.append([p.grad.clone() for p in disc.parameters()])
        return step(*args, **kwargs)

    optimizer.step = recording_step
    trainer.run(steps=2)  # one more step, recorded
    assert len(trainer.history.train["g_loss"]) == 2 and len(snapshots) == 1
    assert all(torch.equal(p.grad, g) for p, g in zip(disc.parameters(), snapshots[0]))
    assert all(p.requires_grad for p in disc.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.parameters())


def test_a_seeded_training_is_reproducible_and_packing_trims_the_batch():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        gen, disc = Generator(hidden=(16,)), Discriminator(hidden=(16,), pack=4)
        train_gan(gen, disc, toy2d("ring8", 302, seed=0), steps=5, batch_size=150,
                  progress=False, seed=1)
        runs.append(gen.sample(4, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(*runs)


# --------------------------------------------------------------------------------------
# mode coverage
# --------------------------------------------------------------------------------------
def _coverage_by_loops(samples, centres, sigma, threshold=3.0):
    counts = np.zeros(len(centres))
    for x in samples.numpy():
        dist = np.sqrt(((centres.numpy() - x) ** 2).sum(1))
        if dist.min() < threshold * sigma:
            counts[dist.argmin()] += 1
    p = counts / max(counts.sum(), 1)
    kl = sum(pj * math.log(pj * len(centres)) for pj in p if pj > 0)
    return int((counts > 0).sum()), counts.sum() / len(samples), kl, counts


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mode_coverage_of_data_collapse_and_noise(name):
    centres, sigma = mode_centres(name)
    data = toy2d(name, 2500, seed=0)
    got = mode_coverage(data, centres, sigma)
    modes, hq, kl, counts = _coverage_by_loops(data, centres, sigma)
    assert (got.modes, got.high_quality) == (modes, pytest.approx(hq))
    assert got.reverse_kl == pytest.approx(kl) and np.array_equal(got.counts.numpy(), counts)
    # the data itself: every mode, P(R < 3 sigma) = 1 - exp(-9/2) of a 2-D Gaussian, small KL
    assert got.modes == len(centres) and got.reverse_kl < 0.02
    assert got.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    collapsed = mode_coverage(centres[:1] + sigma * torch.randn(500, 2), centres, sigma)
    assert collapsed.modes == 1 and collapsed.reverse_kl == pytest.approx(math.log(len(centres)))
    half = mode_coverage(centres[torch.arange(1200) % (len(centres) // 2)], centres, sigma)
    k = len(centres)
    assert half.modes == k // 2 and half.reverse_kl == pytest.approx(math.log(k / (k // 2)))
    noise = mode_coverage(centres.mean(0) + 100 + torch.randn(50, 2), centres, sigma)
    assert (noise.modes, noise.high_quality) == (0, 0.0)


# --------------------------------------------------------------------------------------
# BiGAN and CycleGAN
# --------------------------------------------------------------------------------------
class _FrozenTrainer:
    """What a step function needs of a Trainer, with optimisers that change nothing."""

    def __init__(self, *modules):
        params = [p for m in modules for p in m.parameters()]
        self.optimizers = {"discriminator": torch.optim.SGD(params, lr=0.0),
                           "generator": torch.optim.SGD(params, lr=0.0)}
        self.step = 0


def test_bigan_step_scores_data_with_its_code_against_samples_with_theirs():
    from coursekit.gan import BiGAN, bigan_step

    torch.manual_seed(0)
    model = BiGAN(features=6, latent_dim=3, hidden=(16,))
    x = torch.rand(10, 6)
    logged = bigan_step(model, rng=torch.Generator().manual_seed(5))(_FrozenTrainer(model), x)
    z = torch.randn(10, 3, generator=torch.Generator().manual_seed(5))
    d = model.discriminator
    real = d(torch.cat([x, model.encoder(x)], 1))
    fake = d(torch.cat([model.generator(z), z], 1))
    assert torch.allclose(logged["d_loss"], discriminator_loss(real, fake))
    assert torch.allclose(logged["g_loss"], discriminator_loss(fake, real))  # labels swapped
    assert model.encode(x).shape == (10, 3) and model.reconstruct(x).shape == (10, 6)
    assert model.sample(4).shape == (4, 6)
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 6\)"):
        model.encode(torch.rand(2, 5))


def test_a_trained_bigan_encoder_separates_two_clusters():
    from coursekit.gan import BiGAN, train_bigan

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 2
    x = (0.2 + 0.6 * labels[:, None] + 0.05 * torch.randn(400, 4, generator=g)).clamp(0, 1)
    model = BiGAN(features=4, latent_dim=1, hidden=(32,))
    trainer = train_bigan(model, x, steps=400, batch_size=100, lr=2e-3, progress=False)
    assert len(trainer.history.train["g_loss"]) == 400
    with torch.no_grad():
        code = model.encode(x)[:, 0]
    gap = (code[labels == 1].mean() - code[labels == 0].mean()).abs()
    assert gap > float(code.std())  # the two clusters get different codes


def test_cycle_loss_is_zero_for_inverse_translators_and_l1_otherwise():
    from coursekit.gan import CycleGAN

    model = CycleGAN(features=4, hidden=(8,))
    model.g_xy, model.g_yx = nn.Identity(), nn.Identity()
    x, y = torch.rand(5, 4), torch.rand(5, 4)
    assert float(model.cycle_loss(x, y)) == 0.0
    flip = torch.tensor([3, 2, 1, 0])
    model.g_xy = model.g_yx = _Permute(flip)  # a mirror is its own inverse
    assert float(model.cycle_loss(x, y)) == 0.0
    model.g_yx = nn.Identity()
    expected = (x[:, flip] - x).abs().sum(1).mean() + (y[:, flip] - y).abs().sum(1).mean()
    assert torch.allclose(model.cycle_loss(x, y), expected)


class _Permute(nn.Module):
    def __init__(self, order):
        super().__init__()
        self.order = order

    def forward(self, v):
        return v[:, self.order]


def test_cyclegan_step_adds_the_weighted_cycle_loss_and_needs_two_domains():
    from coursekit.gan import CycleGAN, cyclegan_step, train_cyclegan

    torch.manual_seed(0)
    model = CycleGAN(features=4, hidden=(8,))
    x, y = torch.rand(6, 4), torch.rand(6, 4)
    logged = cyclegan_step(model, cycle_weight=3.0)(_FrozenTrainer(model), (x, y))
    assert torch.allclose(logged["cycle"], model.cycle_loss(x, y))
    fake_y, fake_x = model.translate_xy(x), model.translate_yx(y)
    assert torch.allclose(logged["g_loss"], nonsaturating_generator_loss(model.d_y(fake_y))
                          + nonsaturating_generator_loss(model.d_x(fake_x)))
    with pytest.raises(ValueError, match=r"batch: expected \(x, y\)"):
        cyclegan_step(model)(_FrozenTrainer(model), x)
    trainer = train_cyclegan(model, (x, y), steps=5, batch_size=3, progress=False)
    assert len(trainer.history.train["cycle"]) == 5


def test_fit_discriminator_learns_the_log_density_ratio_of_two_gaussians():
    """For N(0, 1) against N(2, 1) the optimal logit is log p/q = 2 - 2x: linear, so a
    discriminator without hidden layers can reach it; with clipping no weight leaves
    [-c, c]."""
    torch.manual_seed(0)
    disc = Discriminator(1, hidden=())
    fit_discriminator(disc, lambda: torch.randn(1024, 1), lambda: torch.randn(1024, 1) + 2.0,
                      steps=400, lr=3e-2)
    linear = disc.net if isinstance(disc.net, nn.Linear) else disc.net[0]
    assert float(linear.weight) == pytest.approx(-2.0, abs=0.25)
    assert float(linear.bias) == pytest.approx(2.0, abs=0.25)
    clipped = fit_discriminator(Discriminator(1, hidden=(8,)), lambda: torch.randn(64, 1),
                                lambda: torch.randn(64, 1) + 2.0, steps=20, clip=0.01)
    assert max(float(p.abs().max()) for p in clipped.parameters()) <= 0.01
    with pytest.raises(ValueError, match="clip"):
        fit_discriminator(disc, torch.randn, torch.randn, steps=1, clip=0.0)


def test_train_gan_calls_its_evaluation_hook_every_n_steps():
    torch.manual_seed(0)
    gen, disc = Generator(hidden=(16,)), Discriminator(hidden=(16,))
    centres, sigma = mode_centres("ring8")

    def coverage(trainer):
        with torch.no_grad():
            samples = gen.sample(500, generator=torch.Generator().manual_seed(0))
        return {"modes": mode_coverage(samples, centres, sigma).modes}

    trainer = train_gan(gen, disc, toy2d("ring8", 512, seed=0), steps=25, batch_size=64,
                        evaluate=coverage, evaluate_every=10, progress=False)
    assert trainer.history.val_steps["modes"] == [10, 20]
    trainer.run(steps=30)
    assert trainer.history.val_steps["modes"] == [10, 20, 30]
    assert all(0 <= m <= 8 for m in trainer.history.val["modes"])
