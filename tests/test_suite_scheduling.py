"""tests/conftest.py's xdist grouping: files with shared fixtures stay on one worker."""

from __future__ import annotations

from pathlib import Path

from suite_plugins import modules_with_shared_fixtures

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
