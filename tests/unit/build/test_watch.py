"""``build --watch``: a change to a service's inputs rebuilds its image in the warm process."""

from __future__ import annotations

import errno
import itertools
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from wheeldock import project
from wheeldock.build import watch
from wheeldock.build.builder import BuildOptions, ServiceBuild
from wheeldock.errors import InvalidConfig
from wheeldock.project import Project, Service


def _project(root: Path) -> Project:
    (root / "api").mkdir(parents=True)
    (root / "api" / "app.py").write_text("print('api')\n")
    (root / "api" / "requirements.txt").write_text("idna==3.10\n")
    (root / "worker").mkdir()
    (root / "worker" / "run.py").write_text("print('worker')\n")
    proj = Project(
        root,
        None,
        (
            Service("api", "api", ("api/requirements.txt",), ("python3", "app.py")),
            Service("worker", "worker", (), ("python3", "run.py")),
        ),
    )
    project.save(proj)
    return proj


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    # a later mtime even on coarse-grained file systems
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


def test_an_edit_a_new_file_or_a_removal_changes_the_fingerprint(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    api = proj.service("api")
    prints = [watch.fingerprint(tmp_path, api)]
    _touch(tmp_path / "api" / "app.py", "print('edited')\n")
    prints.append(watch.fingerprint(tmp_path, api))
    (tmp_path / "api" / "new.py").write_text("X = 1\n")
    prints.append(watch.fingerprint(tmp_path, api))
    (tmp_path / "api" / "new.py").unlink()
    prints.append(watch.fingerprint(tmp_path, api))
    _touch(tmp_path / "api" / "requirements.txt", "idna==3.9\n")
    prints.append(watch.fingerprint(tmp_path, api))
    assert all(a != b for a, b in itertools.pairwise(prints))
    assert prints[3] == prints[1]  # removing the new file is back to how it was


def test_bytecode_and_wheeldock_state_do_not_count(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    api = proj.service("api")
    before = watch.fingerprint(tmp_path, api)
    (tmp_path / "api" / "__pycache__").mkdir()
    (tmp_path / "api" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "api" / "stray.pyc").write_bytes(b"x")
    (tmp_path / "api" / ".wheeldock").mkdir()
    (tmp_path / "api" / ".wheeldock" / "state").write_text("x")
    assert watch.fingerprint(tmp_path, api) == before


def test_changed_names_the_services_whose_inputs_moved() -> None:
    assert watch.changed({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == ["b", "c"]


class _FakeBuild:
    """Stands in for :func:`builder.build`: records what was rebuilt, fails when told to."""

    def __init__(self, rounds_wanted: int, fail_first: Exception | None = None) -> None:
        self.calls: list[list[str]] = []
        self.sessions: list[object] = []  # the session each round was built in
        self.rounds_wanted = rounds_wanted
        self.fail_first = fail_first

    def __call__(
        self, proj: Project, services: Sequence[Service], outputs: Sequence[str], *_: Any, **__: Any
    ) -> list[ServiceBuild]:
        self.calls.append([s.name for s in services])
        self.sessions.append(__.get("session"))
        if self.fail_first is not None and len(self.calls) == 1:
            raise self.fail_first
        return []


def _run_watch(
    proj: Project, fake: _FakeBuild, edits: list[Path], monkeypatch: pytest.MonkeyPatch
) -> list[watch.Rebuild]:
    monkeypatch.setattr(watch, "build", fake)
    reports: list[watch.Rebuild] = []
    deadline = time.monotonic() + 20
    watching = threading.Event()  # set once the baseline fingerprints are taken

    def stop() -> bool:
        watching.set()
        return len(reports) >= fake.rounds_wanted or time.monotonic() > deadline

    def edit() -> None:
        watching.wait(20)
        for path in edits:
            time.sleep(0.05)
            _touch(path, path.read_text() + "# edited\n")
            while len(reports) < edits.index(path) + 1 and time.monotonic() < deadline:
                time.sleep(0.02)

    editor = threading.Thread(target=edit)
    editor.start()
    watch.watch(
        proj,
        proj.services,
        ["oci:/nowhere"],
        BuildOptions(),
        on_rebuild=reports.append,
        polling=watch.Polling(interval=0.02, should_stop=stop),
    )
    editor.join()
    return reports


def test_only_the_service_whose_code_changed_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = _project(tmp_path)
    fake = _FakeBuild(rounds_wanted=2)
    reports = _run_watch(
        proj, fake, [tmp_path / "worker" / "run.py", tmp_path / "api" / "app.py"], monkeypatch
    )
    assert fake.calls == [["worker"], ["api"]]
    assert [r.services for r in reports] == [("worker",), ("api",)]


def test_every_round_builds_in_the_one_session_the_watch_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wheeldock.build.session import Session

    proj = _project(tmp_path)
    fake = _FakeBuild(rounds_wanted=2)
    _run_watch(
        proj, fake, [tmp_path / "worker" / "run.py", tmp_path / "api" / "app.py"], monkeypatch
    )
    first, second = fake.sessions
    assert isinstance(first, Session) and second is first


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (InvalidConfig("line 1: not a requirement", path="x"), "x: line 1: not a requirement"),
        (
            OSError(errno.ENOSPC, "No space left on device", "/out/blob"),
            "/out/blob: No space left on device\n  fix: free space on that file system",
        ),
    ],
)
def test_a_failed_rebuild_is_reported_and_watching_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception, message: str
) -> None:
    proj = _project(tmp_path)
    fake = _FakeBuild(rounds_wanted=2, fail_first=failure)
    req = tmp_path / "api" / "requirements.txt"
    reports = _run_watch(proj, fake, [req, tmp_path / "api" / "app.py"], monkeypatch)
    assert reports[0].error is not None and reports[0].error.message.startswith(message)
    assert reports[1].error is None and reports[1].services == ("api",)


def test_build_watch_refuses_foreign_platforms(tmp_path: Path) -> None:
    from wheeldock import cli

    _project(tmp_path)
    code = cli.main(
        ["-C", str(tmp_path), "build", "--watch", "--platform", "linux/arm64,linux/amd64"]
    )
    assert code != 0
