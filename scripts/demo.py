"""The README's main job: the cb-totem stack brought up the wheeldock way, with timings.

1. base images from Debian packages (`wheeldock base build slim builder`; cached);
2. a working copy of examples/cb-totem in .wheeldock/demo (the example itself stays as it is);
3. `wheeldock init` there (Dockerfiles, .dockerignore, compose patch, wheeldock.toml);
4. `wheeldock up`: BuildKit builds, compose starts, time until each service answers /health;
5. the native builder: `wheeldock build` writes both images without running a container and
   loads them; the stack is restarted on them and timed again;
6. a sample response from each service.

The stack is left running; `wheeldock -C .wheeldock/demo/cb-totem down` stops it.
Usage: python scripts/demo.py [--keep-copy] [--no-native]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "cb-totem"
DEMO = REPO / ".wheeldock" / "demo" / "cb-totem"
UPSTREAM_PID = REPO / ".wheeldock" / "demo" / "fake-upstream.pid"
WHEELDOCK = [sys.executable, "-m", "wheeldock.cli"]
console = Console(highlight=False)


def step(text: str) -> None:
    console.rule(f"[bold cyan]{text}")


def wheeldock(*args: str, json_out: bool = False) -> Any:
    cmd = [*WHEELDOCK, *args]
    console.print(f"[dim]$ wheeldock {' '.join(args)}[/dim]")
    if json_out:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            console.print(proc.stdout)
            raise SystemExit(f"demo: `wheeldock {' '.join(args)}` failed (exit {proc.returncode})")
        return json.loads(proc.stdout)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise SystemExit(f"demo: `wheeldock {' '.join(args)}` failed (exit {proc.returncode})")
    return None


def fresh_copy() -> None:
    """A copy of the example; re-made when the example changed, so re-runs are cheap."""
    if DEMO.exists():
        subprocess.run([*WHEELDOCK, "-C", str(DEMO), "down"], capture_output=True)
        shutil.rmtree(DEMO)
    DEMO.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        EXAMPLE, DEMO, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".wheeldock")
    )


def start_fake_upstream() -> None:
    """The kiosk API's upstream, on 127.0.0.1:9000 (calidda-api's default UPSTREAM_URL)."""
    if UPSTREAM_PID.exists():
        try:
            os.kill(int(UPSTREAM_PID.read_text()), 0)
            return
        except (OSError, ValueError):
            pass
    proc = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE / "fake_upstream.py"),
            "--host",
            "127.0.0.1",
            "--port",
            "9000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    UPSTREAM_PID.write_text(str(proc.pid))


def timings_table(title: str, result: dict[str, Any]) -> Table:
    table = Table(title=title, caption="answers/healthy: seconds after `docker compose up -d`")
    for col in ("service", "build", "answers /health", "Docker healthy"):
        table.add_column(col, justify="right" if col != "service" else "left")
    for svc in result.get("services", []):
        table.add_row(
            svc["name"],
            _s(svc.get("build_s")),
            _s(svc.get("answer_s")),
            _s(svc.get("healthy_s")),
        )
    return table


def _s(value: Any) -> str:
    return "–" if value is None else f"{float(value):.2f} s"


def sample_responses() -> None:
    with httpx.Client(timeout=10) as client:
        for label, url in (
            ("calidda-api", "http://127.0.0.1:8000/health"),
            ("calidda-api", "http://127.0.0.1:8000/accounts/123456/balance"),
            ("srv-img", "http://127.0.0.1:8001/health"),
            ("srv-img", "http://127.0.0.1:8001/img"),
            ("srv-img", "http://127.0.0.1:8001/img/logo.png?w=64"),
        ):
            response = client.get(url)
            kind = response.headers.get("content-type", "")
            body = (
                response.text[:160]
                if kind.startswith("application/json")
                else f"<{len(response.content)} bytes of {kind}>"
            )
            console.print(
                f"[bold]{label}[/] GET {url.split('8001')[-1].split('8000')[-1]} → {response.status_code} {body}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-native", action="store_true", help="skip the native builder step")
    args = parser.parse_args()
    t_all = time.perf_counter()

    step("1. Base images from Debian packages (cached after the first run)")
    wheeldock("base", "build", "slim", "builder")

    step("2. A working copy of examples/cb-totem")
    fresh_copy()
    start_fake_upstream()
    console.print(f"copy: {DEMO.relative_to(REPO)}; fake upstream on 127.0.0.1:9000")

    step("3. wheeldock init: prebuilt-wheel Dockerfiles, .dockerignore, compose patch")
    wheeldock("-C", str(DEMO), "init")

    step("4. wheeldock up: build with BuildKit, start, wait for /health")
    result = wheeldock("-C", str(DEMO), "up", "--json", json_out=True)
    console.print(timings_table("Docker path (wheeldock init + up)", result))

    if not args.no_native:
        step("5. The native builder: OCI images written without running a container")
        wheeldock("-C", str(DEMO), "lock")
        t0 = time.perf_counter()
        built = wheeldock(
            "-C",
            str(DEMO),
            "build",
            "--json",
            *[f"--output=docker-daemon:{ref}" for ref in _compose_images()],
            json_out=True,
        )
        console.print(
            f"native build of both services (wall clock, CLI included): {time.perf_counter() - t0:.2f} s"
        )
        _layer_table(built)
        result = wheeldock("-C", str(DEMO), "up", "--no-build", "--json", json_out=True)
        console.print(timings_table("Native images (wheeldock build + up --no-build)", result))

    step("6. Sample responses")
    sample_responses()
    console.print(
        f"\n[green]cb-totem is up[/] (demo took {time.perf_counter() - t_all:.0f} s). "
        f"Stop it with: wheeldock -C {DEMO.relative_to(REPO)} down"
    )
    return 0


def _compose_images() -> list[str]:
    from wheeldock import project
    from wheeldock.compose import files as compose

    data = compose.load(compose.find_files(DEMO)[0]).services
    return [str(data[s.name]["image"]) for s in project.load(DEMO).services]


def _layer_table(built: Any) -> None:
    services = built.get("services", built) if isinstance(built, dict) else built
    table = Table(title="native images")
    for col in ("service", "digest", "layers", "new layers"):
        table.add_column(col)
    for svc in services:
        layers = svc.get("layers", [])
        table.add_row(
            str(svc.get("service") or svc.get("name")),
            str(svc.get("digest", ""))[:19],
            str(len(layers)),
            str(sum(1 for layer in layers if not layer.get("cached", False))),
        )
    console.print(table)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
