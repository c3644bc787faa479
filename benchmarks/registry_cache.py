"""The registry as the shared build cache: wheeldock's ``--cache`` against BuildKit's inline cache.

Two machines are simulated on this one. Machine A builds a stack cold and pushes what it built;
machine B starts with nothing of its own and builds the same inputs, using only what A left in
the registry, to a registry output:

* wheeldock: ``wheeldock build --cache docker://REG/cache-N -o docker://REG/…`` with empty
  ``WHEELDOCK_CACHE`` and ``UV_CACHE_DIR`` folders (the Debian bases copied in: they are made
  once per machine, for every approach alike).
* the uv-guide Dockerfile (:func:`wheeldock.bench.baselines.uvguide_dockerfile`):
  ``docker buildx build --build-arg BUILDKIT_INLINE_CACHE=1 --push`` after
  ``docker builder prune --all``, with ``--cache-from`` the image the build before pushed (and
  that image removed from the engine).

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


EVENTS = ("cold", "bump")


@dataclass(frozen=True)
class Timing:
    approach: str  # "wheeldock" or "uvguide"
    event: str  # "cold", or "bump": one pin changed, the cold build's entries in the registry
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
        _remove_images(f"127.0.0.1:{port}/")


def _remove_images(prefix: str) -> None:
    """Remove the engine's images named under ``prefix`` (what the uv-guide builds left)."""
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    mine = [ref for ref in listed if ref.startswith(prefix)]
    if mine:
        subprocess.run(["docker", "rmi", "--force", *mine], capture_output=True, check=False)


def _machine(folder: Path) -> dict[str, str]:
    """The environment of a machine whose caches are empty but for the Debian bases (made
    once per machine, for every approach alike)."""
    cache = folder / "wheeldock"
    cache.mkdir(parents=True)
    (cache / "bases").symlink_to(cache_root() / "bases")  # as `wheeldock bench` shares them
    return {**os.environ, "WHEELDOCK_CACHE": str(cache), "UV_CACHE_DIR": str(folder / "uv")}


def _timed(
    argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> float:
    started = time.monotonic()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)
    return time.monotonic() - started


def _wheeldock(stack: Path, reg: str, run: int, machine: str, folder: Path) -> float:
    """One build on a machine whose own caches are empty (``folder``: new for each build)."""
    return _timed(
        [
            *WHEELDOCK,
            "-C",
            str(stack),
            "build",
            "--cache",
            f"docker://{reg}/cache-{run}",
            "--output",
            f"docker://{reg}/wd-{run}/{{service}}:{machine.lower()}",
        ],
        _machine(folder),
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
            runtime_packages=svc.runtime_packages,
        )
        path = folder / f"Dockerfile.uvguide.{svc.name}"
        path.write_text(uvguide_dockerfile(inputs))
        files[svc.name] = path
    return files


def _uvguide(
    stack: Path, reg: str, image_of: dict[str, Path], tags: tuple[str, str | None]
) -> float:
    """Build every service on an empty BuildKit (pruned first, the last images removed), with
    the inline cache, pushed as ``tags[0]``; ``tags[1]``: the image whose cache it starts from."""
    subprocess.run(
        ["docker", "builder", "prune", "--all", "--force"], check=True, capture_output=True
    )
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    tag, cache_from = tags
    seconds = 0.0
    for name, dockerfile in image_of.items():
        image = f"{reg}/uv/{name}"
        if cache_from is not None:  # nothing of the machine that pushed it is left here
            subprocess.run(
                ["docker", "rmi", "--force", f"{image}:{cache_from}"], capture_output=True
            )
        argv = [
            "docker", "buildx", "build", "--network", "host", "--secret", f"id=ca,src={ca}",
            "--file", str(dockerfile), "--tag", f"{image}:{tag}", "--push",
            "--build-arg", "BUILDKIT_INLINE_CACHE=1",
        ]  # fmt: skip
        if cache_from is not None:
            argv += ["--cache-from", f"{image}:{cache_from}"]
        seconds += _timed([*argv, str(stack)])
    return seconds


