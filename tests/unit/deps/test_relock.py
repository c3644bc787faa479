"""Incremental re-lock: when the last lock is updated in place, and when uv must resolve."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pytest
from support.projects import service, write_files

from wheeldock.deps import lock, pylock, relock
from wheeldock.deps.index import Index
from wheeldock.errors import NotFound, StaleLock
from wheeldock.project import Project

ENV = lock.target_environment("linux/amd64", "3.11")


def _top(*lines: str) -> dict[str, relock.TopRequirement]:
    return relock.top_requirements(lines, ENV)


# -- which versions moved ---------------------------------------------------------------------------


def test_a_bumped_pin_moves_that_package_only() -> None:
    moves = relock.version_moves(
        _top("fastapi==0.115.0", "pillow==10.4.0"),
        _top("fastapi==0.115.2", "pillow==10.4.0"),
        {"fastapi": "0.115.0", "pillow": "10.4.0", "starlette": "0.38.6"},
    )
    assert dict(moves.versions) == {"fastapi": "0.115.2"}


def test_a_changed_range_the_locked_version_still_meets_moves_nothing() -> None:
    moves = relock.version_moves(_top("idna>=3"), _top("idna>=3.5,<4"), {"idna": "3.10"})
    assert dict(moves.versions) == {}


def test_a_range_that_excludes_the_locked_version_needs_a_resolver_but_only_versions_moved() -> (
    None
):
    with pytest.raises(relock.NotIncremental) as err:
        relock.version_moves(_top("idna>=3"), _top("idna<3"), {"idna": "3.10"})
    assert not isinstance(err.value, relock.InputsChanged)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (("idna==3.10",), ("idna==3.10", "anyio==4.6.0")),  # added
        (("idna==3.10", "anyio==4.6.0"), ("idna==3.10",)),  # removed
        (("httpx==0.28.1",), ("httpx[http2]==0.28.1",)),  # extras
        (("idna==3.10",), ("idna==3.10; python_version >= '3.8'",)),  # markers
    ],
)
def test_inputs_that_changed_by_more_than_versions_are_not_updated_in_place(
    old: tuple[str, ...], new: tuple[str, ...]
) -> None:
    locked = {"idna": "3.10", "anyio": "4.6.0", "httpx": "0.28.1"}
    with pytest.raises(relock.InputsChanged):
        relock.version_moves(_top(*old), _top(*new), locked)


def test_requirements_for_another_platform_are_not_counted() -> None:
    old = _top("idna==3.10", "pywin32==306; sys_platform == 'win32'")
    new = _top("idna==3.9", "pywin32==307; sys_platform == 'win32'")
    moves = relock.version_moves(old, new, {"idna": "3.10"})
    assert dict(moves.versions) == {"idna": "3.9"}


# -- whether the lock with the new versions still holds ---------------------------------------------

REQUIRES = {
    "app": ("lib>=1", "tool[fast]>=2", "colorama; sys_platform == 'win32'"),
    "lib": (),
    "tool": ("speedups; extra == 'fast'", "docs-only; extra == 'docs'"),
    "speedups": (),
    "docs-only": (),
}
VERSIONS = {"app": "1.0", "lib": "1.5", "tool": "2.0", "speedups": "1.0", "docs-only": "1.0"}


def test_the_closure_follows_extras_and_markers_and_leaves_out_what_nothing_needs() -> None:
    needed = relock.closure(_top("app==1.0"), VERSIONS, REQUIRES, ENV)
    assert needed == {"app", "lib", "tool", "speedups"}


@pytest.mark.parametrize(
    ("requires", "reason"),
    [
        ({"app": ("lib>=2",)}, "app 1.0 needs lib>=2, but the lock has lib==1.5"),
        ({"app": ("newdep",)}, "app 1.0 needs newdep, which is not in the lock"),
        # something else pins lib differently
        ({"tool": ("lib<1.5",), "app": ("tool",)}, "tool 2.0 needs lib<1.5"),
    ],
)
def test_a_dependency_the_lock_does_not_meet_is_not_incremental(
    requires: dict[str, tuple[str, ...]], reason: str
) -> None:
    with pytest.raises(relock.NotIncremental, match=reason.replace("[", r"\[")):
        relock.closure(_top("app==1.0"), VERSIONS, {**REQUIRES, **requires}, ENV)


def test_a_package_whose_dependencies_are_unknown_is_not_incremental() -> None:
    with pytest.raises(relock.NotIncremental, match="dependencies of lib are unknown"):
        relock.closure(_top("app==1.0"), VERSIONS, {"app": ("lib",)}, ENV)


# -- the lock updated in place, against a fake index ------------------------------------------------


class _Index:
    """pypi.org's PEP 691 pages and files.pythonhosted.org's PEP 658 metadata files for
    ``releases`` (name → version → Requires-Dist), behind an httpx MockTransport; ``asked``
    are the paths requested."""

    def __init__(self, releases: dict[str, dict[str, tuple[str, ...]]]) -> None:
        self.releases = releases
        self.asked: list[str] = []

    @staticmethod
    def wheel(name: str, version: str) -> str:
        return f"{name}-{version}-py3-none-any.whl"

    def metadata(self, name: str, version: str) -> str:
        requires = self.releases[name][version]
        return f"Name: {name}\nVersion: {version}\n" + "".join(
            f"Requires-Dist: {r}\n" for r in requires
        )

    def wheel_bytes(self, name: str, version: str) -> bytes:
        import io
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            info = zipfile.ZipInfo(f"{name}-{version}.dist-info/METADATA", (2020, 1, 1, 0, 0, 0))
            zf.writestr(info, self.metadata(name, version))
        return buffer.getvalue()

    def file(self, name: str, version: str) -> dict[str, Any]:
        filename = self.wheel(name, version)
        data = self.wheel_bytes(name, version)
        return {
            "filename": filename,
            "url": f"https://files.pythonhosted.org/packages/{filename}",
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            "size": len(data),
            "core-metadata": True,
        }

    def client(self) -> Any:
        import httpx

        def handler(request: httpx.Request) -> httpx.Response:
            path = request.url.path
            self.asked.append(path)
            if request.url.host == "pypi.org":
                name = path.strip("/").split("/")[-1]
                files = [self.file(name, v) for v in self.releases.get(name, {})]
                return httpx.Response(200, json={"files": files})
            filename = path.rsplit("/", 1)[1]
            name, version = filename.split("-")[:2]
            if filename.endswith(".metadata"):
                return httpx.Response(200, text=self.metadata(name, version))
            return httpx.Response(200, content=self.wheel_bytes(name, version))

        return httpx.Client(transport=httpx.MockTransport(handler))

    def block(self, name: str, version: str) -> str:
        f = self.file(name, version)
        return (
            f'[[packages]]\nname = "{name}"\nversion = "{version}"\n'
            f'wheels = [{{ url = "{f["url"]}", size = {f["size"]}, '
            f'hashes = {{ sha256 = "{f["hashes"]["sha256"]}" }} }}]'
        )


RELEASES = {
    "app": {
        "1.0": ("lib>=1",),
        "1.1": ("lib>=1",),  # met by the lock: updated in place
        "1.2": ("lib>=2",),  # conflicts with lib 1.0: uv decides
        "1.3": ("lib>=1", "extra-dep"),  # adds a dependency: uv decides
        "1.4": (),  # drops lib
        "0.9": ("lib",),  # down
    },
    "lib": {"1.0": (), "2.0": ()},
    "other": {"3.0": ("lib<2",), "3.1": ("lib<1",)},
}


@pytest.fixture
def fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Project, _Index, lock.LockSession]:
    """A project locked with app 1.0, lib 1.0 (app's dependency) and other 3.0, from a fake
    index: its requirements pin only app and other."""
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    proj = Project(tmp_path, None, (service("api"),))
    write_files(tmp_path, {"svc/requirements.txt": "app==1.0\nother==3.0  # the top level\n"})
    index = _Index(RELEASES)
    net = Index()
    monkeypatch.setattr(net, "client", index.client)
    inputs = lock.inputs_for(tmp_path, proj.services[0], "linux/amd64")
    dest = pylock.lock_path(tmp_path, "api")
    dest.parent.mkdir()
    body = "".join(
        "\n" + index.block(n, v) + "\n"
        for n, v in (("app", "1.0"), ("lib", "1.0"), ("other", "3.0"))
    )
    lock._write_lock(tmp_path, dest, 'lock-version = "1.0"\n' + body, inputs)
    monkeypatch.setattr(lock, "compile_lock", _no_uv)
    return proj, index, lock.LockSession(net)


def _no_uv(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("uv was asked")


def _bump(proj: Project, text: str) -> lock.LockInputs:
    write_files(proj.root, {"svc/requirements.txt": text})
    return lock.inputs_for(proj.root, proj.services[0], "linux/amd64")


def _versions(made: pylock.Lock) -> dict[str, str]:
    return {p.name: p.version for p in made.packages}


def test_the_lock_records_the_requirements_it_was_made_from(
    fake: tuple[Project, _Index, lock.LockSession],
) -> None:
    proj, _, _ = fake
    made = pylock.read(pylock.lock_path(proj.root, "api"))
    assert made.requirements == ("app==1.0", "other==3.0")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.1", {"app": "1.1", "lib": "1.0", "other": "3.0"}),  # up
        ("0.9", {"app": "0.9", "lib": "1.0", "other": "3.0"}),  # down
        ("1.4", {"app": "1.4", "lib": "1.0", "other": "3.0"}),  # other still needs lib
    ],
)
def test_a_move_the_lock_meets_is_made_in_place_asking_only_for_the_moved_package(
    fake: tuple[Project, _Index, lock.LockSession], version: str, expected: dict[str, str]
) -> None:
    proj, index, session = fake
    dest = pylock.lock_path(proj.root, "api")
    inputs = _bump(proj, f"app=={version}\nother==3.0\n")
    result = lock.quick_lock(proj.root, inputs, dest, session=session)
    assert result is not None
    made, action = result
    assert action == "updated"
    assert _versions(made) == expected
    assert lock.status(dest, inputs) == "fresh"
    # app's page and metadata; lib's and other's metadata (no wheelhouse yet), kept for next time
    assert sorted(p for p in index.asked if p.startswith("/simple/")) == ["/simple/app/"]
    assert tomllib.loads(made.text)["tool"]["wheeldock"]["requirements"] == [
        f"app=={version}",
        "other==3.0",
    ]


def test_the_kept_packages_metadata_is_asked_once_then_kept(
    fake: tuple[Project, _Index, lock.LockSession],
) -> None:
    proj, index, session = fake
    dest = pylock.lock_path(proj.root, "api")
    lock.quick_lock(proj.root, _bump(proj, "app==1.1\nother==3.0\n"), dest, session=session)
    index.asked.clear()
    lock.quick_lock(proj.root, _bump(proj, "app==0.9\nother==3.0\n"), dest, session=session)
    assert sorted(index.asked) == [
        "/packages/app-0.9-py3-none-any.whl.metadata",
        "/simple/app/",
    ]


def test_a_dependency_nothing_needs_any_more_is_dropped(
    fake: tuple[Project, _Index, lock.LockSession],
) -> None:
    proj, index, session = fake
    dest = pylock.lock_path(proj.root, "api")
    inputs = _bump(proj, "app==1.0\n")  # a lock of app 1.0 alone: lib is app's only user
    body = "".join("\n" + index.block(n, "1.0") + "\n" for n in ("app", "lib"))
    lock._write_lock(proj.root, dest, 'lock-version = "1.0"\n' + body, inputs)
    made = lock.quick_lock(proj.root, _bump(proj, "app==1.4\n"), dest, session=session)
    assert made is not None and _versions(made[0]) == {"app": "1.4"}


def test_inputs_compiled_to_full_pins_since_are_locked_by_the_fast_path(
    fake: tuple[Project, _Index, lock.LockSession],
) -> None:
    proj, _, session = fake
    dest = pylock.lock_path(proj.root, "api")
    inputs = _bump(proj, "app==1.1\nlib==1.0\nother==3.0\n")  # more names: not a version move
    result = lock.quick_lock(proj.root, inputs, dest, session=session)
    assert result is not None
    made, action = result
    assert action == "pinned"
    assert _versions(made) == {"app": "1.1", "lib": "1.0", "other": "3.0"}


@pytest.mark.parametrize(
    ("requirements", "why"),
    [
        ("app==1.2\nother==3.0\n", "app 1.2 needs lib>=2"),  # conflicts
        ("app==1.3\nother==3.0\n", "needs extra-dep, which is not in the lock"),  # adds one
        ("app==1.0\nother==3.1\n", "other 3.1 needs lib<1"),  # something else pins lib
        ("app==1.0\n", "removed"),  # not a version move
    ],
)
def test_a_move_the_lock_does_not_meet_is_left_to_uv_and_the_lock_untouched(
    fake: tuple[Project, _Index, lock.LockSession],
    requirements: str,
    why: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proj, _, session = fake
    dest = pylock.lock_path(proj.root, "api")
    before = dest.read_text()
    caplog.set_level("INFO", logger="wheeldock.deps.lock")
    assert lock.quick_lock(proj.root, _bump(proj, requirements), dest, session=session) is None
    assert why in caplog.text
    assert dest.read_text() == before


# -- build: how a stale lock is treated -------------------------------------------------------------


def test_build_updates_a_lock_whose_versions_moved(
    fake: tuple[Project, _Index, lock.LockSession],
) -> None:
    proj, _, session = fake
    _bump(proj, "app==1.1\nother==3.0\n")
    landed: list[str] = []
    made = lock.ensure(
        proj, proj.services[0], session=session, landed=lambda sha, path: landed.append(path.name)
    )
    assert _versions(made) == {"app": "1.1", "lib": "1.0", "other": "3.0"}
    assert landed == ["app-1.1-py3-none-any.whl"]  # the build installs it next


def test_build_gives_uv_a_lock_whose_versions_moved_beyond_what_it_holds(
    fake: tuple[Project, _Index, lock.LockSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    proj, _, session = fake
    resolved: list[Path] = []

    def uv(root: Path, inputs: lock.LockInputs, dest: Path, **kw: Any) -> pylock.Lock:
        resolved.append(dest)  # uv writes over the old lock: its pins are uv's preferences
        return pylock.read(dest)

    monkeypatch.setattr(lock, "compile_lock", uv)
    _bump(proj, "app==1.2\nother==3.0\n")
    lock.ensure(proj, proj.services[0], session=session)
    assert resolved == [pylock.lock_path(proj.root, "api")]


def test_build_refuses_a_lock_whose_requirements_changed_otherwise_unless_relock(
    fake: tuple[Project, _Index, lock.LockSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    proj, _, session = fake
    _bump(proj, "app==1.0\n")
    with pytest.raises(StaleLock) as err:
        lock.ensure(proj, proj.services[0], session=session)
    assert err.value.path == pylock.lock_path(proj.root, "api")
    assert "--relock" in (err.value.fix or "")
    monkeypatch.setattr(lock, "compile_lock", lambda root, inputs, dest, **kw: pylock.read(dest))
    lock.ensure(proj, proj.services[0], session=session, policy="relock")


def test_locked_refuses_a_stale_lock_and_frozen_uses_it_as_it_is(
    fake: tuple[Project, _Index, lock.LockSession],
) -> None:
    proj, index, session = fake
    dest = pylock.lock_path(proj.root, "api")
    before = dest.read_text()
    _bump(proj, "app==1.1\nother==3.0\n")
    with pytest.raises(StaleLock, match="--locked refuses") as err:
        lock.ensure(proj, proj.services[0], session=session, policy="locked")
    assert err.value.path == dest
    frozen = lock.ensure(proj, proj.services[0], session=session, policy="frozen")
    assert _versions(frozen)["app"] == "1.0"
    assert dest.read_text() == before and index.asked == []


@pytest.mark.parametrize("policy", ["locked", "frozen"])
def test_a_missing_lock_is_not_made_under_locked_or_frozen(
    tmp_path: Path, policy: lock.LockPolicy
) -> None:
    proj = Project(tmp_path, None, (service("api"),))
    write_files(tmp_path, {"svc/requirements.txt": "app==1.0\n"})
    with pytest.raises(NotFound, match=f"--{policy} does not make one"):
        lock.ensure(proj, proj.services[0], policy=policy)
