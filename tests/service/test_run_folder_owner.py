"""A run folder named by a ``pipetrace run`` caller is read only when it is its user's own."""

from __future__ import annotations

import os
from pathlib import Path

from service.run_process import RESULT, owned_by

ME = os.getuid()


def test_a_folder_and_files_of_the_user_are_read(tmp_path: Path) -> None:
    (tmp_path / RESULT).write_text("{}")
    assert owned_by(ME, tmp_path, tmp_path / RESULT, tmp_path / "absent.log")


def test_a_link_in_the_folder_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("not the run's")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "output.log").symlink_to(secret)
    assert not owned_by(ME, run_dir, run_dir / "output.log")
    (tmp_path / "link").symlink_to(run_dir, target_is_directory=True)
    assert not owned_by(ME, tmp_path / "link")  # a link to a folder is not the folder


def test_no_owner_or_a_missing_folder_reads_nothing(tmp_path: Path) -> None:
    assert not owned_by(None, tmp_path)
    assert not owned_by(ME, tmp_path / "missing")


def test_a_folder_or_file_of_another_user_is_not_read(tmp_path: Path) -> None:
    (tmp_path / RESULT).write_text("{}")
    assert not owned_by(ME + 1, tmp_path, tmp_path / RESULT)  # both ME's, asked for another user
    other = tmp_path / "other"
    other.mkdir()
    assert owned_by(ME, other)
    assert not owned_by(ME + 1, other)
