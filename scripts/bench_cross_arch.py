#!/usr/bin/env python3
"""Cross-architecture build times for cb-totem, measured in one session on this x86 machine.

1. wheeldock native, linux/amd64 — cold (fresh wheel/blob cache; the Debian bases are cached);
2. wheeldock native, linux/arm64 — cold, the same way (no emulation: aarch64 wheels unpacked,
   bytecode compiled by the host interpreter);
3. the seed's multi-stage Dockerfile for linux/arm64 with ``docker buildx build --platform
   linux/arm64`` (every RUN under qemu), with the compiled packages forced to build from source
   (``--no-binary cffi,pyyaml``, the totem's real case), FROM wheeldock's arm64 slim base;
4. the same Dockerfile for linux/amd64 (native), for the emulation's own cost.

Usage: .venv/bin/python scripts/bench_cross_arch.py [--json OUT] [--skip-seed]
Prints a markdown table; the figures in docs/bench/cross-arch.md come from it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from wheeldock import base, engine, multiarch, platforms, project
from wheeldock.baselines import DockerfileInputs, seed_dockerfile
from wheeldock.builder import BuildOptions
from wheeldock.paths import cache_root

REPO = Path(__file__).resolve().parent.parent
CB_TOTEM = REPO / "examples" / "cb-totem"
SERVICES = (
    project.Service(
        "calidda-api", "vcc-totem", ("vcc-totem/requirements.txt",),
        ("python3", "api_wrapper.py"), port=8000, health="/health",
    ),
    project.Service(
        "srv-img", "vcc-totem", ("vcc-totem/requirements.txt",), ("python3", "main.py"),
        port=8001, health="/health",
    ),
)  # fmt: skip
NO_BINARY = ("cffi", "pyyaml")


def _project(dest: Path) -> project.Project:
    shutil.copytree(
        CB_TOTEM / "vcc-totem", dest / "vcc-totem",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )  # fmt: skip
    proj = project.Project(dest, None, SERVICES)
    project.save(proj)
    return proj


def _fresh_cache(shared: Path, folder: Path) -> Path:
    """A new cache sharing only the Debian bases and index (what `wheeldock base` made once)."""
    folder.mkdir(parents=True)
    for name in ("bases", "debian"):
        (shared / name).mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(shared / name)
    return folder


def native(target: platforms.Target, work: Path, shared: Path) -> dict[str, float]:
    """A cold wheeldock build of srv-img for ``target`` (lock + fetch + layers)."""
    os.environ["WHEELDOCK_CACHE"] = str(_fresh_cache(shared, work / f"cache-{target.suffix}"))
    proj = _project(work / f"p-{target.suffix}")
    services = proj.select(["srv-img"])  # one image, as the seed's one Dockerfile
    started = time.monotonic()
    results = multiarch.build(
        proj, services, [target], [f"oci:{work / ('oci-' + target.suffix)}"], BuildOptions()
    )
    cold = time.monotonic() - started
    (proj.root / "vcc-totem" / "main.py").write_text(
        (proj.root / "vcc-totem" / "main.py").read_text() + "\n# change\n"
    )
    started = time.monotonic()
    multiarch.build(
        proj, services, [target], [f"oci:{work / ('oci-' + target.suffix)}"], BuildOptions()
    )
    warm = time.monotonic() - started
    size = sum(p.image.size for r in results for p in r.images)
    return {"cold_s": round(cold, 1), "code_change_s": round(warm, 1), "bytes": size}


def seed(target: platforms.Target, work: Path, base_image: str) -> dict[str, float]:
    """The seed's Dockerfile (srv-img) built with buildx for ``target``, no cache."""
    ctx = work / f"seed-{target.suffix}"
    _project(ctx)
    ca = os.environ.get("SSL_CERT_FILE")
    inputs = DockerfileInputs(
        source="vcc-totem", requirements="vcc-totem/requirements.txt",
        command=("python3", "main.py"), port=8001, health_path="/health",
        base_image=base_image, with_ca=bool(ca), no_binary=NO_BINARY,
    )  # fmt: skip
    (ctx / "Dockerfile").write_text(seed_dockerfile(inputs))
    tag = f"wheeldock-h-bench-seed:{target.suffix}"
    argv = ["buildx", "build", "--platform", target.name, "--network", "host", "--no-cache"]
    if ca:
        argv += ["--secret", f"id=ca,src={ca}"]
    argv += ["--load", "-t", tag, "-f", str(ctx / "Dockerfile"), str(ctx)]
    started = time.monotonic()
    engine.docker(*argv, timeout=7200, env={"DOCKER_BUILDKIT": "1"})
    seconds = time.monotonic() - started
    size = engine.image_size(tag)
    engine.docker("image", "rm", tag, check=False)
    return {"cold_s": round(seconds, 1), "bytes": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-seed", action="store_true")
    args = parser.parse_args(argv)
    shared = cache_root()
    amd64, arm64 = platforms.parse("linux/amd64"), platforms.parse("linux/arm64")
    # The bases first, outside the timings (both approaches start from a cached base).
    base.ensure_rootfs("slim", arch="amd64")
    base.ensure_rootfs("slim", arch="arm64")
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="wheeldock-bench-xarch-") as tmp:
        work = Path(tmp)
        rows["wheeldock amd64 (native)"] = native(amd64, work, shared)
        rows["wheeldock arm64 (no emulation)"] = native(arm64, work, shared)
        os.environ["WHEELDOCK_CACHE"] = str(shared)
        if not args.skip_seed:
            arm_base = base.ensure_image("slim", arch="arm64").tags[0]
            amd_base = base.ensure_image("slim", arch="amd64").tags[0]
            rows["seed Dockerfile arm64 (buildx + qemu, --no-binary cffi,pyyaml)"] = seed(
                arm64, work, arm_base
            )
            rows["seed Dockerfile amd64 (native, --no-binary cffi,pyyaml)"] = seed(
                amd64, work, amd_base
            )
    print("| build (cb-totem) | cold s | code change s | size MB |")
    print("|---|---:|---:|---:|")
    for name, row in rows.items():
        change = f"{row['code_change_s']:.1f}" if "code_change_s" in row else "–"
        print(f"| {name} | {row['cold_s']:.1f} | {change} | {row['bytes'] / 1e6:.0f} |")
    ratio = (
        rows["wheeldock arm64 (no emulation)"]["cold_s"]
        / rows["wheeldock amd64 (native)"]["cold_s"]
    )
    print(f"\narm64 / amd64 (wheeldock, cold): {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
