"""The registry as the build cache (``--cache docker://HOST/REPO``), against the real registry
and a fault-injecting proxy in front of it: entries are OCI artifacts, a hit fetches and builds
nothing, a corrupt or missing entry is a miss, a registry that is down is a warning, and a second
machine with empty caches builds the same digests from the first one's entries."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.build import CbtBuild, cache_at, make_cbt_project, new_cache
from support.env import environ
from support.proxy import Proxied, faulty_registry
from support.registry import Registry

from wheeldock import project
from wheeldock.build import builder
from wheeldock.build.builder import BuildOptions, ServiceBuild
from wheeldock.oci.cache import ARTIFACT_TYPE

pytestmark = pytest.mark.integration

__all__ = ["faulty_registry"]


def cache_ref(registry: Registry, repository: str) -> str:
    return f"docker://{registry.host}/{repository}"


def tags(registry: Registry, repository: str) -> list[str]:
    with urllib.request.urlopen(f"http://{registry.host}/v2/{repository}/tags/list") as resp:
        return list(json.load(resp).get("tags") or [])


def manifest(registry: Registry, repository: str, tag: str) -> dict[str, object]:
    req = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(req) as resp:
        data: dict[str, object] = json.load(resp)
        return data


def entry_tags_by_layer(registry: Registry, repository: str) -> dict[str, str]:
    """Each cached layer's digest → the tag of its entry."""
    found = {}
    for tag in tags(registry, repository):
        layers = manifest(registry, repository, tag)["layers"]
        assert isinstance(layers, list)
        found[layers[0]["digest"]] = tag
    return found


def deps_and_libs(result: ServiceBuild) -> list[builder.LayerReport]:
    return [r for r in result.layers if r.kind in ("deps", "libs")]


@dataclass(frozen=True)
class Seeded:
    ref: str
    root: Path  # the project it was built from (its lock is reused)
    results: dict[str, ServiceBuild]


