"""coursekit: the tested library behind the deep generative models course.

Top-level helpers::

    import coursekit
    device = coursekit.get_device("auto")
    coursekit.seed_everything(0)

Submodules (imported on demand): ``data``, ``train``, ``plotting``,
``widgets``, ``probability``, ``mixture``, ``grading`` and one module per model
family.
"""

from coursekit.runtime import available_devices, budget, get_device, seed_everything

__version__ = "0.1.0"

__all__ = ["available_devices", "budget", "get_device", "seed_everything", "__version__"]
