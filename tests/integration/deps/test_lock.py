from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from support.projects import lock_cli, service, write_files

from wheeldock.deps import lock, pylock
from wheeldock.deps.index import Index
from wheeldock.edges import process
from wheeldock.errors import StaleLock
from wheeldock.project import Project

# -- with uv (network: PyPI) ----------------------------------------------------------------------


@pytest.mark.integration
def test_lock_pins_hashes_shares_identical_inputs_and_refuses_drift(tmp_path: Path) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "idna==3.10\n"})
    proj = Project(tmp_path, None, (service("api"), service("img")))
    results = lock.lock_services(proj, proj.services, fast=False)
    assert [(r.action, r.packages) for r in results] == [("written", 1), ("shared", 1)]
    api, img = (pylock.lock_path(tmp_path, n) for n in ("api", "img"))
    assert api.read_bytes() == img.read_bytes()
    doc = tomllib.loads(api.read_text())
    (pkg,) = doc["packages"]
    assert (pkg["name"], pkg["version"]) == ("idna", "3.10")
    assert all(len(w["hashes"]["sha256"]) == 64 for w in pkg["wheels"])
    assert doc["tool"]["wheeldock"]["platform"] == "linux/amd64"

    assert {r.status for r in lock.lock_services(proj, proj.services, check=True)} == {"fresh"}
    # a range that excludes the locked version: only versions moved, so build lets uv re-lock
    write_files(tmp_path, {"svc/requirements.txt": "idna>=3.9,<3.10\n"})
    assert {r.status for r in lock.lock_services(proj, proj.services, check=True)} == {"stale"}
    relocked = lock.ensure(proj, proj.services[0])
    assert [(p.name, p.version) for p in relocked.packages] == [("idna", "3.9")]
    # a requirement added is more than versions moving: build refuses it unless --relock
    write_files(tmp_path, {"svc/requirements.txt": "idna>=3.9,<3.10\nsniffio>=1\n"})
    with pytest.raises(StaleLock, match=r"the lock is stale: svc/requirements.txt") as err:
        lock.ensure(proj, proj.services[0])
    assert err.value.path == api and err.value.fix is not None and "wheeldock lock" in err.value.fix
    relocked = lock.ensure(proj, proj.services[0], policy="relock")
    assert [p.name for p in relocked.packages] == ["idna", "sniffio"]


# -- the fast path --------------------------------------------------------------------------------


def _packages(path: Path) -> list[dict[str, object]]:
    packages: list[dict[str, object]] = tomllib.loads(path.read_text())["packages"]
    return packages


@pytest.mark.integration
def test_fully_pinned_inputs_lock_without_uv_exactly_as_uv_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    proj = Project(tmp_path, None, (service("api"),))
    write_files(tmp_path, {"svc/requirements.txt": "httpx[http2]==0.28.1\n"})
    (by_uv,) = lock.lock_services(proj, proj.services, fast=False)
    pins = "".join(f"{p['name']}=={p['version']}\n" for p in _packages(by_uv.path))
    pins = pins.replace("httpx==", "httpx[http2]==")
    write_files(tmp_path, {"svc/requirements.txt": pins})
    uv_text = lock.compile_lock(
        tmp_path, lock.inputs_for(tmp_path, proj.services[0], "linux/amd64"), by_uv.path
    ).text
    by_uv.path.unlink()

    def no_uv(*args: object, **kwargs: object) -> None:
        raise AssertionError("uv was run")

    monkeypatch.setattr(lock, "compile_lock", no_uv)
    (fast,) = lock.lock_services(proj, proj.services)
    assert fast.action == "pinned"
    assert _packages(fast.path) == tomllib.loads(uv_text)["packages"]
    assert (
        lock.status(fast.path, lock.inputs_for(tmp_path, proj.services[0], "linux/amd64"))
        == "fresh"
    )


