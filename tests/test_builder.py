from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from conftest_build import CbtBuild, cache_at, make_cbt_project, make_wheel, new_cache
from conftest_libs import make_elf

from wheeldock import project
from wheeldock.build import builder, install
from wheeldock.build.builder import BuildOptions, app_entries, app_key, plan_dependencies
from wheeldock.debian import archive as debian
from wheeldock.debian import bases
from wheeldock.deps import pylock
from wheeldock.deps.pylock import LockedFile
from wheeldock.deps.wheelhouse import Artifact, select
from wheeldock.edges import engine
from wheeldock.errors import InvalidConfig, LibraryNotFound, UsageError
from wheeldock.oci import layout
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import Image, ImageConfig, Platform
from wheeldock.oci.layer import Layer, TarEntry, build_layer
from wheeldock.project import Project, Service

SCHEME = install.debian_scheme()


def _art(name: str, size: int, sha: str = "") -> Artifact:
    sha = sha or (name.encode().hex() * 64)[:64]
    return Artifact(name, "1", LockedFile(f"{name}-1-py3-none-any.whl", sha, size=size), "wheel")


def _plan(arts: list[Artifact], max_layers: int = 8) -> dict[str, str]:
    plans = plan_dependencies(
        arts, scheme=SCHEME, compression="gzip", compiler="cp", max_layers=max_layers
    )
    return {p.title: p.key for p in plans}


# -- dependency layers (pure) -------------------------------------------------------------------


def test_each_distribution_gets_a_layer_of_its_own_largest_lowest() -> None:
    arts = [
        _art("h11", 37_000),
        _art("idna", 70_000),
        _art("uvloop", 4 << 20),
        _art("pillow", 8 << 20),
        _art("anyio", 70_000),
    ]
    # a changed layer makes the engine take every layer above it again: big ones go below
    assert list(_plan(arts)) == ["pillow 1", "uvloop 1", "anyio 1", "idna 1", "h11 1"]


def test_small_wheels_share_the_top_layer() -> None:
    arts = [
        _art("pillow", 8 << 20),
        _art("h11", 37_000),
        _art("annotated-doc", 5_000),
        _art("idna", 70_000),
        _art("typing-extensions", 44_000),
    ]
    # each layer costs a tar end marker, a manifest entry and an unpack step: not worth it
    # below builder.SMALL_WHEEL, and the smallest sit on top, re-sent by any bump below them
    assert list(_plan(arts)) == ["pillow 1", "idna 1", "3 packages"]


def test_a_bump_of_a_small_wheel_changes_only_the_shared_layer_key() -> None:
    arts = [_art("idna", 70_000), _art("h11", 37_000), _art("annotated-doc", 5_000)]
    bumped = [arts[0], _art("h11", 38_000, sha="e" * 64), arts[2]]
    before, after = _plan(arts), _plan(bumped)
    assert [title for title in before if before[title] != after[title]] == ["2 packages"]


def test_past_the_limit_the_smallest_share_the_last_layer() -> None:
    arts = [_art(f"big{i}", (10 + i) << 20) for i in range(12)] + [_art("small", 10)]
    plans = _plan(arts, max_layers=4)
    # the three largest alone, the 9 smaller big ones and the small one together
    assert list(plans) == ["big11 1", "big10 1", "big9 1", "10 packages"]


def test_a_pin_bump_changes_only_its_own_layer_key() -> None:
    arts = [_art("pillow", 8 << 20), _art("idna", 70_000), _art("h11", 37_000)]
    bumped = [arts[0], _art("idna", 71_000, sha="f" * 64), arts[2]]
    before, after = _plan(arts), _plan(bumped)
    assert [title for title in before if before[title] != after[title]] == ["idna 1"]


def test_a_bump_past_the_limit_changes_only_the_shared_layer_key() -> None:
    arts = [_art("pillow", 8 << 20), _art("idna", 70_000), _art("h11", 37_000)]
    bumped = [arts[0], _art("idna", 71_000, sha="f" * 64), arts[2]]
    before, after = _plan(arts, max_layers=2), _plan(bumped, max_layers=2)
    assert before["pillow 1"] == after["pillow 1"]
    assert before["2 packages"] != after["2 packages"]


def test_layer_keys_depend_on_compression_and_compiler() -> None:
    arts = [_art("idna", 70_000)]
    base = plan_dependencies(arts, scheme=SCHEME, compression="gzip", compiler="a")[0].key
    assert plan_dependencies(arts, scheme=SCHEME, compression="zstd", compiler="a")[0].key != base
    assert plan_dependencies(arts, scheme=SCHEME, compression="gzip", compiler="b")[0].key != base


def test_layer_keys_depend_on_the_bytecode_mode() -> None:
    arts = [_art("idna", 70_000)]
    keys = {
        plan_dependencies(
            arts,
            scheme=dataclasses.replace(SCHEME, bytecode=mode),
            compression="gzip",
            compiler="a",
        )[0].key
        for mode in ("full", "none")
    }
    assert len(keys) == 2


