"""tests/conftest.py's xdist schedule: which tests share a worker (units), longest units first."""

from __future__ import annotations

from pathlib import Path

from suite_plugins import (
    UNRECORDED_SECONDS,
    expected_seconds,
    longest_first,
    modules_with_shared_fixtures,
    recorded_scope_seconds,
    scope_of,
)

ROOT = Path(__file__).resolve().parents[1]


def test_files_with_module_or_session_fixtures_are_grouped(tmp_path):
    shared = modules_with_shared_fixtures(ROOT)
    assert "tests/hw2/test_hw2_checks.py" in shared  # its graded batch is built once
    assert "tests/test_functional.py" not in shared  # no shared fixture: tests spread
    (tmp_path / "tests" / "sub").mkdir(parents=True)
    (tmp_path / "tests" / "test_a.py").write_text(
        '@pytest.fixture(scope="module")\ndef x():\n    return 1\n')
    (tmp_path / "tests" / "sub" / "test_b.py").write_text(
        "@pytest.fixture(autouse=True, scope='session')\ndef y():\n    return 1\n")
    (tmp_path / "tests" / "test_c.py").write_text(
        '@pytest.fixture\ndef z():\n    return 1\n\n\ndef test_z(z):\n    assert z\n')
    assert modules_with_shared_fixtures(tmp_path) == {"tests/test_a.py", "tests/sub/test_b.py"}


def test_each_lecture_run_all_is_its_own_unit_and_notebook_cells_stay_together():
    shared = {"tests/hw2/test_hw2_checks.py"}
    run_all = "tests/browser/test_run_all.py::test_run_all_cells[lectures/04_vae.ipynb]"
    assert scope_of(run_all, shared) == run_all
    assert scope_of("tests/browser/test_widgets.py::test_toy_density_explorer", shared) == \
        "tests/browser"
    assert scope_of("solutions/hw2_vae/hw2_vae.ipynb::Cell 3", shared) == \
        "solutions/hw2_vae/hw2_vae.ipynb"
    assert scope_of("tests/hw2/test_hw2_checks.py::test_x[a]", shared) == \
        "tests/hw2/test_hw2_checks.py"
    assert scope_of("tests/test_mcmc.py::test_y", shared) == "tests/test_mcmc.py::test_y"


def test_longest_units_go_first():
    units = {"tests/test_a.py::t1": 1, "nb.ipynb": 2, "tests/test_b.py::t2": 1,
             "tests/browser/test_run_all.py::test_run_all_cells[new.ipynb]": 1, "shared.py": 9}
    recorded = {"nb.ipynb": 50.0, "tests/test_b.py::t2": 2.0, "shared.py": 80.0}
    # an unrecorded lecture is guessed heavy (120 s), then 80, 50, 2 and the 0.3-s default
    assert longest_first(units, recorded) == [
        "tests/browser/test_run_all.py::test_run_all_cells[new.ipynb]", "shared.py", "nb.ipynb",
        "tests/test_b.py::t2", "tests/test_a.py::t1"]
    assert expected_seconds("tests/test_a.py::t1", 1, {}) == UNRECORDED_SECONDS["test"]


def test_recorded_scope_seconds_are_readable_and_name_real_files():
    recorded = recorded_scope_seconds()
    assert recorded, "tests/scope_seconds.json is missing or empty"
    assert all(seconds >= 0 for seconds in recorded.values())
    missing = [s for s in recorded if not (ROOT / s.split("::", 1)[0]).exists()]
    assert not missing, f"units of files that no longer exist (refresh the file): {missing}"
