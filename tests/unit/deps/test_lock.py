from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from support.projects import lock_cli, service, write_files

from wheeldock.deps import lock, pylock
from wheeldock.deps.index import Index
from wheeldock.edges import process
from wheeldock.errors import (
    CommandFailed,
    IndexUnreachable,
    InvalidConfig,
    NotFound,
    SdistNotBuildable,
    UsageError,
)
from wheeldock.project import Project

HASH = "a" * 64


def test_inputs_the_fast_path_cannot_lock_are_not_asked_early(tmp_path: Path) -> None:
    proj = Project(tmp_path, None, (service("api"),))
    write_files(tmp_path, {"svc/requirements.txt": "idna>=3\n"})  # a range: only uv can lock it
    session = lock.LockSession()
    session.ask_early(proj, proj.services, platform="linux/amd64")
    assert session.asked_early() == []


def test_a_service_with_missing_requirements_is_left_to_the_lock_to_report(tmp_path: Path) -> None:
    proj = Project(tmp_path, None, (service("api"),))  # svc/requirements.txt does not exist
    session = lock.LockSession()
    session.ask_early(proj, proj.services, platform="linux/amd64")
    assert session.asked_early() == []
    with pytest.raises(NotFound):
        lock.ensure(proj, proj.services[0], session=session)


def test_wheels_landing_before_the_build_takes_them_are_held_then_handed_over_in_order() -> None:
    relay = lock._Relay()
    relay("a" * 64, Path("first.whl"))
    relay("b" * 64, Path("second.whl"))
    got: list[str] = []
    relay.forward(lambda sha, path: got.append(path.name))
    assert got == ["first.whl", "second.whl"]
    relay("c" * 64, Path("third.whl"))  # once forwarded, a landing is passed on at once
    assert got == ["first.whl", "second.whl", "third.whl"]


# -- a kept index page: the wheel asked for beside the index ----------------------------------


def _demo_wheel(version: str, tag: str = "py3-none-any", requires: str = "") -> tuple[str, bytes]:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        metadata = f"Name: demo\nVersion: {version}\n" + "".join(
            f"Requires-Dist: {r}\n" for r in requires.split(",") if r
        )
        zf.writestr(f"demo-{version}.dist-info/METADATA", metadata)
    return f"demo-{version}-{tag}.whl", buffer.getvalue()


class _FakeIndex:
    """pypi.org's PEP 691 page for ``demo`` and files.pythonhosted.org's copies of its wheels,
    behind an httpx MockTransport. ``requests`` are the paths asked, in order. With ``hold``,
    the page is answered only once a wheel was asked for (or after 5 s): a build that asks for
    the wheel only after reading the page then waits out the 5 s."""

    def __init__(self, wheels: list[tuple[str, bytes]], *, hold: bool = False) -> None:
        import threading

        self.files = {name: data for name, data in wheels}
        self.requests: list[str] = []
        self.hold = hold
        self.wheel_asked = threading.Event()
        self.waited_out = False  # the held page was answered after 5 s, with no wheel asked

    def page(self) -> dict[str, Any]:
        return {
            "files": [
                {
                    "filename": name,
                    "url": f"https://files.pythonhosted.org/packages/{name}",
                    "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                    "size": len(data),
                }
                for name, data in self.files.items()
            ]
        }

    def client(self) -> Any:
        import httpx

        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request.url.path)
            if request.url.host == "pypi.org":
                if self.hold:
                    self.waited_out = not self.wheel_asked.wait(5)
                return httpx.Response(200, json=self.page())
            self.wheel_asked.set()
            return httpx.Response(200, content=self.files[request.url.path.rsplit("/", 1)[1]])

        return httpx.Client(transport=httpx.MockTransport(handler))


_DEMO_INPUTS = lock.LockInputs(("r.txt",), (("r.txt", "0" * 64),), "linux/amd64", "3.11")


def _fetch_demo(
    index: _FakeIndex, version: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[lock._Release, list[str]]:
    """The release of demo==version from ``index``, and the wheels ``landed`` was told of."""
    net = Index()
    monkeypatch.setattr(net, "client", index.client)
    told: list[str] = []
    (release,) = lock._fetch_releases(
        [lock._Pin("demo", version, frozenset())],
        _DEMO_INPUTS,
        net,
        wheels=True,
        landed=lambda sha, path: told.append(path.name),
    )
    return release, told


def test_with_the_page_kept_from_an_earlier_lock_the_wheel_is_asked_for_beside_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path))
    wheels = [_demo_wheel("1.0"), _demo_wheel("1.1")]
    first = _FakeIndex(wheels)
    _fetch_demo(first, "1.0", monkeypatch)
    # nothing kept yet: the page, then the wheel it names
    assert first.requests == ["/simple/demo/", "/packages/demo-1.0-py3-none-any.whl"]

    bump = _FakeIndex(wheels, hold=True)  # the page is answered only once the wheel is asked
    release, told = _fetch_demo(bump, "1.1", monkeypatch)
    assert not bump.waited_out  # the wheel was asked for while the page was still awaited
    assert sorted(bump.requests) == ["/packages/demo-1.1-py3-none-any.whl", "/simple/demo/"]
    assert release.best is not None and release.best.filename == "demo-1.1-py3-none-any.whl"
    assert release.best.sha256 == hashlib.sha256(wheels[1][1]).hexdigest()
    assert told == ["demo-1.1-py3-none-any.whl"]


def test_a_guess_the_fresh_page_disagrees_with_is_dropped_and_the_fresh_pages_file_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path))
    _fetch_demo(_FakeIndex([_demo_wheel("1.0"), _demo_wheel("1.1")]), "1.0", monkeypatch)
    # since the page was kept, 1.1's wheel was replaced by a build with a better tag
    better = _demo_wheel("1.1", "py311-none-any")
    now = _FakeIndex([_demo_wheel("1.0"), better])
    release, told = _fetch_demo(now, "1.1", monkeypatch)
    assert release.best is not None and release.best.filename == better[0]
    assert release.best.sha256 == hashlib.sha256(better[1]).hexdigest()
    assert better[0] in release.block and "py3-none-any" not in release.block
    assert told == [better[0]]  # the kept page's guess is never handed to the build
    assert f"/packages/{better[0]}" in now.requests


