from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from support.libs import make_elf

from wheeldock import project
from wheeldock.build import builder, install
from wheeldock.build.builder import BuildOptions, app_entries, app_key, plan_dependencies
from wheeldock.debian import archive as debian
from wheeldock.debian import bases
from wheeldock.deps.pylock import LockedFile
from wheeldock.deps.wheelhouse import Artifact
from wheeldock.errors import LibraryNotFound, UsageError
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
                 "cached": False, "remote": False, "seconds": 0.5}
            ],
            "outputs": [{"ref": "oci:out:api", "digest": str(image), "seconds": 0.25}],
        }
    )  # fmt: skip
    assert Digest.parse(result.to_json()["layers"][0]["digest"]) == report.digest


def test_chain_ids_follow_the_image_spec() -> None:

    from wheeldock.oci.daemon import chain_ids

    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    expected = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, expected]


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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))  # the check's listings
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


def test_code_the_service_writes_into_is_the_app_users_with_its_folder(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "manage.py").write_text("")
    entries = builder.owned_by_app(app_entries(tmp_path / "app", "/code", tmp_path), "/code")
    assert [(e.path, e.kind, e.uid, e.gid) for e in entries] == [
        ("code", "dir", 10001, 10001),  # the folder itself: the service makes files in it
        ("code/manage.py", "file", 10001, 10001),
    ]
