"""Finding submission.py in an upload: one rule for folders and zips."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from coursekit.grading.locate import MAX_SUBMISSION_BYTES, find_submission


def write(root: Path, relative: str, text: str = "x = 1\n") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_folder_with_submission_at_the_top(tmp_path):
    top = write(tmp_path, "submission.py")
    write(tmp_path, "old/submission.py")
    assert find_submission(tmp_path) == (top, "")


def test_nested_folder_gives_the_shallowest_then_first_by_path(tmp_path):
    write(tmp_path, "b/deeper/submission.py")
    write(tmp_path, "b/submission.py")
    first = write(tmp_path, "a/submission.py")
    assert find_submission(tmp_path) == (first, "")


def test_folder_without_submission_or_only_a_macosx_decoy(tmp_path):
    write(tmp_path, "notes.txt")
    write(tmp_path, "submission.py.bak")
    write(tmp_path, "__MACOSX/submission.py", "decoy")
    assert find_submission(tmp_path) == (None, "no submission.py in the folder")
    real = write(tmp_path, "hw/deep/submission.py")
    assert find_submission(tmp_path) == (real, "")


def test_zip_extracts_only_the_shallowest_member(tmp_path):
    archive = make_zip(
        tmp_path / "alice.zip",
        {
            "__MACOSX/submission.py": b"decoy",
            "__MACOSX/hw/._submission.py": b"decoy",
            "hw/deep/submission.py": b"deep",
            "hw/submission.py": b"mine",
            "../evil.py": b"escape",
            "hw/other.py": b"other",
        },
    )
    out = tmp_path / "out"
    file, problem = find_submission(archive, extract_to=out / "alice")
    assert (file, problem) == (out / "alice" / "submission.py", "")
    assert file.read_bytes() == b"mine"
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert written == ["alice.zip", "out", "out/alice", "out/alice/submission.py"]


def test_zip_without_submission_writes_nothing(tmp_path):
    archive = make_zip(tmp_path / "bob.zip", {"hw/main.py": b"", "__MACOSX/submission.py": b""})
    target = tmp_path / "out"
    found = find_submission(archive, extract_to=target)
    assert found == (None, "the zip file has no submission.py")
    assert not target.exists()


def test_zip_size_limit_and_unreadable_zip(tmp_path):
    big = make_zip(tmp_path / "big.zip", {"submission.py": b"#" * (MAX_SUBMISSION_BYTES + 1)})
    file, problem = find_submission(big, extract_to=tmp_path / "out")
    assert file is None and "larger than 20 MB" in problem
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    file, problem = find_submission(broken, extract_to=tmp_path / "out")
    assert file is None and problem.startswith("the zip file could not be read")
    assert not (tmp_path / "out").exists()


def test_zip_needs_a_folder_to_extract_to(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"submission.py": b""})
    with pytest.raises(ValueError, match="^extract_to: "):
        find_submission(archive)
