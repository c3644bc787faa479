"""Sdists compiled in the image's builder base (chrooted, no engine), never on this host."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from support.build import make_sdist

from wheeldock import project
from wheeldock.build import builder, sdists
from wheeldock.deps.pylock import LockedFile
from wheeldock.deps.wheelhouse import Artifact
from wheeldock.edges import engine
from wheeldock.errors import WheeldockError


def _artifact(sdist: Path) -> Artifact:
    sha = hashlib.sha256(sdist.read_bytes()).hexdigest()
    name, version = sdist.name.removesuffix(".tar.gz").rsplit("-", 1)
    return Artifact(name, version, LockedFile(sdist.name, sha, path=sdist), "sdist")


# -- real builds in the builder base ------------------------------------------------------------


@pytest.mark.integration
def test_an_sdist_is_built_in_the_builder_base_once_and_cached(
    build_env: Path, tmp_path: Path
) -> None:
    setup_py = (
        "from setuptools import setup\nsetup(name='okpkg', version='0.1', py_modules=['okpkg'])\n"
    )
    art = _artifact(make_sdist(tmp_path / "dist", "okpkg", "0.1", setup_py))
    house = sdists.BaseWheelhouse(tmp_path / "cache")
    (wheel,) = house.fetch([art], platform="linux/amd64", python="3.11")
    assert wheel.name.startswith("okpkg-0.1-") and wheel.suffix == ".whl"
    before = wheel.stat().st_mtime_ns
    assert house.fetch([art], platform="linux/amd64", python="3.11") == [wheel]
    assert wheel.stat().st_mtime_ns == before


@pytest.mark.integration
def test_a_failing_sdist_build_reports_the_build_output(build_env: Path, tmp_path: Path) -> None:
    setup_py = (
        "import sys\nfrom setuptools import setup\n"
        "if 'bdist_wheel' in sys.argv:\n"
        "    raise SystemExit('failpkg: cannot compile the frobnicator (libfrob.h missing)')\n"
        "setup(name='failpkg', version='0.1', py_modules=['failpkg'])\n"
    )
    art = _artifact(make_sdist(tmp_path / "dist", "failpkg", "0.1", setup_py))
    with pytest.raises(WheeldockError) as err:
        sdists.BaseWheelhouse(tmp_path / "cache").fetch(
            [art], platform="linux/amd64", python="3.11"
        )
    assert "building failpkg 0.1 from its sdist (failpkg-0.1.tar.gz)" in err.value.what
    assert "libfrob.h missing" in err.value.what
    assert not list((tmp_path / "cache" / "built").glob("*/*.whl"))


@pytest.mark.integration
def test_source_built_psycopg2_and_uwsgi_run_on_the_image_base(
    build_env: Path, tmp_path: Path
) -> None:
    engine.require()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("import psycopg2\nprint(psycopg2.__version__)\n")
    (tmp_path / "app" / "requirements.txt").write_text("psycopg2==2.9.10\nuwsgi==2.0.28\n")
    svc = project.Service(
        "pgapp",
        "app",
        ("app/requirements.txt",),
        ("python3", "main.py"),
        no_binary=("psycopg2", "uwsgi"),
    )
    proj = project.Project(tmp_path, None, (svc,))
    project.save(proj)
    tag = "wheeldock-sdists-pgapp:test"
    (result,) = builder.build(proj, proj.services, [f"docker-daemon:{tag}"])
    kinds = [r.kind for r in result.layers]
    assert kinds[:2] == ["base", "libs"] and kinds[-1] == "app"
    # psycopg2 links bookworm's libpq; uwsgi embeds Python: the image gets both libraries
    assert {"libpq5", "libpython3.11"} <= set(result.layers[1].title.split(", "))
    try:
        ran = engine.docker("run", "--rm", tag, "python3", "main.py").stdout
        assert ran.startswith("2.9.10")
        version = engine.docker("run", "--rm", tag, "uwsgi", "--version").stdout
        assert version.strip() == "2.0.28"
    finally:
        engine.docker("rmi", tag, check=False)