def test_a_wheel_the_lock_fetched_has_its_requirements_kept_beside_it_for_the_next_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path))
    name, data = _demo_wheel("1.0", requires="idna>=3,sniffio")
    release, _ = _fetch_demo(_FakeIndex([(name, data)]), "1.0", monkeypatch)
    assert release.requires_dist == ("idna>=3", "sniffio")
    (wheel,) = (tmp_path / "wheels").rglob(name)
    assert json.loads(wheel.with_name("requires-dist.json").read_text()) == ["idna>=3", "sniffio"]
    locked = pylock.LockedPackage(
        "demo", "1.0", (pylock.LockedFile(name, hashlib.sha256(data).hexdigest()),), None
    )
    assert lock._local_requires(locked) == ("idna>=3", "sniffio")


def test_a_torn_kept_page_is_no_guess_and_the_lock_is_made_as_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path))
    wheels = [_demo_wheel("1.0"), _demo_wheel("1.1")]
    _fetch_demo(_FakeIndex(wheels), "1.0", monkeypatch)
    lock._page_path("demo").write_bytes(b'{"files": [{"filena')  # cut short by a crash
    index = _FakeIndex(wheels)
    _, told = _fetch_demo(index, "1.1", monkeypatch)
    assert index.requests == ["/simple/demo/", "/packages/demo-1.1-py3-none-any.whl"]
    assert told == ["demo-1.1-py3-none-any.whl"]
    assert json.loads(lock._page_path("demo").read_bytes()) == index.page()  # kept anew


@pytest.mark.parametrize(
    "name",
    ["Django", "zope.interface", "ruamel.yaml", "typing_extensions", "A__b--c..D", "pydantic-core"],
)
def test_names_are_normalised_as_packaging_normalises_them(name: str) -> None:
    from packaging.utils import canonicalize_name

    assert lock._canonical_name(name) == canonicalize_name(name)


# -- inputs -------------------------------------------------------------------------------------


def test_inputs_follow_requirement_and_constraint_includes(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "svc/requirements.txt": "fastapi\n-r base.txt\n--constraint=pins/c.txt\n",
            "svc/base.txt": "pyyaml\n",
            "svc/pins/c.txt": "idna<4\n",
        },
    )
    inputs = lock.collect_inputs(
        tmp_path, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
    )
    assert [name for name, _ in inputs.files] == [
        "svc/requirements.txt",
        "svc/base.txt",
        "svc/pins/c.txt",
    ]


def test_missing_include_names_the_including_file_and_line(tmp_path: Path) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "fastapi\n\n-r gone.txt\n"})
    with pytest.raises(InvalidConfig, match=r"line 3: includes svc/gone\.txt") as err:
        lock.collect_inputs(
            tmp_path, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
        )
    assert err.value.path == tmp_path / "svc/requirements.txt"


def test_missing_requirement_file_points_at_wheeldock_toml(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"requirement file svc/requirements\.txt does not exist"):
        lock.collect_inputs(
            tmp_path, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
        )


def test_no_requirement_files_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="lists no requirement files"):
        lock.collect_inputs(tmp_path, [], platform="linux/amd64", python="3.11")


def test_input_digest_is_the_same_in_any_folder(tmp_path: Path) -> None:
    digests = []
    for folder in ("one", "two/deeper"):
        write_files(tmp_path / folder, {"svc/requirements.txt": "fastapi==1\n"})
        digests.append(
            lock.collect_inputs(
                tmp_path / folder, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
            ).digest
        )
    assert digests[0] == digests[1]


@pytest.mark.parametrize(
    ("change", "kwargs"),
    [
        ("content", {}),
        ("platform", {"platform": "linux/arm64"}),
        ("python", {"python": "3.12"}),
        ("no_binary", {"no_binary": ["pyyaml"]}),
    ],
)
def test_input_digest_changes_with_each_input(
    tmp_path: Path, change: str, kwargs: dict[str, object]
) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "fastapi==1\n"})
    args: dict[str, object] = {"platform": "linux/amd64", "python": "3.11"}
    before = lock.collect_inputs(tmp_path, ["svc/requirements.txt"], **args).digest  # type: ignore[arg-type]
    if change == "content":
        write_files(tmp_path, {"svc/requirements.txt": "fastapi==2\n"})
    after = lock.collect_inputs(tmp_path, ["svc/requirements.txt"], **{**args, **kwargs}).digest  # type: ignore[arg-type]
    assert before != after


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux/amd64", "x86_64-manylinux_2_36"),
        ("linux/arm64", "aarch64-manylinux_2_36"),
        ("linux/arm64/v8", "aarch64-manylinux_2_36"),
        ("linux/arm/v7", None),  # no uv target: resolved universally, then projected
    ],
)
def test_platforms_map_to_uv_targets(platform: str, expected: str | None) -> None:
    assert lock.uv_platform(platform) == expected


def test_a_platform_wheeldock_does_not_build_for_is_refused_with_the_accepted_ones(
    tmp_path: Path,
) -> None:
    with pytest.raises(UsageError, match="unknown platform 'linux/sparc'") as err:
        lock.uv_platform("linux/sparc")
    assert err.value.fix is not None and "linux/arm/v7" in err.value.fix
    write_files(tmp_path, {"svc/requirements.txt": "idna==3.10\n"})
    with pytest.raises(UsageError, match="linux/sparc"):
        lock.collect_inputs(
            tmp_path, ["svc/requirements.txt"], platform="linux/sparc", python="3.11"
        )


def test_armv7_inputs_are_accepted(tmp_path: Path) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "idna==3.10\n"})
    inputs = lock.collect_inputs(
        tmp_path, ["svc/requirements.txt"], platform="linux/arm/v7", python="3.11"
    )
    assert inputs.platform == "linux/arm/v7"
    assert lock.target_environment("linux/arm/v7", "3.11")["platform_machine"] == "armv7l"


def test_lock_paths_are_pep751_names(tmp_path: Path) -> None:
    assert pylock.lock_path(tmp_path, "srv.img").name == "pylock.srv-img.toml"
    assert pylock.lock_path(tmp_path, "api", "linux/arm64").name == "pylock.api-aarch64.toml"
    assert pylock.lock_path(tmp_path, "api", "linux/arm/v7").name == "pylock.api-armv7l.toml"


# -- parsing ------------------------------------------------------------------------------------