@pytest.mark.integration
def test_armv7_is_locked_universally_by_uv_and_pinned_inputs_lock_the_same_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    proj = Project(tmp_path, None, (service("api"),))
    windows = "colorama==0.4.6 ; sys_platform == 'win32'\n"
    write_files(tmp_path, {"svc/requirements.txt": "pydantic==2.10.4\n" + windows})
    (by_uv,) = lock.lock_services(proj, proj.services, platform="linux/arm/v7", fast=False)
    assert by_uv.path.name == "pylock.api-armv7l.toml" and by_uv.action == "written"
    packages = _packages(by_uv.path)
    names = [p["name"] for p in packages]
    assert "colorama" not in names and {"pydantic", "pydantic-core"} <= set(names)
    assert all("marker" not in p for p in packages)
    (core,) = [p for p in packages if p["name"] == "pydantic-core"]
    wheels = [str(w["url"]).rsplit("/", 1)[1] for w in core["wheels"]]  # type: ignore[attr-defined]
    assert wheels and all("cp311-manylinux" in w and w.endswith("armv7l.whl") for w in wheels)

    pins = "".join(f"{p['name']}=={p['version']}\n" for p in packages) + windows
    write_files(tmp_path, {"svc/requirements.txt": pins})
    inputs = lock.inputs_for(tmp_path, proj.services[0], "linux/arm/v7")
    uv_text = lock.compile_lock(tmp_path, inputs, by_uv.path).text
    by_uv.path.unlink()

    def no_uv(*args: object, **kwargs: object) -> None:
        raise AssertionError("uv was run")

    monkeypatch.setattr(lock, "compile_lock", no_uv)
    (fast,) = lock.lock_services(proj, proj.services, platform="linux/arm/v7")
    assert fast.action == "pinned"
    assert _packages(fast.path) == tomllib.loads(uv_text)["packages"]


