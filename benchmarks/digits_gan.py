"""The course's GANs on 8x8 digits: samples, and what can be measured without a likelihood.

A GAN has no likelihood to put in ``digits_nll.md`` or ``digits_bpd.md``; lecture 10
adds feature-based sample metrics. Until then this table measures the samples of an
unconditional and a class-conditional GAN (lecture 07's networks, trained longer) with
what the course already has:

* **C2ST**: :func:`coursekit.metrics.classifier_two_sample_test` between 300 samples and
  the 300 test digits (an MLP's held-out accuracy; 0.5 means it cannot tell them apart)
  and its permutation p-value. The first row is its baseline: the 300 validation digits
  (real digits the models never saw) against the test digits.
* **class KL**: a logistic-regression digit classifier (fitted on the training split)
  labels 1,000 samples; the KL divergence of its class histogram from the uniform one
  (0 when every digit is equally frequent; log 10 = 2.30 when one class takes all).
* **label accuracy** (conditional GAN): how often the classifier agrees with the label
  the sample was generated for (chance 0.1; the classifier's own test accuracy is given).
* **nearest-neighbour ratio**: mean distance of a sample to its nearest training digit,
  divided by the same for test digits; far below 1 would mean memorised training digits.

Usage::

    .venv/bin/python benchmarks/digits_gan.py             # both GANs, 10,000 steps each
    .venv/bin/python benchmarks/digits_gan.py --steps 2000

Writes ``results/digits_gan.md`` (the table), ``results/digits_gan.json`` and
``results/digits_gan.png`` (samples next to test digits).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from coursekit.data import load_digits  # noqa: E402
from coursekit.gan import Discriminator, Generator, train_gan  # noqa: E402
from coursekit.metrics import classifier_two_sample_test  # noqa: E402
from coursekit.plotting import image_grid  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
N_SAMPLES = 1000


def class_kl(predicted) -> float:
    """KL(class histogram || uniform over 10 classes), in nats."""
    freq = torch.bincount(torch.as_tensor(predicted), minlength=10).double() / len(predicted)
    nonzero = freq > 0
    return float((freq[nonzero] * (freq[nonzero] * 10).log()).sum())


def nearest_train_distance(x, train) -> float:
    return float(torch.cdist(x.double(), train.double()).min(1).values.mean())


def measure(name: str, samples, labels, data: dict, seconds: float, params: int,
            steps: int) -> dict:
    """The table's row for ``samples`` (n, 64) (``labels``: the conditioning classes)."""
    x_train, x_test = data["x_train"], data["x_test"]
    test = classifier_two_sample_test(samples[:len(x_test)], x_test, hidden=(64,), seed=0)
    predicted = data["classifier"].predict(samples.numpy())
    row = {"model": name, "steps": steps, "c2st_accuracy": test.accuracy,
           "c2st_p": test.p_value, "class_kl": class_kl(predicted),
           "nn_ratio": nearest_train_distance(samples, x_train) / data["test_nn"],
           "seconds": seconds, "params": params}
    if labels is not None:
        row["label_accuracy"] = float((predicted == labels.numpy()).mean())
    return row