PYLOCK = f"""lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "fastapi"
version = "1.0"
sdist = {{ url = "https://example.invalid/fastapi-1.0.tar.gz", size = 10, hashes = {{ sha256 = "{"b" * 64}" }} }}
wheels = [{{ url = "https://example.invalid/fastapi-1.0-py3-none-any.whl", size = 20, hashes = {{ sha256 = "{HASH}" }} }}]

[[packages]]
name = "localpkg"
version = "0.1"
archive = {{ path = "../dist/localpkg-0.1.tar.gz", hashes = {{ sha256 = "{"c" * 64}" }} }}

[tool.wheeldock]
input-hash = "sha256:{"d" * 64}"
platform = "linux/amd64"
python = "3.11"
"""


def test_parse_reads_wheels_sdists_and_local_archives(tmp_path: Path) -> None:
    path = tmp_path / "wheeldock.lock" / "pylock.api.toml"
    parsed = pylock.parse(PYLOCK, path)
    fastapi, local = parsed.packages
    assert fastapi.wheels[0].filename == "fastapi-1.0-py3-none-any.whl"
    assert fastapi.wheels[0].size == 20 and fastapi.sdist is not None
    assert local.wheels == () and local.sdist is not None
    assert local.sdist.path == (tmp_path / "dist" / "localpkg-0.1.tar.gz").resolve()
    assert parsed.input_hash == f"sha256:{'d' * 64}"


def test_directory_requirements_cannot_be_hash_locked(tmp_path: Path) -> None:
    text = '[[packages]]\nname = "mine"\nversion = "1"\ndirectory = { path = "../mine" }\n'
    with pytest.raises(InvalidConfig, match="package mine is locked as directory"):
        pylock.parse(text, tmp_path / "pylock.x.toml")


def test_lock_digest_ignores_the_drift_table(tmp_path: Path) -> None:
    one = pylock.parse(PYLOCK, tmp_path / "pylock.a.toml")
    other = pylock.parse(PYLOCK.replace("d" * 64, "e" * 64), tmp_path / "pylock.a.toml")
    assert one.digest == other.digest


def test_status_tells_fresh_stale_and_missing(tmp_path: Path) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "fastapi\n"})
    inputs = lock.collect_inputs(
        tmp_path, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
    )
    path = pylock.lock_path(tmp_path, "api")
    assert lock.status(path, inputs) == "missing"
    write_files(
        tmp_path,
        {"wheeldock.lock/pylock.api.toml": PYLOCK.replace(f"sha256:{'d' * 64}", inputs.digest)},
    )
    assert lock.status(path, inputs) == "fresh"
    write_files(tmp_path, {"svc/requirements.txt": "fastapi\nidna\n"})
    changed = lock.collect_inputs(
        tmp_path, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
    )
    assert lock.status(path, changed) == "stale"


# -- a universal lock projected onto one platform -------------------------------------------------

DATA = Path(__file__).parents[2] / "data" / "lock"


def _file(filename: str) -> str:
    sha = hashlib.sha256(filename.encode()).hexdigest()
    return (
        f'{{ url = "https://files.example/{filename}", size = 1, hashes = {{ sha256 = "{sha}" }} }}'
    )


def _wheels(*filenames: str) -> str:
    return "wheels = [\n" + "".join(f"    {_file(f)},\n" for f in filenames) + "]"


UNIVERSAL = f"""# This file was autogenerated by uv via the following command:
#    wheeldock lock
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
{_wheels("colorama-0.4.6-py2.py3-none-any.whl")}

[[packages]]
name = "numpy"
version = "2.0.0"
marker = "python_full_version < '3.12'"
sdist = {_file("numpy-2.0.0.tar.gz")}
{
    _wheels(
        "numpy-2.0.0-cp311-cp311-macosx_11_0_arm64.whl",
        "numpy-2.0.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "numpy-2.0.0-cp311-cp311-manylinux_2_17_armv7l.manylinux2014_armv7l.whl",
        "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "numpy-2.0.0-cp311-cp311-manylinux_2_39_armv7l.whl",
        "numpy-2.0.0-cp311-cp311-musllinux_1_1_armv7l.whl",
        "numpy-2.0.0-cp312-cp312-manylinux_2_17_armv7l.manylinux2014_armv7l.whl",
        "numpy-2.0.0-cp311-cp311-win32.whl",
    )
}

[[packages]]
name = "numpy"
version = "2.3.0"
marker = "python_full_version >= '3.12'"
sdist = {_file("numpy-2.3.0.tar.gz")}
{_wheels("numpy-2.3.0-cp312-cp312-manylinux_2_17_armv7l.manylinux2014_armv7l.whl")}

[[packages]]
name = "pyyaml"
version = "6.0.2"
sdist = {_file("pyyaml-6.0.2.tar.gz")}
{
    _wheels(
        "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    )
}

[[packages]]
name = "uvloop"
version = "0.21.0"
marker = "platform_machine != 'armv7l' and sys_platform != 'win32'"
sdist = {_file("uvloop-0.21.0.tar.gz")}
{_wheels("uvloop-0.21.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")}
"""


def _projected(text: str = UNIVERSAL, platform: str = "linux/arm/v7") -> list[dict[str, Any]]:
    packages: list[dict[str, Any]] = tomllib.loads(lock.project_universal(text, platform, "3.11"))[
        "packages"
    ]
    return packages


def _names(files: list[dict[str, Any]]) -> list[str]:
    return [str(f["url"]).rsplit("/", 1)[1] for f in files]


def test_projection_keeps_the_packages_whose_marker_holds_on_the_platform() -> None:
    packages = _projected()
    assert [(p["name"], p["version"]) for p in packages] == [
        ("numpy", "2.0.0"),  # python_full_version < '3.12' holds for 3.11; 2.3.0 does not
        ("pyyaml", "6.0.2"),  # no marker
    ]  # colorama is Windows-only, uvloop is left out on armv7l by its marker
    assert all("marker" not in p for p in packages)


def test_projection_keeps_only_the_wheels_the_platform_installs_and_the_sdist() -> None:
    numpy = _projected()[0]
    # not aarch64/x86_64/macOS/Windows, not musl, not glibc 2.39 (bookworm has 2.36), not cp312
    assert _names(numpy["wheels"]) == [
        "numpy-2.0.0-cp311-cp311-manylinux_2_17_armv7l.manylinux2014_armv7l.whl"
    ]
    assert _names([numpy["sdist"]]) == ["numpy-2.0.0.tar.gz"]