# -- the app layer ------------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_app_entries_follow_dockerignore_with_negations_and_double_star(tmp_path: Path) -> None:
    src = _tree(
        tmp_path / "src",
        {
            ".dockerignore": "**/__pycache__\n*.log\ndocs\n!docs/keep.md\nsecret*\n",
            "main.py": "print(1)\n",
            "pkg/__pycache__/x.pyc": "x",
            "pkg/mod.py": "",
            "app.log": "",
            "docs/guide.md": "",
            "docs/keep.md": "",
            "secrets.env": "",
            ".wheeldock/oci/index.json": "{}",
        },
    )
    paths = {e.path for e in app_entries(src, "/app") if e.kind == "file"}
    assert paths == {"app/.dockerignore", "app/main.py", "app/pkg/mod.py", "app/docs/keep.md"}


def test_app_entries_follow_the_build_contexts_dockerignore_relative_to_its_root(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path / "proj",
        {
            ".dockerignore": "**/.env*\n**/tests\n!svc/tests/keep.py\n**/.git\nsvc/local.cfg\n",
            "svc/.dockerignore": "main.py\n",  # not the context's: BuildKit reads none there
            "svc/main.py": "",
            "svc/.env": "PASSWORD=x\n",
            "svc/local.cfg": "",
            "svc/pkg/.env.prod": "",
            "svc/tests/test_x.py": "",
            "svc/tests/keep.py": "",
            "svc/.git/config": "",
            "local.cfg": "",
        },
    )
    paths = {e.path for e in app_entries(root / "svc", "/app", root) if e.kind == "file"}
    assert paths == {"app/.dockerignore", "app/main.py", "app/tests/keep.py"}


@pytest.mark.integration
def test_the_native_app_layer_holds_the_files_buildkit_copies_from_the_same_context(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path / "ctx",
        {
            "Dockerfile": "FROM scratch\nCOPY . /app\n",
            ".dockerignore": "# init's defaults and a user's own lines\n**/.git\n**/.env*\n"
            "**/__pycache__\n**/tests\n!svc/tests/keep.py\n/svc/local.cfg\n./docs//\n"
            "*.log\n!keep.log\nb[0-9].txt\n",
            "svc/.dockerignore": "main.py\n",
            "svc/main.py": "print(1)\n",
            "svc/.env": "PASSWORD=hunter2\n",
            "svc/pkg/.env.prod": "",
            "svc/pkg/__pycache__/m.cpython-311.pyc": "",
            "svc/pkg/mod.py": "",
            "svc/tests/test_x.py": "",
            "svc/tests/keep.py": "",
            "svc/.git/config": "",
            "svc/local.cfg": "",
            "svc/app.log": "",
            "docs/guide.md": "",
            "app.log": "",
            "keep.log": "",
            "b1.txt": "",
            "bx.txt": "",
        },
    )
    (root / "svc" / "link").symlink_to("main.py")
    tar = tmp_path / "buildkit.tar"
    subprocess.run(
        ["docker", "buildx", "build", "--network", "host", "--output", f"type=tar,dest={tar}",
         str(root)],
        check=True, capture_output=True,
    )  # fmt: skip
    with tarfile.open(tar) as archive:
        by_buildkit = {m.name.rstrip("/") for m in archive.getmembers() if not m.isdir()}
    native = {e.path for e in app_entries(root, "/app", root) if e.kind != "dir"}
    assert "app/svc/.env" not in native and "app/svc/tests/keep.py" in native
    assert native == by_buildkit


def test_app_key_changes_with_content_and_not_with_folder(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one", {"main.py": "print(1)\n"})
    two = _tree(tmp_path / "elsewhere" / "two", {"main.py": "print(1)\n"})
    key_one = app_key(app_entries(one, "/app"), "gzip", 1)
    assert key_one == app_key(app_entries(two, "/app"), "gzip", 1)
    (two / "main.py").write_text("print(2)\n")
    assert key_one != app_key(app_entries(two, "/app"), "gzip", 1)


# -- config and outputs -------------------------------------------------------------------------


def test_the_app_layer_descriptor_does_not_depend_on_what_another_project_cached(
    tmp_path: Path,
) -> None:
    from wheeldock.build.install import InstalledTrees
    from wheeldock.deps.wheelhouse import Wheelhouse
    from wheeldock.oci.blobs import BlobStore

    def app_layer(folder: str, blobs: Path) -> dict[str, object]:
        root = tmp_path / folder
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "main.py").write_text("print('same bytes')\n")
        svc = Service(folder, folder, (), ("python3", "main.py"))
        proj = Project(root, None, (svc,))
        build = builder.Builder(
            proj, BuildOptions(source_date_epoch=1_700_000_000), store=BlobStore(blobs),
            wheelhouse=Wheelhouse(tmp_path / "wheels"), trees=InstalledTrees(tmp_path / "trees"),
        )  # fmt: skip
        layer, _ = build._app(svc)
        return layer.descriptor()

    shared = tmp_path / "shared-blobs"
    first = app_layer("one", shared)
    after_one = app_layer("two", shared)  # the same bytes: the cache answers with one's layer
    alone = app_layer("two", tmp_path / "fresh-blobs")
    assert after_one == alone
    assert alone["annotations"] == {"org.opencontainers.image.title": "app: two"}
    assert first["digest"] == alone["digest"]


