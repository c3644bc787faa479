"""The data folders of a code mount that stay mounted once the code is in the image."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from wheeldock.compose import datamounts
from wheeldock.compose.datamounts import Mount


def _mount(tmp_path: Path, writable: bool = True) -> Mount:
    app = tmp_path / "app"
    (app / "events").mkdir(parents=True, exist_ok=True)
    (app / "main.py").write_text("print('hi')\n")
    return Mount("./app", app, "/app", writable)


def _kept(tmp_path: Path, steps: list[list[str]], env: dict[str, str | None] | None = None,
          writable: bool = True) -> datamounts.Kept:  # fmt: skip
    paths = datamounts.written_paths(steps, env or {}, "/app")
    return datamounts.kept(_mount(tmp_path, writable), paths)


def test_a_job_clearing_a_folder_keeps_that_folder_mounted(tmp_path: Path) -> None:
    kept = _kept(tmp_path, [["rm", "-rf", "/app/events/*"], ["python", "/app/main.py"]])
    assert kept.entries == ("./app/events:/app/events",) and not kept.whole
    assert "rm -rf /app/events/*" in kept.notes[0]


@pytest.mark.parametrize(
    ("env", "entry"),
    [
        ({"DATABASE_URL": "sqlite:////app/data/app.db"}, "./app/data:/app/data"),
        ({"DB": "sqlite+aiosqlite:///./db/app.sqlite3"}, "./app/db:/app/db"),
        ({"UPLOAD_FOLDER": "/app/uploads"}, "./app/uploads:/app/uploads"),
        ({"REPORTS_DIR": "out/reports"}, "./app/out/reports:/app/out/reports"),
    ],
)
def test_sqlite_urls_and_data_folders_in_the_environment_are_kept(
    tmp_path: Path, env: dict[str, str | None], entry: str
) -> None:
    assert _kept(tmp_path, [["python", "main.py"]], env).entries == (entry,)


def test_a_database_at_the_mounts_top_keeps_the_whole_mount(tmp_path: Path) -> None:
    kept = _kept(tmp_path, [], {"DATABASE_URL": "sqlite:////app/app.db"})
    assert kept.whole and kept.entries == ()
    assert "kept the code mount ./app:/app" in kept.notes[0]


def test_a_redirection_into_the_mount_is_a_write(tmp_path: Path) -> None:
    kept = _kept(tmp_path, [["python", "main.py", ">", "/app/logs/run.log"]])
    assert kept.entries == ("./app/logs:/app/logs",)


@pytest.mark.parametrize(
    "steps",
    [
        [["python", "/app/main.py"]],
        [["python", "manage.py", "migrate"], ["python", "main.py"]],
        [["rm", "-rf", "/tmp/cache"], ["python", "main.py"]],
        [["mkdir", "-p", "/var/data"]],
    ],
)
def test_reading_code_and_writing_elsewhere_keeps_nothing(
    tmp_path: Path, steps: list[list[str]]
) -> None:
    assert _kept(tmp_path, steps) == datamounts.Kept(False, (), ())


def test_a_read_only_code_mount_keeps_nothing(tmp_path: Path) -> None:
    kept = _kept(tmp_path, [["rm", "-rf", "/app/events/*"]], writable=False)
    assert kept == datamounts.Kept(False, (), ())


def test_a_folder_inside_a_kept_one_is_not_mounted_twice(tmp_path: Path) -> None:
    steps = [["mkdir", "-p", "/app/events/today"], ["rm", "-rf", "/app/events/*"]]
    assert _kept(tmp_path, steps).entries == ("./app/events:/app/events",)


@pytest.mark.parametrize(
    ("volumes", "writable"),
    [
        (["./app:/app"], True),
        (["./app:/app:rw"], True),
        (["./app:/app:ro"], False),
        (["./app:/app:ro,z"], False),
        ([{"type": "bind", "source": "./app", "target": "/app", "read_only": True}], False),
        ([{"type": "bind", "source": "./app", "target": "/app"}], True),
    ],
)
def test_writable_reads_the_mount_mode(volumes: list[object], writable: bool) -> None:
    assert datamounts.writable(volumes, "./app") is writable


def test_paths_are_resolved_against_the_working_dir() -> None:
    found = datamounts.written_paths([["touch", "state/ready"]], {}, "/srv")
    assert found[0][0] == PurePosixPath("/srv/state/ready")
