"""Harness of homework 1: runs INSIDE the grading sandbox, next to the student's code.

One mistake costs points once, in its own task. ``em_step`` (1e) and
``mc_kl_estimate`` (1c) may reuse the student's ``gaussian_log_density`` (1a);
when graded, the hidden checks pass the source text of a correct
``gaussian_log_density`` (``GRADED_HELPERS`` of the hidden checks, never
released: it is the answer to 1a) and :func:`helpers_from` puts it in place of
the student's in the ``submission`` module for the duration of the call only
(the student's function looks it up as a module global). Without it
(``coursekit check``) the student's own function is used.
"""

from __future__ import annotations

import submission

from coursekit.grading.helper_swap import swap_helpers

HELPER_NAMES = ("gaussian_log_density",)


def helpers_from(source):
    """Within the block, ``submission``'s helper functions are the ones defined by the
    Python text ``source`` (nothing changes when ``source`` is None)."""
    return swap_helpers(submission, source, HELPER_NAMES)


def em_step(x, weights, means, covs, helpers=None):
    """The student's ``em_step`` (with the graded helpers when given)."""
    with helpers_from(helpers):
        return submission.em_step(x, weights, means, covs)


def mc_kl_estimate(mu1, var1, mu2, var2, n_samples, seed, helpers=None):
    """The student's ``mc_kl_estimate`` (with the graded helpers when given)."""
    with helpers_from(helpers):
        return submission.mc_kl_estimate(mu1, var1, mu2, var2, n_samples, seed)