def train_one(conditional: bool, data: dict, steps: int) -> tuple[dict, torch.Tensor]:
    classes = 10 if conditional else 0
    torch.manual_seed(0)
    generator = Generator(64, latent_dim=16, hidden=(128, 128), num_classes=classes,
                          output="sigmoid")
    discriminator = Discriminator(64, hidden=(128, 128), num_classes=classes)
    train_data = (data["x_train"], data["y_train"]) if conditional else data["x_train"]
    trainer = train_gan(generator, discriminator, train_data, steps=steps, batch_size=128,
                        lr=1e-3, lr_drops=(0.8,), seed=0,
                        desc="conditional GAN" if conditional else "GAN")
    labels = torch.arange(10).repeat_interleave(N_SAMPLES // 10) if conditional else None
    # an order where every run of 300 samples mixes all labels (the C2ST takes the first 300)
    order = torch.randperm(N_SAMPLES, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        samples = generator.sample(N_SAMPLES, labels,
                                   generator=torch.Generator().manual_seed(1))
    params = sum(p.numel() for m in (generator, discriminator) for p in m.parameters())
    name = "conditional GAN" if conditional else "GAN"
    row = measure(name, samples[order], None if labels is None else labels[order], data,
                  trainer.history.seconds, params, steps)
    return row, samples


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    classifier = LogisticRegression(max_iter=3000).fit(x_train.numpy(), y_train.numpy())
    data = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "classifier": classifier,
            "test_nn": nearest_train_distance(x_test, x_train)}
    x_val, y_val = load_digits("val")
    rows = [measure("validation digits (baseline)", x_val, None, data, 0.0, 0, 0)]
    rows[0]["label_accuracy"] = float(classifier.score(x_val.numpy(), y_val.numpy()))
    grids = {}
    for conditional in (False, True):
        start = time.perf_counter()
        row, samples = train_one(conditional, data, args.steps)
        print(f"{row['model']}: {time.perf_counter() - start:.0f} s, {row}")
        rows.append(row)
        grids[row["model"]] = samples
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch "
               f"{torch.__version__}, Python {platform.python_version()}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "digits_gan.json").write_text(json.dumps({"measured": when, "machine": machine,
                                                         "rows": rows}, indent=1) + "\n")
    write_table(rows, when, machine)
    write_figure(grids, x_test, y_test)


def write_table(rows: list, when: str, machine: str) -> None:
    lines = [
        "# GANs on 8x8 digits: samples without a likelihood",
        "",
        f"Measured by `benchmarks/digits_gan.py` on {when} ({machine}). Pixels in [0, 1]; "
        f"{N_SAMPLES} samples per model (the conditional GAN: 100 per class; the baseline: the "
        "300 validation digits). C2ST: an MLP "
        "(64 hidden units) trained on half of 300 samples and the 300 test digits, accuracy "
        "on the other half (0.5: indistinguishable) and its permutation p-value. Class KL: "
        "KL of a logistic-regression classifier's class histogram from uniform (nats; 0 is "
        "every class equally often, log 10 = 2.30 one class only). Label accuracy: the "
        "classifier agrees with the conditioning label (the baseline row: the classifier's "
        "accuracy on the validation digits). NN ratio: mean distance to the nearest "
        "training digit, over the same for test digits. Training seconds are wall time on "
        "this machine, which other jobs may have shared. Feature-based metrics (Fréchet "
        "distance, precision and recall) arrive with lecture 10.",
        "",
        "| model | steps | C2ST accuracy | C2ST p | class KL | label accuracy | NN ratio "
        "| parameters | train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        label = f"{r['label_accuracy']:.3f}" if "label_accuracy" in r else ""
        lines.append(f"| {r['model']} | {r['steps']:,} | {r['c2st_accuracy']:.3f} | "
                     f"{r['c2st_p']:.4f} | {r['class_kl']:.3f} | {label} | "
                     f"{r['nn_ratio']:.2f} | {r['params']:,} | {r['seconds']:.0f} |")
    (RESULTS / "digits_gan.md").write_text("\n".join(lines) + "\n")


def write_figure(grids: dict, x_test, y_test) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    real = torch.stack([x_test[y_test == k][:8] for k in range(10)], 1).reshape(-1, 64)
    image_grid(real, nrow=10, ax=axes[0], vmax=1, title="test digits (a column per class)")
    image_grid(grids["GAN"][:80], nrow=10, ax=axes[1], vmax=1, title="GAN samples")
    per_class = grids["conditional GAN"].reshape(10, -1, 64)[:, :8].transpose(0, 1)
    image_grid(per_class.reshape(-1, 64), nrow=10, ax=axes[2], vmax=1,
               title="conditional GAN: a column per label")
    plt.tight_layout()
    fig.savefig(RESULTS / "digits_gan.png", dpi=110)


if __name__ == "__main__":
    main()