def test_image_config_runs_the_service_as_a_non_root_user_with_a_health_check() -> None:
    svc = Service(
        "api", "src", ("r.txt",), ("python3", "app.py"), port=8000, health="/health", env={"A": "1"}
    )
    config = builder.image_config(svc, ("PATH=/usr/bin",))
    assert config["cmd"] == ("python3", "app.py")
    assert config["user"] == "10001:10001"
    assert config["exposed_ports"] == ("8000/tcp",)
    assert config["env"] == {
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PORT": "8000",
        "A": "1",
    }
    test = config["healthcheck"].test
    assert test[:3] == ("CMD", "python3", "-c") and "/health" in test[3]


def test_outputs_take_the_service_name(tmp_path: Path) -> None:
    svc = Service("api", "src", ("r.txt",), ("python3",))
    assert builder.output_for("docker-daemon:x-{service}:v1", svc, 2) == "docker-daemon:x-api:v1"
    assert builder.output_for(f"oci:{tmp_path}", svc, 2) == f"oci:{tmp_path}:api"
    with pytest.raises(UsageError, match="names one image"):
        builder.output_for("docker-daemon:x:v1", svc, 2)


def test_default_output_is_the_engine_or_an_oci_layout(tmp_path: Path) -> None:
    proj = Project(tmp_path / "My Project", None, ())
    svc = Service("api", "src", ("r.txt",), ("python3",))
    assert builder.default_outputs(proj, svc, engine_up=True) == (
        "docker-daemon:my-project-api:wheeldock",
    )
    assert builder.default_outputs(proj, svc, engine_up=False) == (
        f"oci:{proj.root}/.wheeldock/oci:api",
    )


@pytest.mark.parametrize(
    ("member", "path", "kind"),
    [
        (
            debian.DebMember(
                "lib/x86_64-linux-gnu/libz.so.1.2", "file", 0o644, 0, 0, 3, 0, data=b"elf"
            ),
            "usr/lib/x86_64-linux-gnu/libz.so.1.2",
            "file",
        ),
        (
            debian.DebMember("usr/lib/libx.so.1", "symlink", 0o777, 0, 0, 0, 0, "libx.so.1.0"),
            "usr/lib/libx.so.1",
            "symlink",
        ),
        (
            debian.DebMember(
                "usr/share/doc/zlib1g/copyright", "file", 0o644, 0, 0, 1, 0, data=b"c"
            ),
            None,
            None,
        ),
        (debian.DebMember("lib", "dir", 0o755, 0, 0, 0, 0), "usr/lib", "dir"),
    ],
)
def test_deb_members_land_under_merged_usr(
    member: debian.DebMember, path: str | None, kind: str | None
) -> None:
    entry = builder.deb_member_entry(member)
    assert (entry.path, entry.kind) == (path, kind) if entry else path is None


def test_source_date_epoch_comes_from_git_then_a_fixed_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert builder.source_date_epoch(tmp_path) == builder.FALLBACK_EPOCH
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run([*git, "-C", str(tmp_path), "add", "f"], check=True)
    env = {
        **os.environ,
        "GIT_COMMITTER_DATE": "1700000000 +0000",
        "GIT_AUTHOR_DATE": "1700000000 +0000",
    }
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env=env)
    assert builder.source_date_epoch(tmp_path) == 1700000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")
    assert builder.source_date_epoch(tmp_path) == 1234


def test_a_build_result_holds_digests_and_writes_them_as_their_text_in_json() -> None:
    from wheeldock.oci.result import PublishResult

    image, layer = Digest.of_bytes(b"image"), Digest.of_bytes(b"layer")
    report = builder.LayerReport("app", "svc → /app", layer, 10, False, 0.5)
    result = builder.ServiceBuild(
        service="api",
        image=None,  # type: ignore[arg-type]  # the JSON does not show the image itself
        digest=image,
        layers=(report,),
        outputs=(PublishResult("oci:out:api", image, 10, 2, 0, 0.25),),
        lock=Path("locks/api.toml"),
        seconds=1.0,
    )
    assert json.dumps(result.to_json()) == json.dumps(
        {
            "service": "api",
            "digest": str(image),
            "lock": "locks/api.toml",
            "seconds": 1.0,
            "layers": [
                {"kind": "app", "title": "svc → /app", "digest": str(layer), "size": 10,
                 "cached": False, "seconds": 0.5}
            ],
            "outputs": [{"ref": "oci:out:api", "digest": str(image), "seconds": 0.25}],
        }
    )  # fmt: skip
    assert Digest.parse(result.to_json()["layers"][0]["digest"]) == report.digest


# -- integration: cb-totem ----------------------------------------------------------------------


def _layers(result: builder.ServiceBuild) -> dict[str, Digest]:
    return {f"{r.kind}:{r.title}": r.digest for r in result.layers}


def _build_srv_img(
    proj: project.Project, tmp_path: Path, options: BuildOptions | None = None
) -> builder.ServiceBuild:
    """srv-img built again, to an OCI layout under ``tmp_path``."""
    (result,) = builder.build(proj, [proj.service("srv-img")], [f"oci:{tmp_path / 'oci'}"], options)
    return result


