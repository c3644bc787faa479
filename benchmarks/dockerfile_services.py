"""A service built from its own Dockerfile: the user's Dockerfile against the one ``init`` makes.

For a case of the corpus (``tests/data/dockerfiles/<case>``, a compose service with ``build:``),
two copies are built with BuildKit in the same run, alternating: the user's Dockerfile as it is,
and ``Dockerfile.<service>`` that ``wheeldock init`` writes from it. Events: cold (after
``docker builder prune --all``), a code change (the entry module edited), a one-pin bump.

Both start from the same base: the case's ``FROM`` image with this machine's proxy CA added (a
``pip install`` in the user's Dockerfile reaches PyPI only through the proxy, and it has no
secret to take the CA from); the copies are the case's files with that one ``FROM`` changed,
before ``init`` runs. ``--base`` names another image to start both from, where the case's own
is not on this machine (a ``python:3.12-slim`` case on a machine with 3.13 only). After each bump
the bumped version is read from both images, so a build that did not take the new pin fails the
run instead of being timed. Usage::

    python benchmarks/dockerfile_services.py flask-gunicorn --bump flask==3.0.2 --runs 3 \
        --markdown docs/bench/dockerfile-services.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "dockerfiles"
EVENTS = ("cold", "code", "bump")
CA_BASE = "wd-bench-ca/base:latest"


def _run(argv: Sequence[str], cwd: Path | None = None) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=1800)


def _timed(argv: Sequence[str], cwd: Path) -> float:
    started = time.monotonic()
    _run(argv, cwd)
    return time.monotonic() - started


def ca_base(image: str, folder: Path) -> None:
    """``image`` with the proxy CA trusted by pip and Python, tagged :data:`CA_BASE`."""
    ca = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
    shutil.copy(ca, folder / "ca.crt")
    (folder / "Dockerfile").write_text(
        f"FROM {image}\nCOPY ca.crt /usr/local/share/wd-bench-ca.crt\n"
        "ENV PIP_CERT=/usr/local/share/wd-bench-ca.crt "
        "SSL_CERT_FILE=/usr/local/share/wd-bench-ca.crt\n"
    )
    _run(["docker", "build", "--network", "host", "--tag", CA_BASE, str(folder)])


def _from_image(dockerfile: Path) -> str:
    for line in dockerfile.read_text().splitlines():
        if line.upper().startswith("FROM "):
            return line.split()[1]
    raise SystemExit(f"{dockerfile}: no FROM line")


def copies(case: str, work: Path) -> tuple[Path, Path]:
    """The user's copy and the converted copy of ``case``, both from :data:`CA_BASE`."""
    source = CORPUS / case
    original, converted = work / "original", work / "converted"
    for dest in (original, converted):
        shutil.copytree(source, dest)
        dockerfile = dest / "Dockerfile"
        text = dockerfile.read_text()
        dockerfile.write_text(text.replace(f"FROM {_from_image(dockerfile)}", f"FROM {CA_BASE}", 1))
    _run([sys.executable, "-m", "wheeldock.cli", "-C", str(converted), "init"])
    return original, converted


def _build(root: Path, dockerfile: str, tag: str) -> float:
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    argv = ["docker", "build", "--network", "host", "--secret", f"id=ca,src={ca}"]
    return _timed([*argv, "--file", dockerfile, "--tag", tag, "."], root)


def _change(root: Path, event: str, bump: str) -> None:
    if event == "code":
        entry = next(p for p in sorted(root.glob("*.py")))
        entry.write_text(entry.read_text() + "\n# a code change\n")
    elif event == "bump":
        reqs = root / "requirements.txt"
        name = bump.split("==")[0].lower()
        lines = [
            bump if line.split("==")[0].strip().lower() == name else line
            for line in reqs.read_text().splitlines()
        ]
        reqs.write_text("\n".join(lines) + "\n")


def _check_bumped(tag: str, bump: str) -> None:
    """Fail unless the image ``tag`` holds the version ``bump`` pins (untimed)."""
    name, version = bump.split("==")
    probe = f"import importlib.metadata as m; print(m.version({name!r}))"
    found = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python", tag, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.strip()
    if found != version:
        raise SystemExit(f"{tag} holds {name} {found} after the bump to {version}")


def measure(
    case: str, runs: int, bump: str, base: str | None = None
) -> dict[str, dict[str, list[float]]]:
    """Seconds per approach and event, ``runs`` times each."""
    found: dict[str, dict[str, list[float]]] = {
        "original": {e: [] for e in EVENTS},
        "converted": {e: [] for e in EVENTS},
    }
    service = case.replace("/", "-")
    with tempfile.TemporaryDirectory(prefix="wd-bench-df-") as tmp:
        ca_base(base or _from_image(CORPUS / case / "Dockerfile"), Path(tmp))
        for run in range(runs):
            work = Path(tmp) / f"run-{run}"
            original, converted = copies(case, work)
            generated = next(
                p.name for p in converted.glob("Dockerfile.*") if p.suffix != ".dockerignore"
            )
            for event in EVENTS:
                if event == "cold":
                    _run(["docker", "builder", "prune", "--all", "--force"])
                for name, root, dockerfile in (
                    ("original", original, "Dockerfile"),
                    ("converted", converted, generated),
                ):
                    _change(root, event, bump)
                    tag = f"wd-bench-df/{service}-{name}:latest"
                    seconds = _build(root, dockerfile, tag)
                    found[name][event].append(seconds)
                    if event == "bump":
                        _check_bumped(tag, bump)
                    print(f"run {run} {event}: {name} {seconds:.2f} s", flush=True)
    _run(
        ["docker", "rmi", "--force", CA_BASE, *(f"wd-bench-df/{service}-{n}:latest" for n in found)]
    )
    return found


def markdown(case: str, found: dict[str, dict[str, list[float]]], bump: str) -> str:
    """The medians and the ratios (pure)."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    runs = len(found["original"]["cold"])
    lines = [
        f"# A Dockerfile-built service: `{case}`",
        "",
        f"{when}, medians of {runs} runs, both in the same run "
        "(`benchmarks/dockerfile_services.py`): the user's Dockerfile, and the "
        "`Dockerfile.<service>` `wheeldock init` writes from it, built by BuildKit from the same "
        f"base. Code: the entry module edited; bump: `{bump}`.",
        "",
        "| event | the user's Dockerfile | `wheeldock init`'s | ratio |",
        "|---|---:|---:|---:|",
    ]
    for event in EVENTS:
        a = statistics.median(found["original"][event])
        b = statistics.median(found["converted"][event])
        lines.append(f"| {event} | {a:.2f} s | {b:.2f} s | {a / b:.1f}× |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", help="a folder of tests/data/dockerfiles")
    parser.add_argument("--bump", required=True, help="the pin the bump sets (NAME==VERSION)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", help="the image both copies start from (default: the case's)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    found = measure(args.case, args.runs, args.bump, args.base)
    text = markdown(args.case, found, args.bump)
    if args.json:
        args.json.write_text(json.dumps({"case": args.case, "seconds": found}, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