def test_a_package_without_a_wheel_for_the_platform_keeps_only_its_sdist() -> None:
    pyyaml = _projected()[1]
    assert "wheels" not in pyyaml
    assert _names([pyyaml["sdist"]]) == ["pyyaml-6.0.2.tar.gz"]
    parsed = pylock.parse(lock.project_universal(UNIVERSAL, "linux/arm/v7", "3.11"), Path("l"))
    assert [(p.name, p.wheels, p.sdist is not None) for p in parsed.packages][1] == (
        "pyyaml",
        (),
        True,
    )


def test_the_same_universal_lock_projects_onto_each_platform() -> None:
    amd64 = _projected(platform="linux/amd64")
    assert [p["name"] for p in amd64] == ["numpy", "pyyaml", "uvloop"]
    assert all("x86_64" in n for p in amd64 for n in _names(p["wheels"]))


def test_projection_keeps_uv_header_and_says_what_was_projected() -> None:
    text = lock.project_universal(UNIVERSAL, "linux/arm/v7", "3.11")
    assert text.startswith(
        "# This file was autogenerated by uv via the following command:\n#    wheeldock lock\n"
        "# then projected onto linux/arm/v7 (platform_machine 'armv7l')"
    )
    assert tomllib.loads(text)["requires-python"] == ">=3.11"


@pytest.mark.parametrize(
    ("platform", "uv_lock"), [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")]
)
def test_projecting_onto_a_platform_uv_targets_gives_uv_own_lock_byte_for_byte(
    platform: str, uv_lock: str
) -> None:
    # tests/data/lock: `uv pip compile --universal` and `--python-platform …-manylinux_2_36` of
    # the same requirements (pydantic-core, idna, colorama on win32), Python 3.11
    universal = (DATA / "pylock.universal.toml").read_text()
    expected = (DATA / f"pylock.{uv_lock}.toml").read_text()
    projected = lock.project_universal(universal, platform, "3.11")
    assert projected.split("[[packages]]", 1)[1] == expected.split("[[packages]]", 1)[1]


def test_a_package_with_neither_a_wheel_nor_an_sdist_for_the_platform_is_refused() -> None:
    text = UNIVERSAL.replace(f"sdist = {_file('pyyaml-6.0.2.tar.gz')}\n", "")
    with pytest.raises(NotFound, match=r"pyyaml 6\.0\.2 has no wheel for linux/arm/v7") as err:
        lock.project_universal(text, "linux/arm/v7", "3.11", path=Path("pylock.api.toml"))
    assert err.value.path == Path("pylock.api.toml")
    assert err.value.fix is not None and "platform_machine != 'armv7l'" in err.value.fix


def test_two_versions_kept_for_one_platform_are_refused() -> None:
    text = UNIVERSAL.replace("python_full_version >= '3.12'", "sys_platform == 'linux'")
    with pytest.raises(InvalidConfig, match=r"numpy is locked twice for linux/arm/v7"):
        lock.project_universal(text, "linux/arm/v7", "3.11")


def test_a_platform_uv_has_no_target_for_is_resolved_universally_and_projected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "numpy\npyyaml\n"})
    inputs = lock.collect_inputs(
        tmp_path, ["svc/requirements.txt"], platform="linux/arm/v7", python="3.11"
    )
    dest = pylock.lock_path(tmp_path, "api", "linux/arm/v7")
    ran: list[list[str]] = []

    def fake_uv(argv: list[str], **kwargs: object) -> None:
        ran.append(argv)
        (tmp_path / argv[argv.index("--output-file") + 1]).write_text(UNIVERSAL)

    monkeypatch.setattr(process, "run", fake_uv)
    made = lock.compile_lock(tmp_path, inputs, dest)
    (argv,) = ran
    assert "--universal" in argv and "--python-platform" not in argv
    assert argv[argv.index("--python-version") + 1] == "3.11"
    assert [(p.name, p.version) for p in made.packages] == [("numpy", "2.0.0"), ("pyyaml", "6.0.2")]
    assert lock.status(dest, inputs) == "fresh"
    assert made.platform == "linux/arm/v7"


# -- the fast path --------------------------------------------------------------------------------


def _inputs(root: Path, text: str) -> lock.LockInputs:
    write_files(root, {"svc/requirements.txt": text})
    return lock.collect_inputs(
        root, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
    )


def test_pins_are_read_with_markers_for_the_target(tmp_path: Path) -> None:
    inputs = _inputs(
        tmp_path,
        "# comment\nIDNA==3.10  # via x\nuvicorn[standard]==0.30.0\n"
        "colorama==0.4.6 ; sys_platform == 'win32'\nuvloop==0.21.0 ; sys_platform == 'linux'\n",
    )
    pins = lock.pinned_requirements(tmp_path, inputs)
    assert {n: (p.version, sorted(p.extras)) for n, p in pins.items()} == {
        "idna": ("3.10", []),
        "uvicorn": ("0.30.0", ["standard"]),
        "uvloop": ("0.21.0", []),
    }


def test_pins_of_a_utf16_requirements_file_are_read_as_pip_reads_them(tmp_path: Path) -> None:
    # Matheus-Matta/mxrouter-tms-app (2026-12): a pip freeze saved by PowerShell, UTF-16 with
    # its byte order mark, which init read and lock refused as "not UTF-8"
    inputs = _inputs(tmp_path, "")
    (tmp_path / "svc/requirements.txt").write_bytes(
        "amqp==5.3.1\r\nDjango==5.2\r\n".encode("utf-16")
    )
    pins = lock.pinned_requirements(tmp_path, inputs)
    assert {n: p.version for n, p in pins.items()} == {"amqp": "5.3.1", "django": "5.2"}


@pytest.mark.parametrize(
    "text",
    [
        "idna>=3.9\n",
        "idna==3.*\n",
        "idna\n",
        "--index-url https://example.org/simple\nidna==3.10\n",
        "idna==3.10 --hash=sha256:" + "a" * 64 + "\n",
        "idna @ https://example.org/idna-3.10-py3-none-any.whl\n",
    ],
    ids=["range", "wildcard", "bare", "option", "hashes", "url"],
)
def test_anything_but_plain_pins_goes_to_the_resolver(tmp_path: Path, text: str) -> None:
    with pytest.raises(lock.NotFastLockable):
        lock.pinned_requirements(tmp_path, _inputs(tmp_path, text))


def _pins(**versions: str) -> dict[str, lock._Pin]:
    return {n: lock._Pin(n, v, frozenset()) for n, v in versions.items()}


ENV = lock.target_environment("linux/amd64", "3.11")


