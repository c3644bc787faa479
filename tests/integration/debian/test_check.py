"""``wheeldock check``: images and rootfs folders resolved as ld.so would, without running."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from wheeldock import cli
from wheeldock.debian import archive as debian
from wheeldock.debian import bases as base
from wheeldock.debian import libs

# --------------------------------------------------------------------------- real images

GOOD, BAD = "libsc-check-good:test", "libsc-check-bad:test"


@pytest.fixture(scope="session")
def check_images(
    base_images: dict[str, base.BaseImage],
    source_wheels: dict[str, Path],
    libs_shared_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    """Two images on the slim base with source-built pyyaml, psycopg2 and cffi: BAD without
    their libraries, GOOD with the .debs the scan names (fetched with debian.download_debs)."""
    import os

    slim = base_images["slim"].tags[0]
    context = tmp_path_factory.mktemp("check-images")
    for wheel in source_wheels.values():
        (context / wheel.name).write_bytes(wheel.read_bytes())
    previous = os.environ.get("WHEELDOCK_CACHE")
    os.environ["WHEELDOCK_CACHE"] = str(libs_shared_cache)
    try:
        profile = libs.base_profile("slim", arch="amd64")
        packages = libs.runtime_packages(context, base="slim")
        debian.download_debs(packages, dest=context / "debs", installed=profile.packages)
    finally:
        if previous is None:
            os.environ.pop("WHEELDOCK_CACHE", None)
        else:
            os.environ["WHEELDOCK_CACHE"] = previous
    (context / "Dockerfile.bad").write_text(
        f"FROM {slim}\nCOPY *.whl /w/\n"
        "RUN python3 -m pip install --no-index --no-deps --no-compile /w/*.whl && rm -r /w\n"
    )
    (context / "Dockerfile.good").write_text(
        f"FROM {BAD}\nCOPY debs/ /d/\nRUN dpkg -i /d/*.deb && rm -r /d\n"
    )
    try:
        for name, file in ((BAD, "Dockerfile.bad"), (GOOD, "Dockerfile.good")):
            subprocess.run(
                [
                    "docker",
                    "build",
                    "--network",
                    "host",
                    "-q",
                    "-t",
                    name,
                    "-f",
                    str(context / file),
                    str(context),
                ],
                check=True,
                capture_output=True,
                timeout=600,
            )
        yield GOOD, BAD
    finally:
        subprocess.run(["docker", "rmi", "-f", GOOD, BAD], capture_output=True, check=False)


def _imports(image: str) -> subprocess.CompletedProcess[bytes]:
    code = "import psycopg2, yaml, _cffi_backend; assert yaml.__with_libyaml__"
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "host", image, "python3", "-c", code],
        capture_output=True,
        timeout=120,
    )


@pytest.mark.integration
def test_check_finds_what_a_multistage_build_forgot(
    check_images: tuple[str, str], shared_cache: Path
) -> None:
    _, bad = check_images
    report = libs.check(f"docker-daemon:{bad}")
    assert not report.ok
    assert {(m.soname, m.package) for m in report.missing} == {
        ("libpq.so.5", "libpq5"),
        ("libyaml-0.so.2", "libyaml-0-2"),
    }
    # and the container really cannot import them: the check was right
    run = _imports(bad)
    assert run.returncode != 0 and b"libpq.so.5" in run.stderr


@pytest.mark.integration
def test_check_passes_once_the_scanned_packages_are_installed(
    check_images: tuple[str, str], shared_cache: Path, tmp_path: Path
) -> None:
    good, _ = check_images
    report = libs.check(f"docker-daemon:{good}")
    assert report.ok, report.missing
    assert any("psycopg2" in f for f in report.checked)
    assert _imports(good).returncode == 0
    archive = tmp_path / "good.tar"
    subprocess.run(["docker", "save", "-o", str(archive), good], check=True, timeout=300)
    assert libs.check(f"docker-archive:{archive}").ok


@pytest.mark.integration
def test_the_slim_base_itself_passes(
    base_images: dict[str, base.BaseImage], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", f"docker-daemon:{base_images['slim'].tags[0]}"]) == 0
    assert "every library resolves" in capsys.readouterr().out