@pytest.fixture(scope="module")
def seeded(
    cbt_built: CbtBuild,
    build_cache: Path,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Seeded:
    """The registry cache ``wd-cache/seeded`` filled by a build on the session's warm local
    cache: every layer is a local hit, and saved to the registry."""
    work = tmp_path_factory.mktemp("seed")
    ref = cache_ref(registry, "wd-cache/seeded")
    with cache_at(build_cache):
        proj = make_cbt_project(work / "project", lock_from=cbt_built.root)
        results = builder.build(
            proj, proj.services, [f"oci:{work / 'oci'}"], BuildOptions(cache=ref)
        )
    return Seeded(ref, proj.root, {r.service: r for r in results})


def test_each_layer_is_an_artifact_tagged_by_its_key_in_the_cache_repository(
    seeded: Seeded, registry: Registry, cbt_built: CbtBuild
) -> None:
    results = seeded.results
    for name, result in results.items():
        assert result.digest == cbt_built.results[name].digest
    cached = entry_tags_by_layer(registry, "wd-cache/seeded")
    every_layer = {str(r.digest) for res in results.values() for r in res.layers}
    assert every_layer <= set(cached)  # base, libraries, each dependency layer, app
    some = manifest(registry, "wd-cache/seeded", next(iter(cached.values())))
    assert some["artifactType"] == ARTIFACT_TYPE
    assert all(t.startswith("wd-") and len(t) == 67 for t in tags(registry, "wd-cache/seeded"))


def test_corrupt_or_missing_entries_and_blobs_are_misses_and_nothing_corrupt_is_used(
    seeded: Seeded,
    faulty_registry: Proxied,
    registry: Registry,
    base_cache: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed = seeded.results
    entries = entry_tags_by_layer(registry, "wd-cache/seeded")
    deps = [r for r in seed["calidda-api"].layers if r.kind == "deps"]
    corrupt, dropped, garbled, lost = deps[:4]
    faults = faulty_registry.faults
    faults.corrupt.add(str(corrupt.digest))
    faults.lose.add(str(lost.digest))
    faults.drop.add(entries[str(dropped.digest)])
    faults.garble.add(entries[str(garbled.digest)])
    layout = tmp_path / "oci"
    with (
        cache_at(new_cache(base_cache, tmp_path / "cache")),
        environ({"UV_CACHE_DIR": str(tmp_path / "uv")}),
        caplog.at_level(logging.WARNING),
    ):
        proj = make_cbt_project(tmp_path / "project", lock_from=seeded.root)
        (result,) = builder.build(
            proj,
            [proj.service("calidda-api")],
            [f"oci:{layout}"],
            BuildOptions(cache=cache_ref(faulty_registry.registry, "wd-cache/seeded")),
        )
    assert result.digest == seed["calidda-api"].digest
    by_digest = {r.digest: r for r in result.layers}
    for miss in (dropped, garbled):  # no usable entry: built here
        assert not by_digest[miss.digest].remote and not by_digest[miss.digest].cached
    for hit in (corrupt, lost):  # the descriptor was used; the bytes, wrong or gone, built here
        assert by_digest[hit.digest].remote
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot be used" in m for m in messages) == 2  # the corrupt and the lost blob
    assert any("is not a manifest" in m for m in messages)  # the garbled entry
    # every blob in the layout hashes to its name: the corrupt bytes were never written
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_a_registry_that_refuses_connections_is_one_warning_and_a_local_build(
    cbt_built: CbtBuild, build_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with cache_at(build_cache), caplog.at_level(logging.WARNING):
        proj = make_cbt_project(tmp_path / "project", lock_from=cbt_built.root)
        results = builder.build(
            proj,
            proj.services,
            [f"oci:{tmp_path / 'oci'}"],
            BuildOptions(cache=f"docker://127.0.0.1:{port}/cache"),
        )
    for r in results:
        assert r.digest == cbt_built.results[r.service].digest
    warnings = [r for r in caplog.records if r.name == "wheeldock.oci.cache"]
    assert len(warnings) == 1 and "cannot be used" in warnings[0].getMessage()


# -- machine A, machine B -----------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """A machine's own caches (wheeldock's and uv's), sharing only the session's Debian bases."""

    cache: Path
    uv: Path

    @classmethod
    def fresh(cls, base_cache: Path, folder: Path) -> Machine:
        return cls(new_cache(base_cache, folder / "cache"), folder / "uv")

    def build(
        self, proj: project.Project, outputs: list[str], options: BuildOptions
    ) -> tuple[dict[str, ServiceBuild], float]:
        with cache_at(self.cache), environ({"UV_CACHE_DIR": str(self.uv)}):
            started = time.monotonic()
            results = builder.build(proj, proj.services, outputs, options)
            return {r.service: r for r in results}, time.monotonic() - started

    def wheels(self) -> list[Path]:
        """The wheels this machine downloaded (wheeldock's wheelhouse and uv's cache)."""
        return [*self.cache.rglob("*.whl"), *self.uv.rglob("*.whl")]


def blob_gets(registry: Registry) -> int:
    return sum(r.method == "GET" and "/blobs/" in r.path for r in registry.requests())


def test_machine_b_builds_the_same_digests_from_machine_a_entries_and_fetches_nothing(
    cbt_built: CbtBuild, base_cache: Path, registry: Registry, tmp_path: Path
) -> None:
    # (how long each machine takes is measured by benchmarks/registry_cache.py, not here)
    options = BuildOptions(cache=cache_ref(registry, "wd-cache/ab0"))
    a = Machine.fresh(base_cache, tmp_path / "a0")
    proj_a = make_cbt_project(tmp_path / "a0" / "project", lock_from=cbt_built.root)
    built_a, _ = a.build(proj_a, [registry.ref("ab0/a/{service}")], options)
    assert all(not r.remote for res in built_a.values() for r in res.layers)

    b = Machine.fresh(base_cache, tmp_path / "b0")
    proj_b = make_cbt_project(tmp_path / "b0" / "project", lock_from=cbt_built.root)
    gets = blob_gets(registry)
    first_b, _ = b.build(proj_b, [registry.ref("ab0/b/{service}")], options)
    for name, res in first_b.items():
        assert res.digest == built_a[name].digest == cbt_built.results[name].digest
        assert all(r.remote for r in deps_and_libs(res))  # every one a registry hit
    assert b.wheels() == []  # no wheel downloaded, so none installed or compiled
    assert blob_gets(registry) == gets  # a registry output: blobs mounted, none fetched

    # a one-pin bump on A: A builds that layer (and the app's: requirements.txt is in the source
    # folder) and pushes it; B, its caches as the first run left them, finds every key in the
    # registry cache and builds nothing: the changed layers are the two new keys' entries
    options = BuildOptions(cache=cache_ref(registry, "wd-cache/ab0"), lock_policy="relock")
    for proj in (proj_a, proj_b):
        reqs = proj.root / "vcc-totem" / "requirements.txt"
        reqs.write_text(reqs.read_text().replace("idna==3.20", "idna==3.10"))
    a = Machine(tmp_path / "a0" / "cache", tmp_path / "a0" / "uv")
    bumped_a, _ = a.build(proj_a, [registry.ref("ab0/a/{service}", "bump")], options)
    assert [r.kind for r in bumped_a["calidda-api"].layers if not r.cached] == ["deps", "app"]
    shutil.rmtree(proj_b.root / "wheeldock.lock")
    shutil.copytree(proj_a.root / "wheeldock.lock", proj_b.root / "wheeldock.lock")
    b = Machine(tmp_path / "b0" / "cache", tmp_path / "b0" / "uv")
    bumped_b, _ = b.build(proj_b, [registry.ref("ab0/b/{service}", "bump")], options)
    api, before = bumped_b["calidda-api"], first_b["calidda-api"]
    assert api.digest == bumped_a["calidda-api"].digest
    changed = [
        r for r, old in zip(api.layers, before.layers, strict=True) if r.digest != old.digest
    ]
    assert [(r.kind, r.remote) for r in changed] == [("deps", True), ("app", True)]
    assert changed[0].title == "idna 3.10"
    assert all(r.cached for r in api.layers)  # nothing built
    assert b.wheels() == []
