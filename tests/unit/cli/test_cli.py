from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wheeldock import __version__
from wheeldock.cli.app import main


def test_version_flag_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: wheeldock" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "wheeldock"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    assert "-C DIR" in out


@pytest.mark.parametrize(
    ("argv", "code"), [(["--help"], 0), ([], 2), (["-C", "/nonexistent", "lock"], 2)]
)
def test_the_process_exits_with_the_commands_code_and_its_output_flushed(
    argv: list[str], code: int
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wheeldock", *argv], capture_output=True, text=True
    )
    assert done.returncode == code
    assert "usage: wheeldock" in done.stdout or "no such folder" in done.stderr


def test_missing_project_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from wheeldock.cli import app as cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    probe = sub.add_parser("probe")
    probe.set_defaults(func=lambda args: 0)
    args = ["-C", str(tmp_path / "nope"), "probe"]
    original = cli.build_parser
    cli.build_parser = lambda argv=None: parser  # type: ignore[assignment]
    try:
        assert cli.main(args) == 2
    finally:
        cli.build_parser = original  # type: ignore[assignment]
    assert "no such folder" in capsys.readouterr().err


def test_only_the_chosen_commands_module_is_imported() -> None:
    code = (
        "import sys; from wheeldock import cli; cli.build_parser(['lock', '--help']);"
        "print('wheeldock.cli.commands.lock' in sys.modules, 'wheeldock.cli.commands.bench' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_help_lists_every_command_without_importing_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wheeldock.cli.commands import COMMANDS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_the_command_does_not_load_httpx_own_command_line_client() -> None:
    # httpx imports its CLI (click, pygments, rich) when they are installed: ~60 ms of a bump
    code = (
        "import sys; from wheeldock import cli; cli.main(['-C', '/nonexistent-wd', 'lock']);"
        "import httpx; print(sys.modules['httpx._main'] is None, 'click' in sys.modules,"
        " callable(httpx.Client))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "True"]


def _every_help_argv() -> list[list[str]]:
    from wheeldock.cli.commands import COMMANDS

    return [[], *([name] for name in COMMANDS), ["base", "build"], ["base", "list"]]


@pytest.mark.parametrize("command", _every_help_argv(), ids=lambda argv: " ".join(argv) or "-")
def test_help_is_plain_text_without_rest_markup(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: wheeldock" in out
    assert "``" not in out
    assert ":mod:`" not in out and ":func:`" not in out and ":class:`" not in out


# -- bad input and a refusing machine: a message and an exit code, never a traceback -------------


def _project(root: Path, requirements: bytes = b"idna==3.10\n") -> Path:
    (root / "svc").mkdir(parents=True)
    (root / "svc" / "app.py").write_text("print(1)\n")
    (root / "svc" / "requirements.txt").write_bytes(requirements)
    (root / "wheeldock.toml").write_text(
        '[services.api]\nsource = "svc"\nrequirements = ["svc/requirements.txt"]\n'
        'command = ["python", "app.py"]\n'
    )
    return root


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_a_compose_file_with_a_byte_that_is_not_utf8_is_named_by_line_column_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "compose.yaml").write_bytes(b"services:\n  api:\n    image: caf\xe9\n")
    code, err = _run(["-C", str(tmp_path), "init", "--dry-run"], capsys)
    assert code == 1
    assert "compose.yaml: line 3, column 15 (byte offset 31): byte b'\\xe9' is not UTF-8" in err
    assert "fix: save the file as UTF-8" in err


def test_a_requirements_file_with_a_byte_that_is_not_utf8_fails_the_lock_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, b"idna==3.10\n# r\xe9sum\xe9\n")
    code, err = _run(["-C", str(tmp_path), "lock"], capsys)
    assert code == 1
    assert "requirements.txt: line 2, column 4 (byte offset 14)" in err


def test_a_cache_folder_the_user_may_not_write_is_a_message_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    cache = tmp_path / "cache"
    monkeypatch.setenv("WHEELDOCK_CACHE", str(cache))
    real_mkdir = Path.mkdir

    def refused(self: Path, *args: object, **kwargs: object) -> None:
        if self.is_relative_to(cache):  # what the kernel says to a user without write access
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", refused)
    _project(tmp_path / "proj", b"idna>=3\n")  # not pinned: no index request starts early
    code, err = _run(["-C", str(tmp_path / "proj"), "build", "--output", "oci:out"], capsys)
    assert code == 1
    assert f"error: {cache}" in err and "Permission denied" in err
    assert "point WHEELDOCK_CACHE (the cache) or --output at a writable folder" in err


def test_a_full_disk_is_a_message_and_leaves_no_temp_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from wheeldock.edges import fsutil, process

    def fake_uv(argv: list[str], **kwargs: object) -> None:
        (tmp_path / argv[argv.index("--output-file") + 1]).write_text('lock-version = "1.0"\n')

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(process, "run", fake_uv)
    monkeypatch.setattr(fsutil.os, "fsync", full)
    _project(tmp_path, b"idna>=3\n")
    code, err = _run(["-C", str(tmp_path), "lock"], capsys)
    assert code == 1
    assert "No space left on device" in err and "free space on that file system" in err
    assert list((tmp_path / "wheeldock.lock").iterdir()) == []  # no temp file, no lock file


@pytest.mark.parametrize(
    "argv",
    [
        ["-f", "up", "init"],  # a compose file named like a command is still the file
        ["--file", "dev.yml", "-p", "init", "init"],
        ["-C", ".", "--project-name", "shop", "init"],
    ],
)
def test_the_compose_options_values_are_not_taken_for_the_command(argv: list[str]) -> None:
    from wheeldock.cli.commands import chosen_command

    assert chosen_command(argv) == "init"


def test_compose_global_options_do_not_load_the_yaml_reader() -> None:
    code = (
        "import sys; from wheeldock import cli; cli.build_parser(['-f', 'a.yml', 'lock']);"
        "print('ruamel.yaml' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


@pytest.mark.parametrize("command", ["lock", "build", "bench"])
def test_compose_options_given_to_a_command_that_reads_no_compose_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert main(["-C", str(tmp_path), "-f", "dev.yml", command]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"-f/--file and -p/--project-name do not apply to `{command}`" in err


@pytest.mark.parametrize(
    ("flags", "policy"),
    [([], "sync"), (["--locked"], "locked"), (["--frozen"], "frozen"), (["--relock"], "relock")],
)
def test_builds_lock_flags_choose_how_a_stale_lock_is_treated(
    flags: list[str], policy: str
) -> None:
    from wheeldock.cli.app import build_parser
    from wheeldock.cli.commands import build

    args = build_parser(["build", *flags]).parse_args(["build", *flags])
    assert build._lock_policy(args) == policy


def test_build_takes_one_of_locked_frozen_and_relock(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["build", "--locked", "--frozen"])
    assert exit_.value.code == 2
    assert "not allowed with argument --locked" in capsys.readouterr().err


def test_build_and_release_take_the_registry_cache_into_the_build_options() -> None:
    from wheeldock.cli import app as cli
    from wheeldock.cli.commands.build import options_from

    cache = "docker://127.0.0.1:5000/team/cache"
    for argv in (
        ["build", "--cache", cache, "--cache-mode", "read"],
        ["release", "-o", "docker://127.0.0.1:5000/k/{service}:1", "--cache", cache],
    ):
        args = cli.build_parser(argv).parse_args(argv)
        options = options_from(args, "linux/amd64")
        assert options.cache == cache
        assert options.cache_mode == ("read" if "read" in argv else "readwrite")
    assert (
        options_from(cli.build_parser(["build"]).parse_args(["build"]), "linux/amd64").cache is None
    )


def test_release_refuses_an_output_that_is_not_a_registry_or_names_one_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wheeldock import project

    services = tuple(
        project.Service(name, ".", ("requirements.txt",), ("python3", "app.py")) for name in "ab"
    )
    project.save(project.Project(tmp_path, None, services))
    assert main(["-C", str(tmp_path), "release", "-o", "oci:out"]) == 2
    assert "a release is pushed to a registry" in capsys.readouterr().err
    assert main(["-C", str(tmp_path), "release", "-o", "docker://127.0.0.1:5000/k:1"]) == 2
    assert "put {service} in it" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        # every service of docker/awesome-compose django and fastapi/full-stack-fastapi-template
        # builds with Docker only: `lock` printed a table header and nothing else
        (
            '[services]\n\n[docker_only]\nweb = "app/Dockerfile:3: `FROM python:3.7-alpine`"\n',
            "nothing to lock: web is built with Docker only ([docker_only] in wheeldock.toml)",
        ),
        ("[services]\n", "nothing to lock: wheeldock.toml lists no service"),
    ],
)
def test_lock_with_no_service_to_lock_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, said: str
) -> None:
    (tmp_path / "wheeldock.toml").write_text(toml)
    capsys.readouterr()
    assert main(["-C", str(tmp_path), "lock"]) == 0
    assert said in " ".join(capsys.readouterr().out.split())
    assert not (tmp_path / "wheeldock.lock").exists()