def test_a_closed_pin_set_is_accepted_with_markers_and_extras() -> None:
    pins = _pins(a="1.0", b="2.0", c="1.5")
    pins["a"] = lock._Pin("a", "1.0", frozenset({"fast"}))
    requires = {
        "a": (
            "b>=2",
            "win ; sys_platform == 'win32'",
            "c[x] ; extra == 'fast'",
            "d ; extra == 'slow'",
        ),
        "b": (),
        "c": ("b<3 ; extra == 'x'",),
    }
    lock._check_closed(pins, requires, ENV)


@pytest.mark.parametrize(
    ("requires", "why"),
    [
        ({"a": ("b>=3",)}, "but b==2.0 is pinned"),
        ({"a": ("missing>=1",)}, "which is not pinned"),
        ({"a": ("c[x]",), "c": ("missing ; extra == 'x'",)}, "which is not pinned"),
    ],
    ids=["version", "absent", "extra-brings-absent"],
)
def test_a_violated_or_open_dependency_is_not_fast_lockable(
    requires: dict[str, tuple[str, ...]], why: str
) -> None:
    pins = _pins(a="1.0", b="2.0", c="1.0")
    with pytest.raises(lock.NotFastLockable, match=why):
        lock._check_closed(pins, {"b": (), "c": (), **requires}, ENV)


def _index_file(filename: str, **extra: object) -> dict[str, object]:
    return {
        "filename": filename,
        "url": f"https://files.pythonhosted.org/packages/ab/{filename}",
        "hashes": {"sha256": HASH},
        "size": 10,
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "asks_metadata"),
    [
        ({"core-metadata": {"sha256": HASH}}, True),
        ({"data-dist-info-metadata": True}, True),
        ({}, False),
        ({"core-metadata": False}, False),
    ],
    ids=["pep714", "pep658-old-key", "none", "false"],
)
def test_the_metadata_file_is_asked_for_only_when_the_index_serves_it(
    extra: dict[str, object], asks_metadata: bool
) -> None:
    wheel = "idna-3.9-py3-none-any.whl"
    index = {"files": [_index_file(wheel, **extra), _index_file("idna-3.9.tar.gz")]}
    inputs = lock.LockInputs(("r.txt",), (), "linux/amd64", "3.11")
    release = lock._release_files(lock._Pin("idna", "3.9", frozenset()), index, inputs)
    assert release.best is not None and release.best.filename == wheel
    expected = f"https://files.pythonhosted.org/packages/ab/{wheel}.metadata"
    assert release.metadata_url == (expected if asks_metadata else "")


def test_a_releases_files_are_those_whose_names_spell_its_version_in_any_form() -> None:
    names = [
        "demo-1.0-py3-none-any.whl",
        "demo-1.0.0-py2.py3-none-any.whl",  # the same version, spelt longer
        "demo-1.0-1-py3-none-manylinux_2_17_x86_64.whl",  # with a build tag
        "demo-1.0.tar.gz",
        "demo-1.01-py3-none-any.whl",  # 1.1
        "demo-10-py3-none-any.whl",
        "demo-2.0-py3-none-any.whl",
        "demo-2.0.tar.gz",
        "demo.whl",  # not a wheel's name
        "demo-1.0-py3-none-any-extra-parts.whl",
    ]
    index = {"files": [_index_file(n) for n in names]}
    inputs = lock.LockInputs(("r.txt",), (), "linux/amd64", "3.11")
    release = lock._release_files(lock._Pin("demo", "1.0", frozenset()), index, inputs)
    listed = {n for n in names if f'/{n}"' in release.block}
    assert listed == set(names[:4])


def test_lock_check_exits_non_zero_on_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wheeldock import cli, project

    write_files(tmp_path, {"svc/requirements.txt": "fastapi\n"})
    project.save(Project(tmp_path, None, (service("api"),)))
    inputs = lock.collect_inputs(
        tmp_path, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
    )
    write_files(
        tmp_path,
        {"wheeldock.lock/pylock.api.toml": PYLOCK.replace(f"sha256:{'d' * 64}", inputs.digest)},
    )
    assert cli.main(["-C", str(tmp_path), "lock", "--check", "--json"]) == 0
    write_files(tmp_path, {"svc/requirements.txt": "fastapi\nidna\n"})
    capsys.readouterr()
    assert cli.main(["-C", str(tmp_path), "lock", "--check", "--json"]) == 1
    assert '"status": "stale"' in capsys.readouterr().out


