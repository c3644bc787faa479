"""The compose model as ``docker compose config`` resolves it, for reading the services.

Compose itself follows ``include:`` and ``extends:``, merges anchors, merge keys and ``-f``
files, interpolates ``.env`` and the environment in every ``${VAR…}`` form, and makes relative
paths absolute against the project directory (the first file's folder): asking it is the one
reading that agrees with what ``docker compose up`` runs. Reading only: a patch is made on the
files themselves (:mod:`wheeldock.compose.files`), which keep every byte it does not change.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wheeldock.edges import engine
from wheeldock.errors import CommandFailed, InvalidConfig

log = logging.getLogger(__name__)

_REQUIRED = re.compile(r"required variable (?P<name>\w+) is missing a value(?:: (?P<why>.*))?")
_MISSING_ENV_FILE = re.compile(r"env file (?P<path>\S+) not found")
#: What a sample env file that comes with a project is called after the file it stands for
#: (``.env.dev-sample``, ``.env.example``, ``.env_template``).
_SAMPLE = re.compile(r"[.\-_](sample|example|template|tmpl|dist|default)$", re.IGNORECASE)
_NOT_A_COMMAND = ("is not a docker command", "unknown command", "unknown flag: --profile")


def resolved_services(
    paths: Sequence[Path], environ: Mapping[str, str], texts: Sequence[bytes] | None = None
) -> dict[str, dict[str, Any]] | None:
    """Every service of the compose files ``paths`` (merged in order), every profile's
    included, as compose resolves them; ``texts``: the files' contents when they are not what
    is on disk (``init`` run again reads the originals it kept), for one file only.

    ``None`` when ``docker compose`` is not installed, or when several files are not as on
    disk: the caller then merges the files itself. :class:`InvalidConfig` with compose's
    reason, the file and line it points at when it can be found, and the fix, when compose
    refuses the files."""
    if shutil.which("docker") is None:
        return None
    files: Sequence[Path | str] = paths
    stdin = None
    if texts is not None and any(t != _read(p) for p, t in zip(paths, texts, strict=True)):
        if len(paths) > 1:
            return None
        files, stdin = ["-"], texts[0]
    args = ("--profile", "*", "config", "--format", "json")
    try:
        result = engine.compose(
            paths[0].parent,
            *args,
            files=[Path(f) for f in files],
            check=False,
            env=dict(environ),
            timeout=120,
            input=stdin,
        )
    except CommandFailed as exc:  # it outlived the timeout
        log.warning("docker compose config did not answer (%s): reading the files", exc.what)
        return None
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["no output"])[-1]
        if any(sign in message for sign in _NOT_A_COMMAND):
            return None
        raise _refusal(message, paths)
    data = json.loads(result.stdout)
    services = data.get("services") or {}
    # compose writes every service's `command: null` and `entrypoint: null`: absent, as written
    return {
        str(name): {k: v for k, v in svc.items() if v is not None} for name, svc in services.items()
    }


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _refusal(message: str, paths: Sequence[Path]) -> InvalidConfig:
    """Compose's reason for refusing the files, with the file and line it is about."""
    required = _REQUIRED.search(message)
    if required:
        name = required.group("name")
        path, line = _locate(paths, re.compile(r"\$\{" + name + r":?\?"))
        why = f" ({required.group('why')})" if required.group("why") else ""
        return InvalidConfig(
            f"{_at(line)}${{{name}:?…}} requires the variable {name}, which is not set{why}",
            path=path,
            fix=f"set {name} in the .env file next to {paths[0].name} or in the environment",
        )
    missing = _MISSING_ENV_FILE.search(message)
    if missing:
        return _missing_env_file(Path(missing.group("path")), paths)
    reason = message.removeprefix("error ").strip()
    return InvalidConfig(
        f"docker compose cannot read the stack: {reason}",
        path=paths[0],
        fix="fix what it names; `docker compose config` shows the same error",
    )


def _missing_env_file(env: Path, paths: Sequence[Path]) -> InvalidConfig:
    """A service's ``env_file:`` that is not there: the line naming it, and the sample that
    comes with the project to copy, when there is one."""
    path, line = _locate(paths, re.compile(r"(^|[\s'\"/:-])" + re.escape(env.name) + r"\b"))
    shown = _shown(env, paths[0].parent)
    samples = sorted(
        p.name
        for p in (env.parent.iterdir() if env.parent.is_dir() else ())
        if p.name.startswith(env.name) and _SAMPLE.fullmatch(p.name[len(env.name) :])
    )
    fix = (
        f"copy {_shown(env.parent / samples[0], paths[0].parent)} to {shown} and fill it in"
        if samples
        else f"create {shown} with the variables the services read, or make the entry "
        f"`- path: {shown}` with `required: false`"
    )
    return InvalidConfig(
        f"{_at(line)}the env file {shown} is not there (compose reads services' variables from it)",
        path=path,
        fix=fix,
    )


def _shown(path: Path, project_dir: Path) -> str:
    try:
        return path.relative_to(project_dir).as_posix()
    except ValueError:
        return str(path)


def _locate(paths: Sequence[Path], pattern: re.Pattern[str]) -> tuple[Path, int | None]:
    """The first file and line matching ``pattern``; the first file when none does."""
    for path in paths:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for number, line in enumerate(lines, 1):
            if pattern.search(line):
                return path, number
    return paths[0], None


def _at(line: int | None) -> str:
    return f"line {line}: " if line is not None else ""