def _spy_on_the_index(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pins the lock asks the index for from now on, as ``name==version``, in order."""
    asked: list[str] = []
    real = lock._fetch_releases

    def spy(
        pins: list[lock._Pin], inputs: lock.LockInputs, index: Index, **kw: Any
    ) -> list[lock._Release]:
        asked.extend(f"{p.name}=={p.version}" for p in pins)
        return real(pins, inputs, index, **kw)

    monkeypatch.setattr(lock, "_fetch_releases", spy)
    return asked


@pytest.mark.integration
def test_a_bumped_pin_asks_the_index_only_for_that_package_and_build_relocks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wheeldock.deps.wheelhouse import Wheelhouse, select

    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    proj = Project(tmp_path, None, (service("api"),))
    write_files(tmp_path, {"svc/requirements.txt": "anyio==4.6.0\nidna==3.10\nsniffio==1.3.1\n"})
    first = lock.ensure(proj, proj.services[0])
    Wheelhouse().fetch(select(first), platform="linux/amd64", python="3.11")
    asked = _spy_on_the_index(monkeypatch)
    told: list[str] = []
    fresh = lock.ensure(proj, proj.services[0], fetching=lambda: told.append("fresh"))
    assert fresh.text == first.text and told == []  # a fresh lock asks nothing
    write_files(tmp_path, {"svc/requirements.txt": "anyio==4.6.0\nidna==3.9\nsniffio==1.3.1\n"})
    # no --relock needed: the pins decide
    bumped = lock.ensure(proj, proj.services[0], fetching=lambda: told.append("bumped"))
    assert asked == ["idna==3.9"]
    assert told == ["bumped"]  # the build is told before the index is asked
    assert {p.name: p.version for p in bumped.packages} == {
        "anyio": "4.6.0",
        "idna": "3.9",
        "sniffio": "1.3.1",
    }
    assert [p for p in bumped.packages if p.name != "idna"] == [
        p for p in first.packages if p.name != "idna"
    ]
    # the build installs it next, so the lock fetched the wheel itself, not its metadata file
    (idna,) = [a for a in select(bumped) if a.name == "idna"]
    assert Wheelhouse().path(idna.file).is_file()


@pytest.mark.integration
def test_a_bump_asked_early_is_locked_from_the_early_answers_and_its_wheel_handed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    pinned = "anyio==4.6.0\nidna=={}\nsniffio==1.3.1\n"
    projects = []
    for name in ("early", "asked-late"):
        proj = Project(tmp_path / name, None, (service("api"),))
        write_files(proj.root, {"svc/requirements.txt": pinned.format("3.10")})
        lock.ensure(proj, proj.services[0])
        write_files(proj.root, {"svc/requirements.txt": pinned.format("3.9")})
        projects.append(proj)
    early, late = projects

    session = lock.LockSession()
    session.ask_early(early, early.services, platform="linux/amd64")
    (question,) = session.asked_early()
    assert [p.name + "==" + p.version for p in question[1]] == ["idna==3.9"]
    asked = _spy_on_the_index(monkeypatch)
    landed: list[str] = []
    bumped = lock.ensure(
        early,
        early.services[0],
        landed=lambda sha, path: landed.append(path.name),
        session=session,
    )
    assert asked == [] and session.asked_early() == []  # the lock took the early answer
    assert landed == ["idna-3.9-py3-none-any.whl"]  # and the build still hears of the wheel
    # the same lock as one whose index requests were made by the lock itself
    assert _packages(bumped.path) == _packages(lock.ensure(late, late.services[0]).path)
    assert asked == ["idna==3.9"]


@pytest.mark.integration
def test_a_bump_that_breaks_a_dependency_falls_back_to_uv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    proj = Project(tmp_path, None, (service("api"),))
    write_files(tmp_path, {"svc/requirements.txt": "anyio==4.6.0\nidna==3.10\nsniffio==1.3.1\n"})
    lock.ensure(proj, proj.services[0])
    resolved: list[Path] = []
    real = lock.compile_lock

    def spy(root: Path, inputs: lock.LockInputs, dest: Path, **kw: bool) -> pylock.Lock:
        resolved.append(dest)
        return real(root, inputs, dest, **kw)

    monkeypatch.setattr(lock, "compile_lock", spy)
    # anyio 4.6 needs idna>=2.8: idna 2.5 violates it, so uv must decide (and refuses)
    write_files(tmp_path, {"svc/requirements.txt": "anyio==4.6.0\nidna==2.5\nsniffio==1.3.1\n"})
    from wheeldock.errors import CommandFailed

    with pytest.raises(CommandFailed, match="idna"):
        lock.lock_services(proj, proj.services)
    assert resolved == [pylock.lock_path(tmp_path, "api")]


@pytest.mark.integration
def test_missing_lock_is_created_by_ensure(tmp_path: Path) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "idna==3.10\n"})
    proj = Project(tmp_path, None, (service("api"),))
    made = lock.ensure(proj, proj.services[0])
    assert made.path.is_file() and made.input_hash is not None


# -- a uv project's uv.lock ----------------------------------------------------------------------


ADHOC = Path(__file__).parents[2] / "data" / "init" / "adhoc"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("folder", "tool"),
    [
        (
            "cart",
            (
                "--from",
                "poetry",
                "--with",
                "poetry-plugin-export",
                "poetry",
                "export",
                "--only",
                "main",
                "--without-hashes",
                "--format",
                "requirements.txt",
            ),
        ),
        ("desk", ("--from", "pipenv", "pipenv", "requirements")),
    ],
)
def test_the_pins_read_from_a_lock_are_the_ones_its_own_tool_exports(
    folder: str, tool: tuple[str, ...]
) -> None:
    out = process.run([lock.uv_bin(), "tool", "run", *tool], cwd=ADHOC / folder).stdout
    exported = {line.split(";")[0].strip().lower() for line in out.splitlines() if "==" in line}
    ours = {
        line.split(";")[0].strip().lower()
        for line in lock.locked_requirements(
            ADHOC / folder / ("poetry.lock" if folder == "cart" else "Pipfile.lock")
        )
    }
    assert ours == exported


# -- hash pins ------------------------------------------------------------------------------------


@pytest.mark.integration
def test_uv_locks_only_the_pinned_file_and_a_wrong_pin_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "idna==3.10\n"})
    proj = Project(tmp_path, None, (service("api"),))
    (result,) = lock.lock_services(proj, proj.services, fast=False)
    (locked,) = pylock.read(result.path).packages
    wheel = locked.wheels[0].sha256
    code, _ = lock_cli(tmp_path, f"idna==3.10 --hash=sha256:{wheel}\n", capsys)
    assert code == 0
    (locked,) = pylock.read(result.path).packages
    assert [w.sha256 for w in locked.wheels] == [wheel] and locked.sdist is None
    code, err = lock_cli(tmp_path, f"idna==3.10 --hash=sha256:{'f' * 64}\n", capsys)
    assert code == 1 and f"expected sha256:{'f' * 64}, got sha256:" in err