def _cached_wheel(cache: Path, metadata: str) -> pylock.LockedPackage:
    """A wheel in the wheelhouse cache's content-addressed place, holding ``metadata``."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("demo-1.0.dist-info/METADATA", metadata)
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    name = "demo-1.0-py3-none-any.whl"
    folder = cache / "wheels" / "sha256" / sha[:2] / sha
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    return pylock.LockedPackage("demo", "1.0", (pylock.LockedFile(name, sha),), None)


def test_a_cached_wheels_requirements_are_read_once_and_kept_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path))
    pkg = _cached_wheel(
        tmp_path, "Metadata-Version: 2.1\nName: demo\nRequires-Dist: idna>=3\nRequires-Dist: b\n"
    )
    assert lock._local_requires(pkg) == ("idna>=3", "b")
    wheel = next((tmp_path / "wheels").rglob("*.whl"))
    sidecar = wheel.with_name("requires-dist.json")
    assert sidecar.read_text() == '["idna>=3", "b"]'
    # the next read comes from the sidecar, not from the zip
    sidecar.write_text('["kept"]')
    assert lock._local_requires(pkg) == ("kept",)
    # a sidecar without its wheel is not trusted: the wheel is what the build installs
    wheel.unlink()
    assert lock._local_requires(pkg) is None
    # an unreadable sidecar is rewritten from the wheel
    pkg = _cached_wheel(tmp_path, "Metadata-Version: 2.1\nName: demo\nRequires-Dist: c\n")
    next(p for p in (tmp_path / "wheels").rglob("*.whl")).with_name(
        "requires-dist.json"
    ).write_text("{not json")
    assert lock._local_requires(pkg) == ("c",)


@pytest.mark.parametrize(
    "line",
    [
        "idna==3.10",
        "Pillow==13.0.0",
        "uvicorn[standard]==0.54.0",
        "uvicorn[standard, http2]==0.54.0",
        "zope.interface==7.2",
        "pkg_name == 1.0.post1",
        "torch==2.5.1+cpu",
        "a==1.0rc1",
    ],
)
def test_a_plain_pin_is_read_as_packaging_reads_it(line: str) -> None:
    from packaging.requirements import Requirement

    req = Requirement(line)
    (spec,) = req.specifier
    assert lock._plain_pin(line) == (req.name, frozenset(req.extras), spec.version)


@pytest.mark.parametrize(
    "line",
    [
        "idna==3.*",
        "idna>=3.10",
        "idna==3.10; python_version < '3.8'",
        "idna==3.10,!=3.11",
        "idna @ https://example.org/idna.whl",
        "idna==not-a-version",
        "idna===3.10",
    ],
)
def test_anything_else_is_left_to_packagings_parser(line: str) -> None:
    assert lock._plain_pin(line) is None


# -- a uv project's uv.lock ----------------------------------------------------------------------

SHOP = Path(__file__).parents[2] / "data" / "init" / "adhoc" / "shop"


def _uv_project(root: Path) -> lock.LockInputs:
    write_files(root, {f"svc/{n}": (SHOP / n).read_text() for n in ("pyproject.toml", "uv.lock")})
    return lock.collect_inputs(root, ["svc/uv.lock"], platform="linux/amd64", python="3.11")


def test_a_uv_lock_gives_the_pins_uv_sync_no_dev_installs(tmp_path: Path) -> None:
    inputs = _uv_project(tmp_path)
    # uv reads the pyproject.toml with the lock: a change to either makes the lock stale
    assert [name for name, _ in inputs.files] == ["svc/uv.lock", "svc/pyproject.toml"]
    pins = lock.pinned_requirements(tmp_path, inputs)
    locked = tomllib.loads((SHOP / "uv.lock").read_text())["package"]
    runtime = {"anyio", "click", "h11", "idna", "starlette", "typing-extensions", "uvicorn"}
    assert {n: p.version for n, p in pins.items()} == {
        p["name"]: p["version"] for p in locked if p["name"] in runtime
    }
    assert "pytest" in {p["name"] for p in locked}  # in the lock, in the dev group only


def test_a_uv_lock_beside_other_requirement_files_is_refused_naming_the_fix(
    tmp_path: Path,
) -> None:
    _uv_project(tmp_path)
    write_files(tmp_path, {"svc/requirements.txt": "six\n"})
    with pytest.raises(InvalidConfig, match="listed with other requirement") as err:
        lock.collect_inputs(
            tmp_path,
            ["svc/uv.lock", "svc/requirements.txt"],
            platform="linux/amd64",
            python="3.11",
        )
    assert err.value.fix is not None and "uv add" in err.value.fix


def test_a_uv_lock_without_its_pyproject_is_refused(tmp_path: Path) -> None:
    inputs = _uv_project(tmp_path)
    (tmp_path / "svc" / "pyproject.toml").unlink()
    with pytest.raises(InvalidConfig, match=r"no pyproject\.toml beside it") as err:
        lock.pinned_requirements(tmp_path, inputs)
    assert err.value.path == tmp_path / "svc" / "uv.lock"


def test_a_uv_lock_that_installs_a_local_package_is_refused(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "svc/pyproject.toml": '[project]\nname = "svc"\nversion = "1"\n'
            'requires-python = ">=3.11"\ndependencies = ["helper"]\n'
            '[tool.uv.sources]\nhelper = { path = "helper" }\n',
            "svc/helper/pyproject.toml": '[project]\nname = "helper"\nversion = "1"\n'
            '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n',
        },
    )
    process.run([lock.uv_bin(), "lock", "--offline", "--quiet"], cwd=tmp_path / "svc")
    inputs = lock.collect_inputs(tmp_path, ["svc/uv.lock"], platform="linux/amd64", python="3.11")
    with pytest.raises(
        InvalidConfig, match=r"installs packages from a path or URL \(\./helper\)"
    ) as err:
        lock.pinned_requirements(tmp_path, inputs)
    assert err.value.fix is not None and "publish the package" in err.value.fix


ADHOC = Path(__file__).parents[2] / "data" / "init" / "adhoc"


def _project(root: Path, folder: str, names: tuple[str, ...], lock_name: str) -> lock.LockInputs:
    write_files(root, {f"svc/{n}": (ADHOC / folder / n).read_text() for n in names})
    return lock.collect_inputs(root, [f"svc/{lock_name}"], platform="linux/amd64", python="3.11")


@pytest.mark.parametrize(
    ("folder", "names", "lock_name"),
    [
        ("cart", ("pyproject.toml", "poetry.lock"), "poetry.lock"),
        ("desk", ("Pipfile", "Pipfile.lock"), "Pipfile.lock"),
    ],
)
def test_poetry_and_pipenv_locks_give_their_runtime_packages_pinned(
    tmp_path: Path, folder: str, names: tuple[str, ...], lock_name: str
) -> None:
    inputs = _project(tmp_path, folder, names, lock_name)
    assert sorted(name for name, _ in inputs.files) == sorted(f"svc/{n}" for n in names)
    pins = lock.pinned_requirements(tmp_path, inputs)
    # the same packages uv's lock of the same dependencies gives, none of the dev ones
    by_uv = lock.pinned_requirements(tmp_path / "uv", _uv_project(tmp_path / "uv"))
    assert set(pins) == set(by_uv) and "pytest" not in pins


def test_a_lock_poetry_1_wrote_gives_its_main_group_for_the_target(tmp_path: Path) -> None:
    folder = Path(__file__).parents[2] / "data" / "poetry" / "poetry-1.8"
    write_files(
        tmp_path, {f"svc/{n}": (folder / n).read_text() for n in ("pyproject.toml", "poetry.lock")}
    )
    inputs = lock.collect_inputs(
        tmp_path, ["svc/poetry.lock"], platform="linux/amd64", python="3.11"
    )
    pins = lock.pinned_requirements(tmp_path, inputs)
    names = {pin.split("==")[0] for pin in pins}
    assert "httpx" in names and "h2" in names  # an extra asked for in pyproject.toml
    assert not names & {"pytest", "colorama", "exceptiongroup"}  # dev; Windows; Python < 3.11


# -- hash pins ------------------------------------------------------------------------------------

IDNA_WHEEL, IDNA_SDIST = "1" * 64, "2" * 64
IDNA_LOCK = f"""lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "idna"
version = "3.10"
sdist = {{ url = "https://files.pythonhosted.org/idna-3.10.tar.gz", size = 10, hashes = {{ sha256 = "{IDNA_SDIST}" }} }}
wheels = [{{ url = "https://files.pythonhosted.org/idna-3.10-py3-none-any.whl", size = 20, hashes = {{ sha256 = "{IDNA_WHEEL}" }} }}]
"""


@pytest.fixture
def uv_locks_idna(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """uv's compile stands in by a lock of idna 3.10 (PyPI's hashes, as uv writes them)."""

    def fake_uv(argv: list[str], **kwargs: object) -> None:
        (tmp_path / argv[argv.index("--output-file") + 1]).write_text(IDNA_LOCK)

    monkeypatch.setattr(process, "run", fake_uv)


@pytest.mark.usefixtures("uv_locks_idna")
def test_a_hash_pin_no_file_of_the_package_has_fails_the_lock_naming_both_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = lock_cli(tmp_path, f"idna==3.10 --hash=sha256:{'f' * 64}\n", capsys)
    assert code == 1
    assert "package idna 3.10: no file of it has a pinned hash (svc/requirements.txt:1)" in err
    assert f"expected sha256:{'f' * 64}" in err
    assert f"got sha256:{IDNA_WHEEL} or sha256:{IDNA_SDIST}" in err
    assert not pylock.lock_path(tmp_path, "api").exists()


@pytest.mark.usefixtures("uv_locks_idna")
def test_a_lock_keeps_only_the_files_whose_hash_is_pinned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requirements = (
        f"idna==3.10 \\\n    --hash=sha256:{'f' * 64} \\\n    --hash=sha256:{IDNA_WHEEL}\n"
    )
    code, _ = lock_cli(tmp_path, requirements, capsys)
    assert code == 0
    (pkg,) = pylock.read(pylock.lock_path(tmp_path, "api")).packages
    assert [w.sha256 for w in pkg.wheels] == [IDNA_WHEEL] and pkg.sdist is None


@pytest.mark.usefixtures("uv_locks_idna")
@pytest.mark.parametrize(
    ("requirements", "turned_on"),
    [
        ("--require-hashes\nidna==3.10\n", "svc/requirements.txt:1"),
        (f"certifi==2024.8.30 --hash=sha256:{'c' * 64}\nidna==3.10\n", "svc/requirements.txt:1"),
    ],
)
def test_in_hash_checking_mode_a_package_without_a_pin_fails_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], requirements: str, turned_on: str
) -> None:
    code, err = lock_cli(tmp_path, requirements, capsys)
    assert code == 1
    assert "package idna 3.10 has no hash pin, and hashes are required" in err
    assert f"turned on at {turned_on}" in err


def test_a_hash_other_than_sha256_is_refused_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = lock_cli(tmp_path, f"idna==3.10\nsix==1 --hash=sha512:{'a' * 128}\n", capsys)
    assert code == 1
    assert f"line 2: --hash=sha512:{'a' * 128} is not a sha256 hash" in err


def test_a_fresh_lock_written_before_the_pins_were_honoured_is_narrowed_to_them(
    tmp_path: Path,
) -> None:
    write_files(tmp_path, {"svc/requirements.txt": f"idna==3.10 --hash=sha256:{IDNA_SDIST}\n"})
    proj = Project(tmp_path, None, (service("api"),))
    inputs = lock.inputs_for(tmp_path, proj.services[0], "linux/amd64")
    dest = pylock.lock_path(tmp_path, "api")
    table = f'\n[tool.wheeldock]\ninput-hash = "{inputs.digest}"\n'
    write_files(tmp_path, {"wheeldock.lock/pylock.api.toml": IDNA_LOCK + table})
    (pkg,) = lock.ensure(proj, proj.services[0]).packages
    assert pkg.wheels == () and pkg.sdist is not None and pkg.sdist.sha256 == IDNA_SDIST
    assert lock.status(dest, inputs) == "fresh" and IDNA_WHEEL not in dest.read_text()


@pytest.mark.parametrize(
    ("folder", "names", "lock_name"),
    [
        ("cart", ("pyproject.toml", "poetry.lock"), "poetry.lock"),
        ("desk", ("Pipfile", "Pipfile.lock"), "Pipfile.lock"),
        ("shop", ("pyproject.toml", "uv.lock"), "uv.lock"),
    ],
)
def test_a_project_locks_hashes_are_its_packages_pins(
    tmp_path: Path, folder: str, names: tuple[str, ...], lock_name: str
) -> None:
    from wheeldock.deps.requirements import hash_pins

    inputs = _project(tmp_path, folder, names, lock_name)
    pins = hash_pins(tmp_path, [name for name, _ in inputs.files])
    assert pins.required is None  # the lock's own tool checks what it records, no more
    assert set(lock.pinned_requirements(tmp_path, inputs)) <= set(pins.pins)
    text = (ADHOC / folder / lock_name).read_text()
    for pin in pins.pins.values():
        assert pin.hashes and all(h.removeprefix("sha256:") in text for h in pin.hashes)


def _closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then closed again)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _pinned_project(root: Path, text: str) -> None:
    from wheeldock import project

    write_files(root, {"svc/requirements.txt": text})
    project.save(Project(root, None, (service("api"),)))


def test_an_unreachable_index_is_reported_as_such_by_lock_not_as_unpinned_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wheeldock import cli

    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    index = f"http://127.0.0.1:{_closed_port()}/simple/"
    monkeypatch.setattr(lock, "PYPI_SIMPLE", index + "{name}/")
    monkeypatch.setattr(lock, "compile_lock", _no_uv)
    _pinned_project(tmp_path / "p", "idna==3.10\n")
    assert cli.main(["-C", str(tmp_path / "p"), "lock"]) == 1
    err = capsys.readouterr().err
    assert "the package index could not be reached" in err and f"{index}idna/" in err
    assert "SSL_CERT_FILE" in err and "UV_INDEX_URL" in err
    assert "pinned with ==" not in err and "Traceback" not in err


def _no_uv(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("uv must not be asked when the fast path could not reach the index")


def test_a_stale_pinned_lock_whose_index_is_unreachable_says_so_in_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    index = f"http://127.0.0.1:{_closed_port()}/simple/"
    monkeypatch.setattr(lock, "PYPI_SIMPLE", index + "{name}/")
    write_files(
        tmp_path, {"wheeldock.lock/pylock.api.toml": PYLOCK, "svc/requirements.txt": "idna==3.10\n"}
    )
    proj = Project(tmp_path, None, (service("api"),))
    assert (
        lock.status(
            pylock.lock_path(tmp_path, "api"),
            lock.inputs_for(tmp_path, proj.services[0], "linux/amd64"),
        )
        == "stale"
    )
    with pytest.raises(IndexUnreachable) as caught:
        lock.ensure(proj, proj.services[0])
    assert caught.value.url == f"{index}idna/" and "refused" in caught.value.reason.lower()


def test_with_uv_pointed_at_another_index_an_unreachable_pypi_leaves_the_lock_to_uv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(lock, "PYPI_SIMPLE", f"http://127.0.0.1:{_closed_port()}/simple/{{name}}/")
    monkeypatch.setenv("UV_DEFAULT_INDEX", f"http://127.0.0.1:{_closed_port()}/simple")
    resolved: list[Path] = []

    def fake_uv(root: Path, inputs: lock.LockInputs, dest: Path, **kwargs: Any) -> Any:
        resolved.append(dest)
        return pylock.parse(PYLOCK, dest)

    monkeypatch.setattr(lock, "compile_lock", fake_uv)
    _pinned_project(tmp_path, "idna==3.10\n")
    proj = Project(tmp_path, None, (service("api"),))
    lock.lock_services(proj, proj.services)
    assert resolved == [pylock.lock_path(tmp_path, "api")]


def test_uv_failing_to_reach_its_index_is_reported_with_the_url_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wheeldock import cli

    index = f"http://127.0.0.1:{_closed_port()}/simple"
    monkeypatch.setenv("UV_DEFAULT_INDEX", index)
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    _pinned_project(tmp_path / "p", "idna>=3\n")  # a range: uv resolves it
    assert cli.main(["-C", str(tmp_path / "p"), "lock"]) == 1
    err = capsys.readouterr().err
    assert "the package index could not be reached" in err and f"{index}/idna/" in err
    assert "Connection refused" in err and "SSL_CERT_FILE" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            "error: Failed to fetch: https://mirror.example/simple/idna/\n"
            "  Caused by: error sending request for url (https://mirror.example/simple/idna/)\n"
            "  Caused by: client error (Connect)\n"
            "  Caused by: dns error\n"
            "  Caused by: failed to lookup address information: Name or service not known\n",
            (
                "https://mirror.example/simple/idna/",
                "failed to lookup address information: Name or service not known",
            ),
        ),
        (
            "error: Request failed after 3 retries\n"
            "  cause: Failed to fetch: https://pypi.org/simple/idna/\n"
            "  cause: error sending request for url (https://pypi.org/simple/idna/)\n"
            "  cause: client error (Connect)\n"
            "  cause: invalid peer certificate: UnknownIssuer\n",
            ("https://pypi.org/simple/idna/", "invalid peer certificate: UnknownIssuer"),
        ),
        ("error: No solution found when resolving dependencies:\n  idna>=99 ...\n", None),
    ],
)
def test_uvs_failures_to_reach_an_index_are_told_from_other_failures(
    stderr: str, expected: tuple[str, str] | None
) -> None:
    from wheeldock.errors import CommandFailed

    found = lock._unreachable_index(CommandFailed(["uv", "pip", "compile"], 2, stderr=stderr))
    assert (None if found is None else (found.url, found.reason)) == expected


#: What uv prints when the metadata of a package without a wheel cannot be built here
#: (pycurl, a dependency of celery[sqs] in chaidosk/fastapi_async_celery's poetry.lock).
UV_BUILD_FAILED = """\
  × Failed to build `pycurl==7.45.2`
  ├─▶ The build backend returned an error
  ╰─▶ Call to `setuptools.build_meta:__legacy__.get_requires_for_build_wheel` failed (exit status: 1)

      [stderr]
      Traceback (most recent call last):
        File "<string>", line 234, in configure_unix
      ConfigurationError: Could not run curl-config: [Errno 2] No such file or directory: 'curl-config'

      hint: Build failures usually indicate a problem with the package or the build environment