def _bump(root: Path, pin: str) -> None:
    """Set ``pin`` (``name==version``) in every requirements file of the stack that has it."""
    name = pin.split("==")[0].lower()
    for svc in project.load(root).services:
        path = root / svc.requirements[0]
        lines = path.read_text().splitlines(keepends=True)
        path.write_text(
            "".join(
                pin + "\n" if line.split("==")[0].strip().lower() == name else line
                for line in lines
            )
        )


def _one_run(root: Path, reg: str, run: int, work: Path, pin: str) -> list[Timing]:
    """Cold, then bumped, each built by machine A then machine B, every build on a machine
    whose own caches are empty (as CI runners start): all they share is the registry."""
    stack = work / "stack"
    shutil.copytree(root, stack, symlinks=True, ignore=shutil.ignore_patterns(".wheeldock"))
    files = _uvguide_files(stack, work)
    timings: list[Timing] = []
    previous: str | None = None  # the uv-guide image whose inline cache the next build uses
    for event in EVENTS:
        if event == "bump":
            _bump(stack, pin)
        for machine in ("A", "B"):
            folder = work / f"{event}-{machine}"
            seconds = _wheeldock(stack, reg, run, machine, folder)
            timings.append(Timing("wheeldock", event, machine, run, seconds))
            shutil.rmtree(folder, ignore_errors=True)
            tag = f"{run}-{event}-{machine.lower()}"
            uv_seconds = _uvguide(stack, reg, files, (tag, previous))
            timings.append(Timing("uvguide", event, machine, run, uv_seconds))
            previous = tag
            print(
                f"run {run} {event}, machine {machine}: wheeldock {seconds:.2f} s, "
                f"uv guide {uv_seconds:.2f} s",
                flush=True,
            )
    return timings


def measure(root: Path, runs: int, pin: str) -> list[Timing]:
    """Every approach and event on both machines, ``runs`` times, in one registry."""
    timings: list[Timing] = []
    with registry() as reg:
        for run in range(runs):
            with tempfile.TemporaryDirectory(prefix="wd-bench-cache-") as tmp:
                timings += _one_run(root, reg, run, Path(tmp), pin)
    return timings


def medians(timings: Sequence[Timing]) -> dict[str, dict[str, float]]:
    """Median seconds by ``approach/event`` and machine (pure)."""
    found: dict[str, dict[str, float]] = {}
    for key in dict.fromkeys(f"{t.approach}/{t.event}" for t in timings):
        found[key] = {
            machine: statistics.median(
                t.seconds
                for t in timings
                if (f"{t.approach}/{t.event}", t.machine) == (key, machine)
            )
            for machine in ("A", "B")
        }
    return found


def markdown(stack: str, timings: Sequence[Timing], when: str, pin: str) -> str:
    """The table of medians, with B's share of A's time (pure)."""
    table = medians(timings)
    runs = len({t.run for t in timings})
    lines = [
        f"# The registry as the shared build cache: {stack}",
        "",
        f"{when}, medians of {runs} runs, every approach in the same run "
        "(`benchmarks/registry_cache.py`). Every build runs on a machine whose own caches are "
        "empty, as CI runners start, and pushes to the registry: all the machines share is the "
        "registry. Machine A builds first, machine B then builds the same inputs. Cold: nothing "
        f"in the registry before A; bump: `{pin}` set, the cold builds' entries in the registry.",
        "",
        "| approach | event | machine A | machine B (from the registry) | B / A |",
        "|---|---|---:|---:|---:|",
    ]
    names = {
        "wheeldock": "`wheeldock build --cache`",
        "uvguide": "uv-guide Dockerfile, inline cache",
    }
    for key, by_machine in table.items():
        approach, event = key.split("/")
        a, b = by_machine["A"], by_machine["B"]
        lines.append(f"| {names[approach]} | {event} | {a:.2f} s | {b:.2f} s | {b / a:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", type=Path, help="a project folder after `wheeldock lock`")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bump", default="idna==3.19", help="the pin the bump event sets")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    timings = measure(args.stack.resolve(), args.runs, args.bump)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.json:
        data = {
            "stack": args.stack.name,
            "when": when,
            "bump": args.bump,
            "timings": [t.__dict__ for t in timings],
        }
        args.json.write_text(json.dumps({**data, "medians": medians(timings)}, indent=2) + "\n")
    text = markdown(args.stack.name, timings, when, args.bump)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