def _changed_kinds(result: builder.ServiceBuild, before: builder.ServiceBuild) -> list[str]:
    """The kind of each layer whose digest differs from the same layer of ``before``."""
    return [
        r.kind
        for r, old in zip(result.layers, before.layers, strict=True)
        if r.digest != old.digest
    ]


def _skopeo_inspect(ref: str) -> dict[str, object]:
    out = subprocess.run(["skopeo", "inspect", ref], check=True, capture_output=True, text=True)
    data: dict[str, object] = json.loads(out.stdout)
    return data


@pytest.mark.integration
def test_cb_totem_builds_to_an_oci_layout_skopeo_reads(cbt_built: CbtBuild) -> None:
    api, img = cbt_built.results["calidda-api"], cbt_built.results["srv-img"]
    info = _skopeo_inspect(f"oci:{cbt_built.layout}:calidda-api")
    assert info["Digest"] == str(api.digest)
    assert [str(r.digest) for r in api.layers] == info["Layers"]
    kinds = [r.kind for r in api.layers]
    assert kinds[0] == "base" and kinds[-1] == "app"
    # a layer per locked distribution, the small wheels' one shared: a bump re-tars and ships
    # only its own
    arts = select(pylock.read(api.lock))
    small = [a for a in arts if (a.file.size or 0) < builder.SMALL_WHEEL]
    assert len(small) >= 2
    assert kinds.count("deps") == len(arts) - len(small) + 1 <= builder.MAX_DEP_LAYERS
    assert [r.title for r in api.layers if r.kind == "deps"][-1] == f"{len(small)} packages"
    # Same lock, same wheels: the two services share every layer but the app one.
    assert [r.digest for r in api.layers[:-1]] == [r.digest for r in img.layers[:-1]]
    assert all(r.cached for r in img.layers)  # srv-img's app layer is calidda-api's folder too