"""


def test_a_package_uv_cannot_build_here_to_read_it_is_not_called_a_wrong_requirement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "pycurl>=7.43\n"})
    inputs = lock.collect_inputs(
        tmp_path, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
    )

    def fake_uv(argv: list[str], **kwargs: object) -> None:
        raise CommandFailed(argv, 1, stderr=UV_BUILD_FAILED, fix="correct the requirement")

    monkeypatch.setattr(process, "run", fake_uv)
    with pytest.raises(SdistNotBuildable) as caught:
        lock.compile_lock(tmp_path, inputs, pylock.lock_path(tmp_path, "api", "linux/amd64"))
    assert str(caught.value).startswith(
        "pycurl==7.45.2 has no wheel for linux/amd64: uv builds its source distribution on this "
        "machine to read its dependencies, and the build failed (ConfigurationError: Could not "
        "run curl-config"
    )
    assert caught.value.fix is not None and "install what that build needs" in caught.value.fix


#: uv's answer for fastapi/full-stack-fastapi-template's uv.lock (Python 3.14) asked for 3.11.
UV_PYTHON_TOO_OLD = """\
  × No solution found when resolving dependencies:
  ╰─▶ Because the requested Python version (>=3.11) does not satisfy Python>=3.12 and
      puremagic==2.2.0 depends on Python>=3.12, we can conclude that puremagic==2.2.0 cannot be used.

      hint: The `--python-version` value (>=3.11) includes Python versions that are not supported by your dependencies (e.g., puremagic==2.2.0 only supports >=3.12). Consider using a higher `--python-version` value.
"""


def test_requirements_that_need_a_newer_python_name_the_services_python_not_a_requirement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(tmp_path, {"svc/requirements.txt": "puremagic==2.2.0\n"})
    inputs = lock.collect_inputs(
        tmp_path, ["svc/requirements.txt"], platform="linux/amd64", python="3.11"
    )

    def fake_uv(argv: list[str], **kwargs: object) -> None:
        raise CommandFailed(argv, 1, stderr=UV_PYTHON_TOO_OLD, fix="correct the requirement")

    monkeypatch.setattr(process, "run", fake_uv)
    with pytest.raises(InvalidConfig) as caught:
        lock.compile_lock(tmp_path, inputs, pylock.lock_path(tmp_path, "api", "linux/amd64"))
    assert caught.value.what == (
        "the requirements need a newer Python than the service's 3.11 "
        "(puremagic==2.2.0 only supports >=3.12)"
    )
    assert caught.value.path == tmp_path / "wheeldock.toml"
    assert caught.value.fix is not None and "set the service's `python`" in caught.value.fix
