"""The registry as the shared build cache: wheeldock's ``--cache`` against BuildKit's inline cache.

Two machines are simulated on this one. Machine A builds a stack cold and pushes what it built;
machine B starts with nothing of its own and builds the same inputs, using only what A left in
the registry, to a registry output:

* wheeldock: A runs ``wheeldock build --cache docker://REG/cache-N -o docker://REG/…`` with
  empty ``WHEELDOCK_CACHE`` and ``UV_CACHE_DIR`` folders (the Debian bases copied in: they are
  made once per machine, for every approach alike); B does the same with other empty folders.
* the uv-guide Dockerfile (:func:`wheeldock.bench.baselines.uvguide_dockerfile`): A runs
  ``docker buildx build --build-arg BUILDKIT_INLINE_CACHE=1 --push`` after
  ``docker builder prune --all``; B prunes again, removes A's images from the engine and builds
  with ``--cache-from`` A's pushed image, ``--push``.

Every scenario runs in the same process, alternating, ``--runs`` times (each run in a new
repository, so A is always cold); medians go to ``--json`` and ``--markdown``. The registry is
Debian's ``docker-registry``, started on a free 127.0.0.1 port for the run. Usage::

    python benchmarks/registry_cache.py examples/cb-totem --runs 3 \
        --json docs/bench/registry-cache.json --markdown docs/bench/registry-cache.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wheeldock import project
from wheeldock.bench.baselines import DockerfileInputs, uvguide_dockerfile
from wheeldock.edges.paths import cache_root

WHEELDOCK = [sys.executable, "-m", "wheeldock.cli"]


@dataclass(frozen=True)
class Timing:
    approach: str  # "wheeldock" or "uvguide"
    machine: str  # "A" or "B"
    run: int
    seconds: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def registry() -> Iterator[str]:
    """Debian's docker-registry on a free 127.0.0.1 port, its storage in a temp folder."""
    folder = Path(tempfile.mkdtemp(prefix="wd-bench-registry-"))
    port = _free_port()
    (folder / "config.yml").write_text(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
        f"{folder / 'data'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (folder / "registry.log").open("wb")
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(folder / "config.yml")], stdout=log, stderr=log
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def _machine(folder: Path) -> dict[str, str]:
    """The environment of a machine whose caches are empty but for the Debian bases."""
    cache = folder / "wheeldock"
    shutil.copytree(cache_root() / "bases", cache / "bases", symlinks=True)
    return {**os.environ, "WHEELDOCK_CACHE": str(cache), "UV_CACHE_DIR": str(folder / "uv")}


def _timed(
    argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> float:
    started = time.monotonic()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)
    return time.monotonic() - started


def _wheeldock(root: Path, reg: str, run: int, machine: str, folder: Path) -> float:
    env = _machine(folder / machine)
    return _timed(
        [
            *WHEELDOCK,
            "-C",
            str(root),
            "build",
            "--frozen",
            "--cache",
            f"docker://{reg}/cache-{run}",
            "--output",
            f"docker://{reg}/wd-{run}/{{service}}:{machine.lower()}",
        ],
        env,
    )


def _uvguide_files(root: Path, folder: Path) -> dict[str, Path]:
    """A uv-guide Dockerfile per service, outside the project (the context stays untouched)."""
    files: dict[str, Path] = {}
    for svc in project.load(root).services:
        inputs = DockerfileInputs(
            source=svc.source,
            requirements=svc.requirements[0],
            command=svc.command,
            port=svc.port,
            health_path=svc.health if svc.health.startswith("/") else None,
        )
        path = folder / f"Dockerfile.uvguide.{svc.name}"
        path.write_text(uvguide_dockerfile(inputs))
        files[svc.name] = path
    return files


def _uvguide(root: Path, reg: str, run: int, machine: str, files: dict[str, Path]) -> float:
    """Build every service as machine A (inline cache, pushed) or B (--cache-from A's)."""
    subprocess.run(
        ["docker", "builder", "prune", "--all", "--force"], check=True, capture_output=True
    )
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    seconds = 0.0
    for name, dockerfile in files.items():
        image = f"{reg}/uv-{run}/{name}"
        if machine == "B":  # nothing of A's left in the engine either
            subprocess.run(["docker", "rmi", "--force", f"{image}:a"], capture_output=True)
        argv = [
            "docker", "buildx", "build", "--network", "host", "--secret", f"id=ca,src={ca}",
            "--file", str(dockerfile), "--tag", f"{image}:{machine.lower()}", "--push",
        ]  # fmt: skip
        if machine == "A":
            argv += ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]
        else:
            argv += ["--cache-from", f"{image}:a"]
        seconds += _timed([*argv, str(root)])
    return seconds


def measure(root: Path, runs: int) -> list[Timing]:
    """Every approach on both machines, ``runs`` times, alternating, in one registry."""
    timings: list[Timing] = []
    with registry() as reg, tempfile.TemporaryDirectory(prefix="wd-bench-cache-") as tmp:
        files = _uvguide_files(root, Path(tmp))
        for run in range(runs):
            machines = Path(tmp) / f"run-{run}"
            for machine in ("A", "B"):
                seconds = _wheeldock(root, reg, run, machine, machines)
                timings.append(Timing("wheeldock", machine, run, seconds))
                print(f"run {run}: wheeldock, machine {machine}: {seconds:.2f} s", flush=True)
            for machine in ("A", "B"):
                seconds = _uvguide(root, reg, run, machine, files)
                timings.append(Timing("uvguide", machine, run, seconds))
                print(f"run {run}: uv guide, machine {machine}: {seconds:.2f} s", flush=True)
            shutil.rmtree(machines, ignore_errors=True)
    return timings


def medians(timings: Sequence[Timing]) -> dict[str, dict[str, float]]:
    """Median seconds by approach and machine (pure)."""
    found: dict[str, dict[str, float]] = {}
    for approach in dict.fromkeys(t.approach for t in timings):
        found[approach] = {
            machine: statistics.median(
                t.seconds for t in timings if (t.approach, t.machine) == (approach, machine)
            )
            for machine in ("A", "B")
        }
    return found


def markdown(stack: str, timings: Sequence[Timing], when: str) -> str:
    """The table of medians, with B's share of A's time (pure)."""
    table = medians(timings)
    runs = len({t.run for t in timings})
    lines = [
        f"# The registry as the shared build cache: {stack}",
        "",
        f"{when}, medians of {runs} runs, every approach in the same run "
        "(`benchmarks/registry_cache.py`). Machine A builds cold and pushes; machine B has no "
        "cache of its own and builds the same inputs from what A left in the registry, to a "
        "registry output.",
        "",
        "| approach | machine A (cold) | machine B (from the registry) | B / A |",
        "|---|---:|---:|---:|",
    ]
    names = {
        "wheeldock": "`wheeldock build --cache`",
        "uvguide": "uv-guide Dockerfile, inline cache",
    }
    for approach, by_machine in table.items():
        a, b = by_machine["A"], by_machine["B"]
        lines.append(f"| {names[approach]} | {a:.2f} s | {b:.2f} s | {b / a:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", type=Path, help="a project folder after `wheeldock lock`")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    timings = measure(args.stack.resolve(), args.runs)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.json:
        data = {"stack": args.stack.name, "when": when, "timings": [t.__dict__ for t in timings]}
        args.json.write_text(json.dumps({**data, "medians": medians(timings)}, indent=2) + "\n")
    text = markdown(args.stack.name, timings, when)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