@pytest.mark.integration
def test_code_change_rebuilds_only_the_app_layer(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    (proj.root / "vcc-totem" / "main.py").write_text(
        (proj.root / "vcc-totem" / "main.py").read_text() + "\n# v2\n"
    )
    result = _build_srv_img(proj, tmp_path)
    before = cbt_built.results["srv-img"]
    assert _changed_kinds(result, before) == ["app"]
    assert [r.kind for r in result.layers if not r.cached] == ["app"]
    assert result.digest != before.digest


@pytest.mark.integration
def test_one_pin_bump_rebuilds_one_dependency_layer(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    reqs = proj.root / "vcc-totem" / "requirements.txt"
    text = reqs.read_text()
    assert "idna==3.20" in text
    reqs.write_text(text.replace("idna==3.20", "idna==3.10"))
    result = _build_srv_img(proj, tmp_path, BuildOptions(relock=True))
    before, after = _layers(cbt_built.results["srv-img"]), _layers(result)
    changed = sorted(k for k in after if before.get(k) != after[k])
    assert len([k for k in changed if k.startswith("deps:")]) == 1, changed
    assert [k for k in changed if not k.startswith(("deps:", "app:"))] == []
    # requirements.txt lives in the service's source folder, so the app layer changes too
    assert [r.kind for r in result.layers if not r.cached] == ["deps", "app"]


@pytest.mark.integration
def test_no_bytecode_changes_the_dependency_layers_only(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    result = _build_srv_img(proj, tmp_path, BuildOptions(bytecode="none"))
    assert set(_changed_kinds(result, cbt_built.results["srv-img"])) == {"deps"}
    assert all(not r.cached for r in result.layers if r.kind == "deps")


@pytest.mark.integration
def test_stale_unpinned_lock_is_refused_without_relock(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    reqs = proj.root / "vcc-totem" / "requirements.txt"
    # a range, not a pin: the lock cannot be updated without uv (a pin bump would be)
    reqs.write_text(reqs.read_text().replace("idna==3.20", "idna>=3.10"))
    with pytest.raises(InvalidConfig, match="the lock is stale") as err:
        builder.build(proj, [proj.service("srv-img")], [f"oci:{tmp_path / 'oci'}"])
    assert "wheeldock lock" in str(err.value)


@pytest.mark.integration
def test_a_service_on_another_python_than_its_base_is_refused_before_anything_is_built(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    svc = dataclasses.replace(proj.service("srv-img"), python="3.12")
    with pytest.raises(InvalidConfig) as err:
        builder.build(proj, [svc], [f"oci:{tmp_path / 'oci'}"])
    assert 'python = "3.12", but its base slim has Python 3.11' in err.value.what
    assert err.value.path == proj.root / "wheeldock.toml"
    assert 'set python = "3.11"' in (err.value.fix or "")
    assert not (tmp_path / "oci").exists()


@pytest.mark.integration
def test_same_inputs_in_another_folder_give_the_same_digest(
    cbt_built: CbtBuild, base_cache: Path, tmp_path: Path
) -> None:
    # A separate cache too: nothing is reused from the first build but the base rootfs tar.
    with cache_at(new_cache(base_cache, tmp_path / "cache")):
        proj = make_cbt_project(tmp_path / "somewhere" / "else", lock_from=cbt_built.root)
        (result,) = builder.build(proj, [proj.service("calidda-api")], [f"oci:{tmp_path / 'oci'}"])
    assert result.digest == cbt_built.results["calidda-api"].digest


@pytest.mark.integration
def test_build_killed_midway_then_rebuilt_gives_the_same_digest(
    cbt_built: CbtBuild, base_cache: Path, tmp_path: Path
) -> None:
    cache = new_cache(base_cache, tmp_path / "cache")
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    env = _cli_env(cache)
    argv = _cli_build(proj.root, "calidda-api", "--json", "-o", f"oci:{tmp_path / 'oci'}")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    # Kill once it is busy (wheels arriving) and well before it can finish.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((cache / "wheels").glob("sha256/*/*/*.whl")):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    (service,) = json.loads(rerun.stdout)["services"]
    assert service["digest"] == str(cbt_built.results["calidda-api"].digest)


@pytest.mark.integration
def test_two_builds_at_once_share_the_cache_safely(
    cbt_built: CbtBuild, base_cache: Path, tmp_path: Path
) -> None:
    cache = new_cache(base_cache, tmp_path / "cache")
    env = _cli_env(cache)
    procs = []
    for i in range(2):
        proj = make_cbt_project(tmp_path / f"p{i}", lock_from=cbt_built.root)
        argv = _cli_build(proj.root, "srv-img", "--json", "-o", f"oci:{tmp_path / f'oci{i}'}")
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True))
    digests = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0
        digests.append(json.loads(out)["services"][0]["digest"])
    assert digests == [str(cbt_built.results["srv-img"].digest)] * 2


def _cli_env(cache: Path) -> dict[str, str]:
    """The environment of a ``wheeldock`` run in a subprocess: ``cache``, no SOURCE_DATE_EPOCH."""
    env = {**os.environ, "WHEELDOCK_CACHE": str(cache)}
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


def _cli_build(root: Path, *args: str) -> list[str]:
    """The argv of ``wheeldock -C root build *args`` in a subprocess."""
    return [sys.executable, "-m", "wheeldock.cli", "-C", str(root), "build", *args]


def _damage(path: Path, how: str, *, at: int | None = None) -> None:
    """Flip one byte of ``path`` (at ``at``, else mid-file) or cut it short, as a disk might."""
    data = bytearray(path.read_bytes())
    if how == "a flipped byte":
        data[len(data) // 2 if at is None else at] ^= 0x01
    else:
        del data[len(data) // 2 :]
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def _victim(cache: Path, what: str, result: builder.ServiceBuild, how: str) -> Path:
    """The cache file holding idna (its layer blob, installed tree or wheel), damaged."""
    if what == "layer blob":
        (layer,) = [r for r in result.layers if r.title.startswith("idna ")]
        path = cache / "blobs" / "sha256" / str(layer.digest).split(":")[1]
        _damage(path, how)
    elif what == "wheel":
        (path,) = (cache / "wheels").glob("sha256/*/*/idna-*.whl")
        _damage(path, how)
    else:
        for path in (cache / "installed").glob("*/*.tar"):
            with tarfile.open(path) as tar:
                core = next((m for m in tar if m.name.endswith("idna/core.py")), None)
            if core is not None:
                break
        else:
            raise AssertionError("no installed tree holds idna/core.py")
        _damage(path, how, at=core.offset_data + 100)  # the tar stays well formed
    return path


def _sound(layout: Path, tag: str, tmp_path: Path) -> None:
    """Every blob of ``layout`` hashes to its name, and skopeo copies the image out (it checks
    each blob against its descriptor)."""
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
    out = tmp_path / f"copied-{layout.name}"
    subprocess.run(["skopeo", "copy", "-q", f"oci:{layout}:{tag}", f"dir:{out}"], check=True)
    shutil.rmtree(out)


@pytest.mark.integration
@pytest.mark.parametrize("how", ["a flipped byte", "cut short"])
@pytest.mark.parametrize("what", ["layer blob", "installed tree", "wheel"])
def test_a_damaged_cache_file_is_made_again_and_no_image_ships_wrong(
    cbt_built: CbtBuild,
    base_cache: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    what: str,
    how: str,
) -> None:
    cache = new_cache(base_cache, tmp_path / "cache")
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    svc = proj.service("srv-img")
    with cache_at(cache):
        (first,) = builder.build(proj, [svc], [f"oci:{tmp_path / 'before'}:srv-img"])
    victim = _victim(cache, what, first, how)
    if what != "layer blob":  # the layers are made again from the installed trees
        shutil.rmtree(cache / "blobs")
    if what == "wheel":  # and the trees from the wheels
        shutil.rmtree(cache / "installed")
    with cache_at(cache):
        (again,) = builder.build(proj, [svc], [f"oci:{tmp_path / 'after'}:srv-img"])
    assert again.digest == first.digest == cbt_built.results["srv-img"].digest
    assert str(victim) in caplog.text  # the warning names the damaged file
    _sound(tmp_path / "before", "srv-img", tmp_path)  # a layout written before stays valid
    _sound(tmp_path / "after", "srv-img", tmp_path)


@pytest.mark.integration
def test_two_builds_into_one_new_oci_folder_both_succeed(
    cbt_built: CbtBuild, build_cache: Path, tmp_path: Path
) -> None:
    env = _cli_env(build_cache)
    shared = tmp_path / "new"
    procs = []
    for i in range(2):
        argv = _cli_build(cbt_built.root, "srv-img", "-o", f"oci:{shared}:t{i}")
        procs.append(subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    assert sorted(layout.tags(shared)) == ["t0", "t1"]
    _sound(shared, "t0", tmp_path)


@pytest.mark.integration
def test_minimal_base_image_is_smaller(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    result = _build_srv_img(proj, tmp_path, BuildOptions(base="minimal"))
    slim = cbt_built.results["srv-img"]
    assert result.layers[0].digest != slim.layers[0].digest
    assert result.image.size < slim.image.size
    assert [r.digest for r in result.layers[-1:]] == [r.digest for r in slim.layers[-1:]]


def _wait_healthy(port: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        try:
            with opener.open(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                return int(resp.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.integration
def test_a_cold_build_loads_its_big_layers_early_and_leaves_no_untagged_image(
    cbt_built: CbtBuild, base_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine.require()
    name = f"wheeldock-early-{os.getpid()}"
    dangling = set(
        engine.docker("images", "-q", "--no-trunc", "-f", "dangling=true").stdout.split()
    )
    caplog.set_level("INFO", logger="wheeldock.oci.daemon")
    try:
        with cache_at(new_cache(base_cache, tmp_path / "cache")):
            proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
            (result,) = builder.build(proj, [proj.service("srv-img")], [f"docker-daemon:{name}:1"])
        assert "into the engine early" in caplog.text
        inspected = engine.image_inspect(f"{name}:1")
        assert inspected["Id"] == str(cbt_built.results["srv-img"].image.config_digest)
        assert inspected["RootFS"]["Layers"] == [str(lay.diff_id) for lay in result.image.layers]
        after = engine.docker("images", "-q", "--no-trunc", "-f", "dangling=true").stdout.split()
        assert set(after) <= dangling
    finally:
        engine.docker("rmi", f"{name}:1", check=False)


@pytest.mark.integration
def test_images_loaded_into_docker_answer_health_checks(
    cbt_built: CbtBuild, build_env: Path
) -> None:
    engine.require()
    proj = project.load(cbt_built.root)
    results = builder.build(proj, proj.services, ["docker-daemon:wheeldock-e2-{service}:test"])
    # one `docker load` took the stack: both report the same archive
    (first,), (second,) = (r.outputs for r in results)
    assert first.bytes_written == second.bytes_written > 0
    ports = {"calidda-api": 18600, "srv-img": 18601}
    names = [f"wheeldock-e2-test-{r.service}" for r in results]
    try:
        for result, name in zip(results, names, strict=True):
            # plain layers for the engine, gzip in the layout: the same config, so the same ID
            assert (
                result.image.config_digest == cbt_built.results[result.service].image.config_digest
            )
            assert engine.image_inspect(f"wheeldock-e2-{result.service}:test")["Id"] == str(
                result.image.config_digest
            )
            engine.docker(
                "run",
                "--rm",
                "-d",
                "--name",
                name,
                "--network",
                "host",
                "-e",
                f"PORT={ports[result.service]}",
                f"wheeldock-e2-{result.service}:test",
            )
        for service, port in ports.items():
            assert _wait_healthy(port) == 200, service
        user = engine.docker("exec", names[0], "id", "-u").stdout.strip()
        assert user == "10001"
        version = engine.docker("exec", names[0], "uvicorn", "--version").stdout
        assert version.startswith("Running uvicorn")
        # a code change sends the engine only the app layer (it has every other one)
        app = proj.root / "vcc-totem" / "main.py"
        app.write_text(app.read_text() + "\n# sent alone\n")
        again = builder.build(proj, proj.services, ["docker-daemon:wheeldock-e2-{service}:test"])
        for result in again:
            (sent,) = result.outputs
            assert sent.bytes_written < 1 << 20, sent
            layers = engine.image_inspect(f"wheeldock-e2-{result.service}:test")["RootFS"]["Layers"]
            assert layers == [str(lay.diff_id) for lay in result.image.layers]
    finally:
        for name in names:
            engine.docker("rm", "-f", name, check=False)
        for service in ports:
            engine.docker("rmi", f"wheeldock-e2-{service}:test", check=False)
        # the first build's images, untagged by the second
        engine.docker("rmi", *(str(r.image.config_digest) for r in results), check=False)


def test_chain_ids_follow_the_image_spec() -> None:
    import hashlib

    from wheeldock.oci.daemon import chain_ids

    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    expected = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, expected]


@pytest.mark.integration
def test_base_layer_is_read_in_place_and_its_facts_kept_beside_the_tar(
    cbt_built: CbtBuild, build_env: Path
) -> None:
    from wheeldock.debian import bases

    rootfs = bases.ensure_rootfs("slim")
    facts = builder.base_facts(rootfs)
    recorded = json.loads(
        rootfs.tar_path.with_name(rootfs.tar_path.stem + ".facts.json").read_text()
    )
    assert recorded["sha256"] == facts.sha256 and "python3" in facts.installed
    plain = builder.base_layer(rootfs, facts, "none")
    assert plain.blob_path() == rootfs.tar_path and plain.digest == plain.diff_id
    # the layout build of the session compressed it once, beside the tar
    assert facts.gzip is not None
    gz = builder.base_layer(rootfs, facts, "gzip")
    assert gz.blob_path().parent == rootfs.tar_path.parent
    assert gz.digest == cbt_built.results["srv-img"].layers[0].digest
    assert gz.diff_id == plain.diff_id


def test_git_labels_name_the_revision_and_drop_credentials_from_the_source(tmp_path: Path) -> None:
    assert builder.git_labels(tmp_path) == {}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    subprocess.run(
        [*git, "remote", "add", "origin", "https://user:s3cret@git.example.invalid/o/r.git"],
        check=True,
    )
    labels = builder.git_labels(tmp_path)
    assert labels["org.opencontainers.image.source"] == "https://git.example.invalid/o/r.git"
    assert len(labels["org.opencontainers.image.revision"]) == 40


@pytest.mark.parametrize(
    ("filename", "pure"),
    [
        ("idna-3.10-py3-none-any.whl", True),
        ("six-1.16.0-py2.py3-none-any.whl", True),
        ("pyyaml-6.0-cp311-cp311-manylinux_2_17_x86_64.whl", False),
        ("watchfiles-1.0-cp310-abi3-manylinux_2_17_x86_64.whl", False),
    ],
)
def test_only_binary_wheels_are_scanned_for_libraries(filename: str, pure: bool) -> None:
    assert builder._is_pure(filename) is pure


def test_several_fixed_outputs_go_to_the_service_each_names(tmp_path: Path) -> None:
    api = Service("api", "app", ("requirements.txt",), ("python3", "a.py"))
    admin = Service("api-admin", "app", ("requirements.txt",), ("python3", "b.py"))
    both = [api, admin]
    refs = ["docker-daemon:stack-api:1", "docker-daemon:stack-api-admin:1", f"oci:{tmp_path}"]
    assert [r for r in refs if builder._meant_for(r, api, both)] == [refs[0], refs[2]]
    assert [r for r in refs if builder._meant_for(r, admin, both)] == [refs[1], refs[2]]
    assert builder._meant_for("docker-daemon:other:1", api, both)  # refused by output_for
    with pytest.raises(UsageError, match="names one image"):
        builder.output_for("docker-daemon:other:1", api, 2)


@pytest.mark.integration
def test_a_library_the_wheels_need_and_the_base_lacks_comes_from_its_deb(
    build_env: Path, tmp_path: Path
) -> None:
    from conftest_libs import make_elf

    ext = make_elf(needed=["libpq.so.5", "libc.so.6"])
    wheel = make_wheel(
        tmp_path / "wheels",
        "pqlink",
        "1.0",
        {"pqlink/__init__.py": "X = 1\n", "pqlink/_ext.cpython-311-x86_64-linux-gnu.so": ext},
        tag="cp311-cp311-manylinux_2_17_x86_64",
    )
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print('hi')\n")
    (tmp_path / "app" / "requirements.txt").write_text(f"pqlink @ file://{wheel}\n")
    svc = project.Service("pq", "app", ("app/requirements.txt",), ("python3", "main.py"))
    proj = project.Project(tmp_path, None, (svc,))
    project.save(proj)
    (result,) = builder.build(proj, proj.services, [f"oci:{tmp_path / 'oci'}"])
    kinds = [r.kind for r in result.layers]
    assert kinds == ["base", "libs", "deps", "app"]
    libs_layer = result.image.layers[1]
    with libs_layer.uncompressed() as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        names = [m.name for m in tar]
    # the .deb's files land under /usr (merged /usr), not in a /lib that would hide the symlink
    assert any(n.startswith("usr/lib/x86_64-linux-gnu/libpq.so.5") for n in names)
    assert not any(n.split("/", 1)[0] in ("lib", "bin") for n in names)
    assert result.layers[1].title == "libpq5"


def _pipeline_run(
    ready_order: list[str], *, cached: tuple[str, ...] = (), libs: str | None = "libs"
) -> tuple[list[list[str]], list[str], str | None]:
    """Drive a layer pipeline over plans A (a compiled-extension wheel), B and C (pure), with
    trees ready in ``ready_order``: (every hand-on of the run so far, the deps, the libs)."""
    from typing import Any, cast

    arts = {
        "A": Artifact(
            "a", "1", LockedFile("a-1-cp311-cp311-manylinux_2_17_x86_64.whl", "a" * 64), "wheel"
        ),
        "B": _art("b", 10, "b" * 64),
        "C": _art("c", 10, "c" * 64),
    }
    plans = [builder.DepLayerPlan(n, (a,), n) for n, a in arts.items()]
    handed: list[list[str]] = []
    with builder._LayerPipeline(
        plans,
        [p for p in plans if p.key not in cached],
        dep=lambda plan: cast(Any, (plan.title, None)),
        libs=lambda: cast(Any, (libs, None) if libs else None),
        ready_prefix=lambda layers: handed.append([cast(str, x) for x in layers]),
    ) as pipeline:
        for name in ready_order:
            pipeline.tree_unpacked(arts[name].sha256)
            pipeline.tree_ready(arts[name].sha256)
            time.sleep(0.05)  # let the layers thread catch up, so each step hands on alone
        deps, made_libs = pipeline.results()
    return handed, [d[0] for d in deps], made_libs[0] if made_libs else None


def test_layers_are_handed_on_from_the_bottom_up_with_the_libraries_first() -> None:
    handed, deps, libs = _pipeline_run(["A", "B", "C"])
    assert handed == [["libs", "A"], ["libs", "A", "B"], ["libs", "A", "B", "C"]]
    assert (deps, libs) == (["A", "B", "C"], "libs")


def test_a_layer_ready_early_waits_for_the_ones_below_it() -> None:
    handed, deps, _ = _pipeline_run(["C", "B", "A"])
    assert handed == [["libs", "A", "B", "C"]]
    assert deps == ["A", "B", "C"]


def test_without_runtime_libraries_the_run_is_the_dependency_layers_alone() -> None:
    handed, _, libs = _pipeline_run(["A", "B", "C"], libs=None)
    assert handed == [["A"], ["A", "B"], ["A", "B", "C"]]
    assert libs is None


def test_cached_layers_count_as_ready() -> None:
    handed, deps, _ = _pipeline_run(["B", "C"], cached=("A",))
    assert handed[0][:2] == ["libs", "A"] and handed[-1] == ["libs", "A", "B", "C"]
    assert deps == ["A", "B", "C"]


def test_dependency_layers_leave_out_the_scheme_folders_every_base_has() -> None:
    assert builder.scheme_folders(SCHEME) == {
        "usr",
        "usr/local",
        "usr/local/bin",
        "usr/local/lib",
        "usr/local/lib/python3.11",
        "usr/local/lib/python3.11/dist-packages",
    }


def test_a_new_layer_with_an_extension_needing_a_newer_glibc_fails_the_build(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path / "blobs")
    libc = make_elf(soname="libc.so.6", version_defs=("GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.36"))
    base_tar = tmp_path / "base.tar"
    with tarfile.open(base_tar, "w") as tar:
        info = tarfile.TarInfo("usr/lib/x86_64-linux-gnu/libc.so.6")
        info.size = len(libc)
        tar.addfile(info, io.BytesIO(libc))
    rootfs = bases.BaseRootfs(
        "slim", "amd64", "bookworm", base_tar, (), 0, 0.0, True, "3.11", "k" * 64
    )
    base = builder._Base("slim", Image(), install.debian_scheme("3.11"), "k", "amd64", rootfs, ())
    ext = "usr/local/lib/python3.11/site-packages/psycopg2/_psycopg.cpython-311-x86_64-linux-gnu.so"

    def deps_layer(needs: str, cached: bool) -> tuple[Layer, builder.LayerReport]:
        data = make_elf(needed=["libc.so.6"], version_needs={"libc.so.6": (needs,)})
        layer = build_layer([TarEntry.file(ext, data)], store=store, mtime=0)
        return layer, builder.LayerReport("deps", "psycopg2", "", 0, cached, 0.0)

    proj = Project(tmp_path, None, ())
    bld = builder.Builder(proj, store=store)
    svc = Service("pg", "app", ("requirements.txt",), ("python3", "main.py"))
    bld._check_new_layers(svc, base, None, [deps_layer("GLIBC_2.34", cached=False)])
    bld._check_new_layers(svc, base, None, [deps_layer("GLIBC_2.38", cached=True)])  # not read
    with pytest.raises(LibraryNotFound) as err:
        bld._check_new_layers(svc, base, None, [deps_layer("GLIBC_2.38", cached=False)])
    assert f"/{ext} needs GLIBC_2.38 of libc.so.6" in err.value.what
    assert err.value.missing == ((f"/{ext}", "libc.so.6", "GLIBC_2.38"),)


def test_a_base_image_reference_is_opened_like_any_other_image(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layer = build_layer([TarEntry.file("etc/os-release", b"ID=debian\n")], store=store, mtime=0)
    base_image = Image(
        layers=(layer,),
        config=ImageConfig(env=("PATH=/usr/bin",), cmd=("python3",)),
        platform=Platform("linux", "arm64"),
    )
    layout.write(base_image, tmp_path / "oci", "base")
    svc = Service("api", ".", (), ("python3", "app.py"))
    proj = project.Project(tmp_path, None, (svc,))
    options = BuildOptions(base=f"oci:{tmp_path / 'oci'}:base", platform="linux/arm64")
    found = builder.Builder(proj, options, store=store)._base(svc)
    assert found.image.digest == base_image.digest and found.arch == "arm64"
    engine_base = dataclasses.replace(options, base="docker-daemon:python:3.11-slim")
    with pytest.raises(UsageError, match="cannot be read from the Docker engine"):
        builder.Builder(proj, engine_base, store=store)._base(svc)
