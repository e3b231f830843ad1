"""scikit-learn's common estimator checks on every coursekit fitted estimator.

``parametrize_with_checks`` runs scikit-learn's own API tests (clone, get/set_params,
pickling, dtypes, NaN/inf and shape errors, fit idempotence, n_features_in_, ...).
A check an estimator is known to fail is listed, with the reason, by the estimator's
``_expected_failed_checks()`` (scikit-learn >= 1.6's mechanism: ``expected_failed_checks``),
so the reason lives next to the code. Small ``max_iter`` keeps the whole set fast.
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from coursekit.latent import PPCA, MixturePPCA
from coursekit.mixture import BernoulliMixture, GaussianMixture

ESTIMATORS = [
    GaussianMixture(max_iter=5, random_state=0),
    GaussianMixture(2, covariance_type="diag", init_params="k-means++", max_iter=5,
                    random_state=0),
    BernoulliMixture(max_iter=5, binarize=0.0, random_state=0),
    PPCA(),
    MixturePPCA(max_iter=5),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS,
                         expected_failed_checks=lambda est: est._expected_failed_checks())
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
