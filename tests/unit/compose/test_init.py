"""``wheeldock init``: plan, apply, idempotence, dry run, revert, and bad input changing nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from support.env import environ
from support.projects import write_files
from support.stacks import StackCopy

from wheeldock import cli, project
from wheeldock.compose import plan as init
from wheeldock.compose import up
from wheeldock.edges import process
from wheeldock.project import Service

MakeStack = Callable[[str], StackCopy]


def _scanner(
    root: Path, service: Service, files: tuple[str, ...], planned: Mapping[str, str]
) -> tuple[tuple[str, ...], str]:
    """Stands in for the ELF scan (which needs the network) in the tests that are not about it."""
    return ("libffi8",) if "cffi" in service.no_binary else (), "table"


@pytest.fixture(autouse=True)
def _no_host_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(init, "runtime_packages", _scanner)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_init_writes_dockerfiles_dockerignore_config_and_patches_compose(
    stack_copy: MakeStack,
) -> None:
    stack = stack_copy("cb-totem")
    assert stack.run("init") == 0
    root = stack.root
    assert (root / "Dockerfile.calidda-api").is_file() and (root / "Dockerfile.srv-img").is_file()
    assert "**/__pycache__" in (root / ".dockerignore").read_text()
    patched = (root / "docker-compose.yaml").read_text()
    assert "dockerfile: Dockerfile.calidda-api" in patched
    assert f"image: {root.name}-calidda-api:wheeldock" in patched
    assert "pip install" not in patched and "./vcc-totem:/src" not in patched
    assert "network: host" in patched
    proj = project.load(root)
    assert [s.name for s in proj.services] == ["calidda-api", "srv-img"]
    backup = root / init.BACKUP_DIR / "files" / "docker-compose.yaml"
    assert backup.read_bytes() == stack.original_compose["docker-compose.yaml"]
    manifest = json.loads((root / init.MANIFEST).read_text())["files"]
    assert set(manifest) == {
        "Dockerfile.calidda-api",
        "Dockerfile.srv-img",
        ".dockerignore",
        "docker-compose.yaml",
        "wheeldock.toml",
    }
    assert manifest["docker-compose.yaml"]["written_sha256"] == init.sha256(patched.encode())


def test_ca_path_never_goes_into_the_compose_file(stack_copy: MakeStack, tmp_path: Path) -> None:
    stack = stack_copy("flask")
    ca = tmp_path / "proxy-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with environ({"SSL_CERT_FILE": str(ca)}):
        assert stack.run("init", "--ca-cert", str(ca)) == 0
    patched = (stack.root / "compose.yaml").read_text()
    assert str(ca) not in patched
    assert "secrets" not in patched


def test_second_init_changes_nothing_and_says_so(
    stack_copy: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_copy("cb-totem")
    assert stack.run("init") == 0
    before = snapshot(stack.root)
    capsys.readouterr()
    assert stack.run("init") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert snapshot(stack.root) == before


def test_revert_restores_compose_byte_for_byte_and_removes_generated_files(
    stack_copy: MakeStack,
) -> None:
    stack = stack_copy("worker")
    before = snapshot(stack.root)
    assert stack.run("init") == 0
    assert snapshot(stack.root) != before
    assert stack.run("init", "--revert") == 0
    assert snapshot(stack.root) == before


def test_packages_on_the_command_line_become_a_requirements_file_that_revert_removes(
    stack_copy: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_copy("adhoc")
    before = snapshot(stack.root)
    assert stack.run("init", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    files = {f["path"]: (f["kind"], f["action"]) for f in summary["files"]}
    assert files["requirements-api.txt"] == ("requirements", "create")
    written = (stack.root / "requirements-api.txt").read_text().splitlines()
    assert [line for line in written if not line.startswith("#")] == ["fastapi", "uvicorn>=0.30"]
    services = {s["name"]: s for s in summary["services"]}
    assert services["api"]["requirements"] == ["requirements-api.txt"]
    assert services["api"]["port"] == stack.port("API_PORT")  # `--port $${API_PORT}`
    assert services["jobs"]["requirements"] == ["jobs/pyproject.toml"]
    script = "python prepare.py && exec uvicorn main:app --host 127.0.0.1 --port ${API_PORT}"
    assert services["api"]["command"] == ["/bin/sh", "-c", script]
    assert (
        f"CMD {json.dumps(['/bin/sh', '-c', script])}"
        in (stack.root / "Dockerfile.api").read_text()
    )
    assert "libyaml-0-2" in services["jobs"]["runtime_packages"]  # its command's apt-get install
    assert services["jobs"]["command"] == [
        "/bin/sh",
        "-c",
        "# What the container ran at every start before wheeldock.\nset -e\nexec python -m jobs",
    ]  # the script's own lines, less its installs
    assert services["shop"]["requirements"] == ["shop/uv.lock"]  # `uv sync`: its locked packages
    assert services["shop"]["command"][:2] == ["uvicorn", "shop:app"]  # `uv run` is not needed
    assert services["shop"]["port"] == stack.port("SHOP_PORT")
    shop = (stack.root / "Dockerfile.shop").read_text()
    assert "uv sync --frozen --no-dev --no-install-project --project /build/shop" in shop
    assert "source=shop/pyproject.toml,target=/build/shop/pyproject.toml" in shop
    assert "os.environ.get('SHOP_PORT'" in shop  # the health check follows the port variable
    assert services["cart"]["requirements"] == ["cart/poetry.lock"]  # `poetry install`
    assert services["cart"]["command"][:2] == ["uvicorn", "cart:app"]  # `poetry run` is not needed
    cart = (stack.root / "Dockerfile.cart").read_text()
    assert "poetry export --only main --without-hashes" in cart  # read by Poetry itself
    assert services["desk"]["requirements"] == ["desk/Pipfile.lock"]  # `pipenv install --deploy`
    assert (
        "pipenv requirements > /tmp/requirements.txt"
        in (stack.root / "Dockerfile.desk").read_text()
    )
    assert "legacy" not in services
    (legacy,) = [w for w in summary["warnings"] if "legacy" in w]
    assert "no pyproject.toml" in legacy
    assert "requirements-api.txt" in (stack.root / "Dockerfile.api").read_text()

    assert stack.run("init", "--revert") == 0
    assert snapshot(stack.root) == before


def test_init_will_not_overwrite_a_requirements_file_of_the_same_name_it_did_not_write(
    stack_copy: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_copy("adhoc")
    (stack.root / "requirements-api.txt").write_text("django\n")
    before = snapshot(stack.root)
    assert stack.run("init") != 0
    err = capsys.readouterr().err
    assert "requirements-api.txt exists and is not the one init would write" in err
    assert "rename or delete" in err
    assert snapshot(stack.root) == before


def _python_stack(root: Path, image: str) -> None:
    (root / "app").mkdir()
    (root / "app" / "r.txt").write_text("six\n")
    (root / "app" / "a.py").write_text("")
    (root / "compose.yaml").write_text(
        f"services:\n  a:\n    image: {image}\n    working_dir: /app\n"
        "    command: sh -c 'pip install -r r.txt && python a.py'\n    volumes: [./app:/app]\n"
    )


def test_a_service_keeps_the_python_of_its_image(tmp_path: Path) -> None:
    _python_stack(tmp_path, "python:3.13-slim")
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    assert project.load(tmp_path).service("a").python == "3.13"
    dockerfile = (tmp_path / "Dockerfile.a").read_text()
    assert "FROM wheeldock/python:3.13-builder AS builder" in dockerfile
    assert "FROM wheeldock/python:3.13-slim\n" in dockerfile


def test_a_python_no_debian_base_carries_is_built_on_the_official_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _python_stack(tmp_path, "python:3.12-slim")
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    assert project.load(tmp_path).service("a").python == "3.12"
    assert "a: Python 3.12 kept" in " ".join(capsys.readouterr().out.split())
    dockerfile = (tmp_path / "Dockerfile.a").read_text()
    assert "FROM python:3.12 AS builder" in dockerfile
    assert "FROM python:3.12-slim\n" in dockerfile
    # the venv links to the interpreter both official images have at the same path
    assert "venv --python python3 /opt/venv" in dockerfile


def test_init_python_moves_the_services_to_the_version_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _python_stack(tmp_path, "python:3.12-slim")
    assert cli.main(["-C", str(tmp_path), "init", "--python", "3.11"]) == 0
    assert project.load(tmp_path).service("a").python == "3.11"
    assert "moved from Python 3.12 to 3.11, as asked" in " ".join(capsys.readouterr().out.split())
    assert "FROM wheeldock/python:3.11-slim\n" in (tmp_path / "Dockerfile.a").read_text()


def test_init_python_refuses_what_is_not_a_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _python_stack(tmp_path, "python:3.12-slim")
    assert cli.main(["-C", str(tmp_path), "init", "--python", "latest"]) == 2
    assert "--python latest: not a Python version" in capsys.readouterr().err
    assert not (tmp_path / "Dockerfile.a").exists()


def test_revert_with_nothing_to_revert_is_a_clear_error(
    stack_copy: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_copy("flask")
    assert stack.run("init", "--revert") != 0
    assert "nothing to revert" in capsys.readouterr().err


def test_revert_refuses_a_file_edited_since_init_unless_forced(
    stack_copy: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_copy("nested")
    before = snapshot(stack.root)
    assert stack.run("init") == 0
    dockerfile = stack.root / "Dockerfile.api"
    dockerfile.write_text(dockerfile.read_text() + "LABEL mine=yes\n")
    edited = snapshot(stack.root)
    capsys.readouterr()
    assert stack.run("init", "--revert") != 0
    assert "Dockerfile.api" in capsys.readouterr().err
    assert snapshot(stack.root) == edited  # refused: nothing changed
    assert stack.run("init", "--revert", "--force") == 0
    assert snapshot(stack.root) == before


def test_dry_run_prints_a_unified_diff_and_writes_nothing(
    stack_copy: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_copy("flask")
    before = snapshot(stack.root)
    assert stack.run("init", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "--- a/compose.yaml" in out and "+++ b/compose.yaml" in out
    assert "-    command: >-" in out
    assert "+++ b/Dockerfile.web" in out
    assert snapshot(stack.root) == before


def test_user_edits_to_wheeldock_toml_win_on_the_next_init(stack_copy: MakeStack) -> None:
    stack = stack_copy("flask")
    assert stack.run("init") == 0
    config = stack.root / "wheeldock.toml"
    config.write_text(config.read_text().replace('health = "/healthz"', 'health = "tcp"'))
    assert stack.run("init") == 0
    assert "socket.create_connection" in (stack.root / "Dockerfile.web").read_text()
    assert 'health = "tcp"' in config.read_text()
    assert stack.run("init", "--revert") == 0  # the toml edit was taken in: no refusal


def test_an_edited_dockerfile_is_kept_when_init_runs_again(stack_copy: MakeStack) -> None:
    stack = stack_copy("flask")
    assert stack.run("init") == 0
    config = stack.root / "wheeldock.toml"
    config.write_text(config.read_text().replace("port = 5000", "port = 5001"))
    dockerfile = stack.root / "Dockerfile.web"
    mine = dockerfile.read_text() + "LABEL mine=yes\n"
    dockerfile.write_text(mine)
    p = init.plan(stack.root)
    change = next(c for c in p.changes if c.path == "Dockerfile.web")
    assert not change.changed and "edited" in change.note
    assert any("Dockerfile.web" in w for w in p.warnings)


def test_existing_dockerignore_is_merged_and_restored_on_revert(stack_copy: MakeStack) -> None:
    stack = stack_copy("cb-totem")
    (stack.root / ".dockerignore").write_text("secrets/\n")
    before = snapshot(stack.root)
    assert stack.run("init") == 0
    merged = (stack.root / ".dockerignore").read_text()
    assert merged.startswith("secrets/\n") and "**/.venv" in merged
    assert stack.run("init", "--revert") == 0
    assert snapshot(stack.root) == before


def test_no_binary_flag_reaches_config_dockerfile_and_runtime_packages(
    stack_copy: MakeStack,
) -> None:
    stack = stack_copy("worker")
    assert stack.run("init", "--no-binary", "cffi,pyyaml") == 0
    svc = project.load(stack.root).service("worker")
    assert svc.no_binary == ("cffi", "pyyaml")
    text = (stack.root / "Dockerfile.worker").read_text()
    assert "--no-binary cffi --no-binary pyyaml" in text and "libffi8" in text


def test_json_output_lists_services_and_file_actions(
    stack_copy: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_copy("nested")
    assert stack.run("init", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["services"][0]["name"] == "api"
    assert data["services"][0]["health"] == "tcp"
    assert {f["path"]: f["action"] for f in data["files"]}["compose.yaml"] == "update"


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (
            lambda root: (root / "compose.yaml").write_text("services:\n  web:\n  image: [x\n"),
            "line 4, column 1",
        ),
        (lambda root: (root / "web" / "requirements.txt").unlink(), "requirements.txt"),
        (
            lambda root: (root / "compose.yaml").write_text("services:\n  db:\n    image: redis\n"),
            "no Python service",
        ),
    ],
    ids=["invalid-yaml", "missing-requirements", "no-python-service"],
)
def test_bad_input_fails_with_a_clear_error_and_changes_nothing(
    stack_copy: MakeStack,
    capsys: pytest.CaptureFixture[str],
    breakage: Callable[[Path], object],
    expected: str,
) -> None:
    stack = stack_copy("flask")
    breakage(stack.root)
    before = snapshot(stack.root)
    assert stack.run("init") != 0
    err = capsys.readouterr().err
    assert expected in err and "fix:" in err
    assert snapshot(stack.root) == before


def test_read_only_folder_fails_and_changes_nothing(stack_copy: MakeStack) -> None:
    stack = stack_copy("flask")
    before = snapshot(stack.root)
    env = {**os.environ, "PYTHONPATH": str(Path(init.__file__).parent.parent)}
    argv = [
        sys.executable,
        "-c",
        "import sys; from wheeldock.compose import plan as init; "
        "from wheeldock.errors import WheeldockError\n"
        "init.runtime_packages = lambda root, svc, files, planned: ((), 'table')\n"
        "try:\n"
        "    init.apply(init.plan(__import__('pathlib').Path(sys.argv[1])))\n"
        "except WheeldockError as exc:\n"
        "    print(exc.message, file=sys.stderr); sys.exit(3)\n",
        str(stack.root),
    ]
    if os.geteuid() == 0:
        # root writes anywhere; without the capabilities that let it, a 0555 folder is read-only.
        argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", *argv]
    stack.root.chmod(0o555)
    result = subprocess.run(argv, env=env, capture_output=True, check=False)
    try:
        assert result.returncode == 3, result.stderr.decode()
        assert "cannot write in the project folder" in result.stderr.decode()
        assert snapshot(stack.root) == before
    finally:
        stack.root.chmod(0o755)


def test_revert_after_a_generated_file_was_deleted_still_restores(stack_copy: MakeStack) -> None:
    stack = stack_copy("cb-totem")
    before = snapshot(stack.root)
    assert stack.run("init") == 0
    (stack.root / "Dockerfile.srv-img").unlink()
    assert stack.run("init", "--revert") == 0
    assert snapshot(stack.root) == before


def test_plan_reads_the_backup_so_a_patched_compose_is_still_understood(
    stack_copy: MakeStack,
) -> None:
    stack = stack_copy("cb-totem")
    assert stack.run("init") == 0
    shutil.copy(stack.root / "wheeldock.toml", stack.root / "kept.toml")
    (stack.root / "wheeldock.toml").unlink()  # forces discovery again, from the backup
    p = init.plan(stack.root)
    assert [f.service.name for f in p.findings] == ["calidda-api", "srv-img"]
    assert {c.path: c.action for c in p.changes}["docker-compose.yaml"] == "unchanged"


def test_runtime_packages_fall_back_to_the_table_without_the_libs_module(
    monkeypatch: pytest.MonkeyPatch, stack_copy: MakeStack
) -> None:
    monkeypatch.undo()  # the real runtime_packages
    real_import = init.importlib.import_module

    def no_libs(name: str) -> object:
        if name == "wheeldock.debian.libs":
            raise ImportError(name)
        return real_import(name)

    monkeypatch.setattr(init.importlib, "import_module", no_libs)
    stack = stack_copy("worker")
    svc = Service(
        name="worker",
        source="worker",
        requirements=("worker/requirements.txt",),
        command=("python", "-m", "jobs"),
        no_binary=("cffi",),
    )
    assert init.runtime_packages(stack.root, svc, ("worker/requirements.txt",)) == (
        ("libffi8",),
        "table",
    )


def test_a_dockerfile_init_did_not_write_is_named_and_replaced_only_with_force(
    stack_copy: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_copy("flask")
    mine = stack.root / "Dockerfile.web"
    mine.write_text("FROM python:3.11-slim\n# my own build\n")
    before = snapshot(stack.root)
    backup = f"{init.BACKUP_DIR}/files/Dockerfile.web"

    assert stack.run("init", "--dry-run", "--json") == 0
    files = {f["path"]: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert files["Dockerfile.web"]["action"] == "update"
    assert "yours" in files["Dockerfile.web"]["note"] and backup in files["Dockerfile.web"]["note"]

    assert stack.run("init") == 1
    out, err = capsys.readouterr()
    assert "Dockerfile.web" in out and "yours" in out  # the files table, shown before refusing
    assert "Dockerfile.web is yours (init did not write it)" in err and backup in err
    assert "Dockerfile.web: yours (init did not write it), and init would replace it" in err
    assert "wheeldock init --force" in err and "Traceback" not in err
    assert snapshot(stack.root) == before  # refused: nothing written

    assert stack.run("init", "--force") == 0
    assert "FROM python:3.11-slim\n# my own build" not in mine.read_text()
    assert (stack.root / backup).read_text() == "FROM python:3.11-slim\n# my own build\n"
    assert stack.run("init") == 0  # init's own file now: no refusal
    assert stack.run("init", "--revert") == 0
    assert snapshot(stack.root) == before


def test_a_services_own_build_section_is_named_as_replaced_with_its_backup(
    stack_copy: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_copy("flask")
    compose_file = stack.root / "compose.yaml"
    text = compose_file.read_text()
    compose_file.write_text(
        text.replace("    working_dir: /app\n", "    build: ./web\n    working_dir: /app\n")
    )
    before = snapshot(stack.root)
    assert stack.run("init", "--dry-run", "--json") == 0
    files = {f["path"]: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert files["compose.yaml"]["note"] == (
        f"the build: section of web is replaced; the original is kept in {init.BACKUP_DIR}"
        "/files/compose.yaml"
    )
    assert files["Dockerfile.web"]["note"] == ""  # a new file: nothing of the user's replaced
    assert stack.run("init") == 0
    out = capsys.readouterr().out  # the files table: its note column may wrap
    assert "build:" in out and "replaced" in out
    assert "dockerfile: Dockerfile.web" in compose_file.read_text()
    assert stack.run("init", "--revert") == 0
    assert snapshot(stack.root) == before


def test_a_curl_healthcheck_is_replaced_by_the_python_check(stack_copy: MakeStack) -> None:
    stack = stack_copy("flask")
    compose_file = stack.root / "compose.yaml"
    compose_file.write_text(
        compose_file.read_text().replace(
            "    restart: unless-stopped\n",
            "    restart: unless-stopped\n"
            "    healthcheck:\n"
            '      test: ["CMD", "curl", "-f", "http://localhost:5000/healthz"]\n'
            "      interval: 10s\n",
        )
    )
    assert stack.run("init") == 0
    text = compose_file.read_text()
    assert "curl" not in text
    assert '      test: [CMD, python3, -c, "import os, urllib.request as u;' in text
    assert "      interval: 10s\n" in text  # the user's settings stay


def test_a_code_mount_merged_in_from_an_anchor_is_dropped_from_the_service_only(
    tmp_path: Path,
) -> None:
    compose = (
        "x-common: &common\n  image: python:3.11-slim\n  working_dir: /app\n"
        "  volumes:\n    - ./app:/app\n    - data:/data\n"
        "services:\n  a:\n    <<: *common\n"
        "    command: sh -c 'pip install -r r.txt && python a.py'\n"
        "  tools:\n    <<: *common\n    image: busybox\n    command: sleep 1\n"
        "volumes:\n  data:\n"
    )
    write_files(tmp_path, {"app/r.txt": "six\n", "app/a.py": "", "compose.yaml": compose})
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    from wheeldock.compose import files

    services = files.merged_services([files.load(tmp_path / "compose.yaml")])
    assert services["a"]["volumes"] == ["data:/data"]  # the code comes from the image
    assert services["tools"]["volumes"] == ["./app:/app", "data:/data"]  # the anchor is shared
    assert services["a"]["image"] == f"{tmp_path.name}-a:wheeldock"


def _sdist(folder: Path, name: str, pkg_info: str) -> None:
    import io
    import tarfile

    data = pkg_info.encode()
    setup = b"open('/tmp/wheeldock-ran-setup-py', 'w')\n"
    with tarfile.open(folder / f"{name}-1.0.tar.gz", "w:gz") as tar:
        for member, content in ((f"{name}-1.0/PKG-INFO", data), (f"{name}-1.0/setup.py", setup)):
            info = tarfile.TarInfo(member)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def _stack_with(root: Path, requirements: str) -> None:
    (root / "app" / "dist").mkdir(parents=True)
    (root / "app" / "r.txt").write_text(requirements)
    (root / "app" / "a.py").write_text("")
    _sdist(root / "app" / "dist", "legacy", "Metadata-Version: 2.1\nName: legacy\nVersion: 1.0\n")
    _sdist(
        root / "app" / "dist",
        "modern",
        "Metadata-Version: 2.2\nName: modern\nVersion: 1.0\nRequires-Dist: six\n",
    )
    (root / "compose.yaml").write_text(
        "services:\n  a:\n    image: python:3.11-slim\n    working_dir: /app\n"
        "    command: sh -c 'pip install -r r.txt && python a.py'\n    volumes: [./app:/app]\n"
    )


@pytest.mark.parametrize(
    ("requirement", "reason"),
    [
        (
            "-e git+https://github.com/pallets/click@8.1.7#egg=click",
            "r.txt:2: 'git+https://github.com/pallets/click@8.1.7#egg=click' is a VCS checkout",
        ),
        (
            "./dist/legacy-1.0.tar.gz",
            "r.txt:2: the sdist ./dist/legacy-1.0.tar.gz does not state its dependencies in its "
            "PKG-INFO (metadata 2.1, before 2.2)",
        ),
        ("https://example.invalid/x-1.0.tar.gz", "is a URL but not a wheel's"),
    ],
)
def test_requirements_only_a_build_backend_could_read_pass_the_service_over_running_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    requirement: str,
    reason: str,
) -> None:
    ran: list[object] = []
    _record_runs_but_compose_config(monkeypatch, ran)
    monkeypatch.chdir(tmp_path)
    _stack_with(tmp_path, f"six\n{requirement}\n")
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert cli.main(["-C", str(tmp_path), "init", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "its dependencies are known only by running a build backend" in err
    assert reason in err and "init runs no project code on this host" in err
    assert snapshot(tmp_path) == before and not (tmp_path / "src").exists()
    assert ran == [], f"init ran {ran}"


def _record_runs_but_compose_config(monkeypatch: pytest.MonkeyPatch, ran: list[object]) -> None:
    """Record every subprocess instead of running it, but `docker compose config` (which reads
    the compose files and runs no project code)."""
    real = process.run

    def fake(argv: Any, *args: Any, **kwargs: Any) -> Any:
        if [str(a) for a in argv[:2]] == ["docker", "compose"] and "config" in argv:
            return real(argv, *args, **kwargs)
        ran.append(argv)
        return None

    monkeypatch.setattr(process, "run", fake)


def test_a_local_sdist_with_static_metadata_is_accepted_but_never_built_on_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wheeldock.errors import WheeldockError

    ran: list[object] = []
    _record_runs_but_compose_config(monkeypatch, ran)
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    _stack_with(tmp_path / "p", "./dist/modern-1.0.tar.gz\n")
    assert cli.main(["-C", str(tmp_path / "p"), "init"]) == 0
    svc = project.load(tmp_path / "p").service("a")
    with pytest.raises(WheeldockError, match="pip would build a project on this host"):
        init.host_wheelhouse(tmp_path / "p", svc)
    assert ran == []


_TWO_SERVICES = """\
services:
  api:
    image: python:3.11-slim
    working_dir: /app
    command: sh -c 'pip install -r requirements.txt && python api.py'
    volumes:
      - ./api:/app
  worker:
    image: python:3.11-slim
    working_dir: {workdir}
    command: sh -c 'pip install -r requirements.txt && python worker.py'
{volumes}"""


@pytest.mark.parametrize(
    ("workdir", "volumes", "reason"),
    [
        (
            "/srv/worker",
            "    volumes:\n      - ./worker:/code\n",
            "its working_dir /srv/worker is not in a bind mount: its bind mounts (./worker at "
            "/code) do not hold it; mount the code's folder there (`volumes: [./<code "
            "folder>:/srv/worker]`)",
        ),
        (
            "/srv/worker",
            "    volumes:\n      - cache:/srv/cache\nvolumes:\n  cache: {}\n",
            "its working_dir /srv/worker is not in a bind mount: its code is not bind-mounted "
            "from the project (it is in the image, or in a named volume)",
        ),
        (
            "/",
            "    volumes:\n      - ./worker:/code\n",
            "its working_dir / is not in a bind mount: its bind mounts (./worker at /code) do "
            "not hold it; set `working_dir: /code`",
        ),
    ],
    ids=["mounted-elsewhere", "named-volume-only", "root-workdir"],
)
def test_a_service_whose_working_dir_is_in_no_mount_is_passed_over_and_init_goes_on(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    workdir: str,
    volumes: str,
    reason: str,
) -> None:
    for name in ("api", "worker"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "requirements.txt").write_text("six\n")
        (tmp_path / name / f"{name}.py").write_text("")
    (tmp_path / "compose.yaml").write_text(_TWO_SERVICES.format(workdir=workdir, volumes=volumes))
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"passed over: worker ({reason}" in err
    assert "volumes: [./app:/]" not in err
    assert [s.name for s in project.load(tmp_path).services] == ["api"]
    assert (tmp_path / "Dockerfile.api").is_file() and not (tmp_path / "Dockerfile.worker").exists()


def _flask_as(root: Path, name: str) -> None:
    """The flask stack with its compose file renamed ``name``, as stacks in the wild have it."""
    shutil.copytree(Path(__file__).parents[2] / "data" / "init" / "flask", root, dirs_exist_ok=True)
    (root / "compose.yaml").rename(root / name)


def test_init_with_f_patches_that_file_and_records_it_for_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMPOSE_FILE", raising=False)
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    _flask_as(tmp_path, "docker-compose.dev.yml")
    (tmp_path / "compose-consumer.yml").write_text("services:\n  db: {image: postgres:16}\n")
    assert cli.main(["-C", str(tmp_path), "-f", "docker-compose.dev.yml", "init"]) == 0
    assert "build:" in (tmp_path / "docker-compose.dev.yml").read_text()
    assert "build:" not in (tmp_path / "compose-consumer.yml").read_text()
    assert project.load(tmp_path).compose_files == ("docker-compose.dev.yml",)
    assert up.Stack.load(tmp_path).files == (tmp_path / "docker-compose.dev.yml",)


def test_init_with_several_f_records_them_all_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMPOSE_FILE", raising=False)
    _flask_as(tmp_path, "base.yml")
    (tmp_path / "prod.yml").write_text("services:\n  web:\n    restart: always\n")
    assert cli.main(["-C", str(tmp_path), "-f", "base.yml", "--file", "prod.yml", "init"]) == 0
    assert project.load(tmp_path).compose_files == ("base.yml", "prod.yml")
    recorded = (tmp_path / "wheeldock.toml").read_text()
    assert 'compose = [\n    "base.yml",\n    "prod.yml",\n]' in recorded
    assert up.Stack.load(tmp_path).files == (tmp_path / "base.yml", tmp_path / "prod.yml")


def test_compose_file_in_the_environment_chooses_the_file_like_f(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _flask_as(tmp_path, "stack.yml")
    monkeypatch.setenv("COMPOSE_FILE", "stack.yml")
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    assert project.load(tmp_path).compose_files == ("stack.yml",)


@pytest.mark.parametrize(
    ("argv", "env", "image"),
    [
        (["-p", "Corner Shop"], {}, "corner-shop-web:wheeldock"),
        (["--project-name", "shop"], {"COMPOSE_PROJECT_NAME": "other"}, "shop-web:wheeldock"),
        ([], {"COMPOSE_PROJECT_NAME": "other"}, "other-web:wheeldock"),
    ],
    ids=["p", "project-name-wins", "environment"],
)
def test_the_project_name_names_the_images_as_compose_would(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    image: str,
) -> None:
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    monkeypatch.delenv("COMPOSE_FILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _flask_as(tmp_path, "compose.yaml")
    assert cli.main(["-C", str(tmp_path), *argv, "init"]) == 0
    assert f"image: {image}" in (tmp_path / "compose.yaml").read_text()


def test_a_missing_f_file_is_an_error_naming_it_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMPOSE_FILE", raising=False)
    _flask_as(tmp_path, "compose.yaml")
    before = snapshot(tmp_path)
    assert cli.main(["-C", str(tmp_path), "-f", "compose.prod.yml", "init"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "the compose file compose.prod.yml (-f) does not exist" in err
    assert snapshot(tmp_path) == before


def _write_tree(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


_APP = {"app/requirements.txt": "six\n", "app/main.py": "print('up')\n"}
_PIP_START = "sh -c 'pip install -r requirements.txt && python main.py'"


@pytest.fixture
def _compose_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "PORT", "NEEDED"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("_compose_env")
def test_a_compose_file_in_a_subfolder_builds_from_the_project_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compose_text = (
        "services:\n"
        "  api:\n"
        "    image: python:3.11-slim\n"
        "    working_dir: /app\n"
        f"    command: {_PIP_START}\n"
        "    volumes:\n"
        "      - ../app:/app\n"
        "  db:\n"
        "    image: postgres:16\n"
    )
    _write_tree(tmp_path, {**_APP, "docker/compose.yml": compose_text})
    assert cli.main(["-C", str(tmp_path), "-f", "docker/compose.yml", "init"]) == 0
    assert (tmp_path / "Dockerfile.api").is_file()
    patched = (tmp_path / "docker" / "compose.yml").read_text()
    assert "context: ..\n" in patched and "../app:/app" not in patched
    assert "image: docker-api:wheeldock" in patched  # compose names the project after docker/
    # compose reads the patched file as building from the project folder, with its Dockerfile
    out = subprocess.run(
        ["docker", "compose", "-f", "docker/compose.yml", "config", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    build = json.loads(out)["services"]["api"]["build"]
    assert (build["context"], build["dockerfile"]) == (str(tmp_path), "Dockerfile.api")
    assert project.load(tmp_path).service("api").source == "app"


@pytest.mark.usefixtures("_compose_env")
def test_anchors_merge_keys_profiles_and_env_defaults_are_read_as_compose_reads_them(
    tmp_path: Path,
) -> None:
    compose_text = (
        "x-python: &python\n"
        "  image: python:3.11-slim\n"
        "  environment: {PYTHONUNBUFFERED: '1'}\n"
        "services:\n"
        "  api:\n"
        "    <<: *python\n"
        "    working_dir: /app\n"
        "    volumes: [./app:/app]\n"
        "    command: sh -c 'pip install -r requirements.txt && "
        "python main.py --port ${PORT:-8000} --name ${NAME-api}${SUFFIX:+-x} --home $$HOME'\n"
        "  debug:\n"
        "    <<: *python\n"
        "    profiles: [debug]\n"
        "    working_dir: /app\n"
        "    volumes: [./app:/app]\n"
        f"    command: {_PIP_START}\n"
    )
    _write_tree(tmp_path, {**_APP, "compose.yaml": compose_text, ".env": "PORT=9100\n"})
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    proj = project.load(tmp_path)
    assert [s.name for s in proj.services] == ["api", "debug"]
    api = proj.service("api")
    assert api.port == 9100
    assert api.command == (
        "python",
        "main.py",
        "--port",
        "9100",
        "--name",
        "api",
        "--home",
        "$HOME",
    )
    # the anchor both services merge is left as it was written
    assert (tmp_path / "compose.yaml").read_text().startswith(compose_text.split("services:")[0])


@pytest.mark.usefixtures("_compose_env")
def test_a_required_variable_that_is_unset_is_an_error_naming_the_file_line_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compose_text = (
        "services:\n"
        "  api:\n"
        "    image: python:3.11-slim\n"
        "    working_dir: /app\n"
        "    volumes: [./app:/app]\n"
        "    command: sh -c 'pip install -r requirements.txt && "
        "python main.py --token ${NEEDED:?set NEEDED to the API token}'\n"
    )
    _write_tree(tmp_path, {**_APP, "compose.yaml": compose_text})
    before = snapshot(tmp_path)
    assert cli.main(["-C", str(tmp_path), "init"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "compose.yaml: line 6: ${NEEDED:?…} requires the variable NEEDED, which is not set" in err
    )
    assert "(set NEEDED to the API token)" in err
    assert "fix: set NEEDED in the .env file next to compose.yaml or in the environment" in err
    assert snapshot(tmp_path) == before


@pytest.mark.usefixtures("_compose_env")
def test_a_service_from_an_included_file_is_passed_over_naming_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = (
        "    image: python:3.11-slim\n"
        "    working_dir: /app\n"
        "    volumes: [./app:/app]\n"
        f"    command: {_PIP_START}\n"
    )
    _write_tree(
        tmp_path,
        {
            **_APP,
            "compose.yaml": "include:\n  - workers.yml\nservices:\n  api:\n" + service,
            "workers.yml": "services:\n  worker:\n" + service,
        },
    )
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "passed over: worker (it is defined in workers.yml that compose.yaml includes "
        "(`include:`), which init does not patch; move the service into compose.yaml" in err
    )
    assert [s.name for s in project.load(tmp_path).services] == ["api"]
    assert "build:" not in (tmp_path / "workers.yml").read_text()


@pytest.mark.usefixtures("_compose_env")
def test_an_extends_service_is_converted_when_what_init_changes_is_its_own(
    tmp_path: Path,
) -> None:
    _write_tree(
        tmp_path,
        {
            **_APP,
            "common.yml": "services:\n  python:\n    image: python:3.11-slim\n"
            "    environment: {PYTHONUNBUFFERED: '1'}\n",
            "compose.yaml": "services:\n  api:\n    extends: {file: common.yml, service: python}\n"
            f"    working_dir: /app\n    volumes: [./app:/app]\n    command: {_PIP_START}\n",
        },
    )
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    patched = (tmp_path / "compose.yaml").read_text()
    assert "dockerfile: Dockerfile.api" in patched and "command:" not in patched
    assert (tmp_path / "common.yml").read_text().startswith("services:\n  python:\n")


@pytest.mark.usefixtures("_compose_env")
def test_an_extends_service_whose_command_comes_from_the_other_file_is_passed_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_tree(
        tmp_path,
        {
            **_APP,
            "common.yml": "services:\n  python-app:\n    image: python:3.11-slim\n"
            f"    working_dir: /app\n    command: {_PIP_START}\n",
            "compose.yaml": "services:\n  api:\n    extends:\n      file: common.yml\n"
            "      service: python-app\n    volumes: [./app:/app]\n"
            "  db:\n    image: postgres:16\n",
        },
    )
    before = snapshot(tmp_path)
    assert cli.main(["-C", str(tmp_path), "init"]) == 1  # no service left to convert
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "api (its command, working_dir come from common.yml (`extends: python-app`): init "
        "would have to change them there, where other services may use them; copy command, "
        "working_dir into the service in compose.yaml)" in err
    )
    assert snapshot(tmp_path) == before


@pytest.mark.usefixtures("_compose_env")
def test_a_stack_compose_refuses_is_an_error_with_compose_s_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compose_text = (
        "services:\n  api:\n    image: python:3.11-slim\n    working_dir: /app\n"
        f"    volumes: [./app:/app, cache:/cache]\n    command: {_PIP_START}\n"
    )
    _write_tree(tmp_path, {**_APP, "compose.yaml": compose_text})
    assert cli.main(["-C", str(tmp_path), "init"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert (
        'docker compose cannot read the stack: service "api" refers to undefined volume cache'
        in err
    )
    assert "`docker compose config` shows the same error" in err


@pytest.mark.usefixtures("_compose_env")
def test_the_variables_a_command_had_are_noted_though_compose_resolved_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compose_text = (
        "services:\n  api:\n    image: python:3.11-slim\n    working_dir: /app\n"
        "    volumes: [./app:/app]\n"
        "    command: sh -c 'pip install -r requirements.txt && python main.py ${PORT:-8000}'\n"
    )
    _write_tree(tmp_path, {**_APP, "compose.yaml": compose_text})
    assert cli.main(["-C", str(tmp_path), "init", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    notes = " ".join(n for s in out["services"] for n in s["notes"])
    assert "compose variables PORT resolved now" in notes
    assert project.load(tmp_path).service("api").command == ("python", "main.py", "8000")


@pytest.mark.usefixtures("_compose_env")
def test_a_service_whose_code_volume_comes_from_a_yaml_anchor_is_converted_leaving_the_anchor(
    tmp_path: Path,
) -> None:
    compose_text = (
        "x-python: &python\n"
        "  image: python:3.11-slim\n"
        "  working_dir: /app\n"
        "  volumes: [./app:/app]\n"
        "services:\n"
        "  api:\n"
        "    <<: *python\n"
        f"    command: {_PIP_START}\n"
        "  tool:\n"
        "    <<: *python\n"
        "    command: python -V\n"
    )
    _write_tree(tmp_path, {**_APP, "compose.yaml": compose_text})
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    text = (tmp_path / "compose.yaml").read_text()
    assert text.startswith("x-python: &python\n  image: python:3.11-slim\n  working_dir: /app\n")
    assert "  volumes: [./app:/app]\n" in text  # the anchor, which tool still uses


@pytest.mark.usefixtures("_compose_env")
def test_up_runs_compose_in_the_folder_of_a_compose_file_in_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose_text = (
        "services:\n  api:\n    image: python:3.11-slim\n    working_dir: /app\n"
        f"    volumes: [../app:/app]\n    command: {_PIP_START}\n"
    )
    _write_tree(tmp_path, {**_APP, "docker/compose.yml": compose_text})
    assert cli.main(["-C", str(tmp_path), "-f", "docker/compose.yml", "init"]) == 0
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(
        up.engine, "docker", lambda *argv, **kw: calls.append(tuple(map(str, argv)))
    )
    stack = up.Stack.load(tmp_path, up.compose_mod.Selection(project_name="shop"))
    stack.compose("config")
    (argv,) = calls
    assert argv[:3] == ("compose", "--project-directory", str(tmp_path / "docker"))
    assert argv[3:] == (
        "-f",
        str(tmp_path / "docker" / "compose.yml"),
        "-p",
        "shop",
        "--ansi",
        "never",
        "config",
    )


@pytest.mark.usefixtures("_compose_env")
def test_without_docker_compose_init_merges_the_files_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wheeldock.compose import config

    _flask_as(tmp_path, "compose.yaml")
    monkeypatch.setattr(config.shutil, "which", lambda name: None)
    assert config.resolved_services([tmp_path / "compose.yaml"], {}) is None
    assert cli.main(["-C", str(tmp_path), "init"]) == 0
    assert project.load(tmp_path).service("web").port == 5000
    assert "image: " in (tmp_path / "compose.yaml").read_text()


def _link_compose(root: Path) -> Path:
    """Make ``compose.yaml`` a relative symbolic link to ``deploy/compose.yaml``; the real file."""
    real = root / "deploy" / "compose.yaml"
    real.parent.mkdir()
    (root / "compose.yaml").rename(real)
    (root / "compose.yaml").symlink_to("deploy/compose.yaml")
    return real


def test_a_symlinked_compose_file_is_patched_through_the_link_and_revert_keeps_the_link(
    stack_copy: MakeStack,
) -> None:
    stack = stack_copy("flask")
    link = stack.root / "compose.yaml"
    real = _link_compose(stack.root)
    original = real.read_bytes()
    assert stack.run("init") == 0
    assert link.is_symlink() and os.readlink(link) == "deploy/compose.yaml"
    assert "dockerfile: Dockerfile.web" in real.read_text()
    assert (stack.root / init.BACKUP_DIR / "files" / "compose.yaml").read_bytes() == original
    assert stack.run("init") == 0  # planned from the backup: the same bytes again
    assert "dockerfile: Dockerfile.web" in real.read_text()
    assert stack.run("init", "--revert") == 0
    assert link.is_symlink() and os.readlink(link) == "deploy/compose.yaml"
    assert real.read_bytes() == original
    assert not (stack.root / "Dockerfile.web").exists()


def test_revert_makes_the_link_again_when_the_compose_file_was_replaced_by_a_copy(
    stack_copy: MakeStack,
) -> None:
    stack = stack_copy("flask")
    link = stack.root / "compose.yaml"
    real = _link_compose(stack.root)
    original = real.read_bytes()
    assert stack.run("init") == 0
    patched = real.read_bytes()
    link.unlink()
    link.write_bytes(patched)  # an editor that saves a regular file over the link
    assert stack.run("init", "--revert") == 0
    assert link.is_symlink() and os.readlink(link) == "deploy/compose.yaml"
    assert real.read_bytes() == original


@pytest.mark.parametrize(
    ("samples", "fix"),
    [
        ({".env.dev-sample": "DEBUG=1\n"}, "fix: copy .env.dev-sample to .env.dev and fill it in"),
        (
            {},
            "fix: create .env.dev with the variables the services read, or make the entry "
            "`- path: .env.dev` with `required: false`",
        ),
    ],
)
@pytest.mark.usefixtures("_compose_env")
def test_a_missing_env_file_names_its_line_and_the_sample_to_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], samples: dict[str, str], fix: str
) -> None:
    # the shape of testdrivenio/django-on-docker (2026-12): .env.dev is made from the sample
    compose_text = (
        "services:\n  api:\n    image: python:3.11-slim\n    working_dir: /app\n"
        f"    volumes: [./app:/app]\n    command: {_PIP_START}\n    env_file:\n"
        "      - ./.env.dev\n"
    )
    _write_tree(tmp_path, {**_APP, **samples, "compose.yaml": compose_text})
    before = snapshot(tmp_path)
    assert cli.main(["-C", str(tmp_path), "init"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "compose.yaml: line 8: the env file .env.dev is not there" in err
    assert fix in err
    assert snapshot(tmp_path) == before
