from __future__ import annotations

import dataclasses
import hashlib
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
from support.build import CbtBuild, cache_at, make_cbt_project, make_wheel, new_cache
from support.libs import make_elf

from wheeldock import project
from wheeldock.build import builder
from wheeldock.build.builder import BuildOptions, app_entries
from wheeldock.debian import bases
from wheeldock.deps import pylock
from wheeldock.deps.wheelhouse import select
from wheeldock.edges import engine
from wheeldock.errors import InvalidConfig, StaleLock
from wheeldock.oci import layout
from wheeldock.oci.digest import Digest

# -- the app layer ------------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


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
    result = _build_srv_img(proj, tmp_path, BuildOptions())
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
def test_a_lock_whose_requirements_changed_beyond_versions_is_refused_without_relock(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    reqs = proj.root / "vcc-totem" / "requirements.txt"
    # a requirement added, as a range: only uv can resolve it (a version moving would be updated)
    reqs.write_text(reqs.read_text() + "sniffio>=1.3\n")
    with pytest.raises(StaleLock, match="the lock is stale") as err:
        builder.build(proj, [proj.service("srv-img")], [f"oci:{tmp_path / 'oci'}"])
    assert "wheeldock lock" in str(err.value)


@pytest.mark.integration
def test_a_range_the_locked_version_meets_updates_the_lock_in_place(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    reqs = proj.root / "vcc-totem" / "requirements.txt"
    reqs.write_text(reqs.read_text().replace("idna==3.20", "idna>=3.10"))
    result = _build_srv_img(proj, tmp_path, BuildOptions())
    locked = pylock.read(pylock.lock_path(proj.root, "srv-img"))
    assert {p.name: p.version for p in locked.packages}["idna"] == "3.20"
    assert _changed_kinds(result, cbt_built.results["srv-img"]) == ["app"]


@pytest.mark.integration
def test_a_python_no_base_and_no_official_image_has_is_refused_before_anything_is_built(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    svc = dataclasses.replace(proj.service("srv-img"), python="3.99")
    with pytest.raises(InvalidConfig) as err:
        builder.build(proj, [svc], [f"oci:{tmp_path / 'oci'}"])
    # no wheeldock base carries it, and no official image (engine or Docker Hub, reachable or
    # not) has it: the error says both ways out
    assert 'python = "3.99": wheeldock\'s bases carry 3.11 (bookworm), 3.13' in err.value.what
    assert "the official image python:3.99-slim is neither in the engine" in err.value.what
    assert err.value.path == proj.root / "wheeldock.toml"
    assert "docker pull python:3.99-slim" in (err.value.fix or "")
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


@pytest.mark.integration
def test_base_layer_is_read_in_place_and_its_facts_kept_beside_the_tar(
    cbt_built: CbtBuild, build_env: Path
) -> None:

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


@pytest.mark.integration
def test_a_library_the_wheels_need_and_the_base_lacks_comes_from_its_deb(
    build_env: Path, tmp_path: Path
) -> None:

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
