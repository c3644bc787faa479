"""Building and running a compose stack for another platform: the binfmt check, the FROM images
of a Dockerfile, and the compose override (platform, per-platform tag, bases swapped)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from wheeldock import platforms
from wheeldock.compose import dockerfile, foreign
from wheeldock.debian import bases
from wheeldock.edges import engine
from wheeldock.errors import ToolNotFound
from wheeldock.platforms import Target
from wheeldock.project import Service

AMD64 = platforms.parse("linux/amd64")
ARM64 = platforms.parse("linux/arm64")
ARMV7 = platforms.parse("linux/arm/v7")


# -- can this machine run the platform's containers ---------------------------------------------


def _handler(folder: Path, name: str, *lines: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def test_an_enabled_static_handler_lets_the_platform_run(tmp_path: Path) -> None:
    binfmt = _handler(
        tmp_path,
        "qemu-aarch64",
        "enabled",
        "interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P",
        "flags: PF",
        "offset 0",
    )
    foreign.require_runnable(ARM64, binfmt_dir=binfmt, host=AMD64)


def test_the_host_platform_needs_no_handler(tmp_path: Path) -> None:
    foreign.require_runnable(AMD64, binfmt_dir=tmp_path / "nothing", host=AMD64)
    # an arm64 board runs armv7 programs itself
    foreign.require_runnable(ARMV7, binfmt_dir=tmp_path / "nothing", host=ARM64)


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        ((), "is not registered"),
        (("disabled", "flags: PF"), "is disabled"),
    ],
)
def test_a_missing_or_disabled_handler_is_refused_with_the_packages_to_install(
    tmp_path: Path, lines: tuple[str, ...], said: str
) -> None:
    binfmt = _handler(tmp_path, "qemu-aarch64", *lines) if lines else tmp_path
    with pytest.raises(ToolNotFound) as info:
        foreign.require_runnable(ARM64, binfmt_dir=binfmt, host=AMD64)
    assert "cannot run linux/arm64 images on this linux/amd64 host" in info.value.what
    assert said in info.value.what and "qemu-aarch64" in info.value.what
    assert info.value.fix is not None
    assert "apt-get install qemu-user-static binfmt-support" in info.value.fix
    assert "update-binfmts --enable qemu-aarch64" in info.value.fix


def test_a_handler_without_the_fix_binary_flag_is_refused(tmp_path: Path) -> None:
    # qemu-user's dynamically linked handler: the kernel would look for the interpreter inside
    # the container's root file system, where it is not
    binfmt = _handler(tmp_path, "qemu-arm", "enabled", "interpreter /usr/bin/qemu-arm", "flags: ")
    with pytest.raises(ToolNotFound) as info:
        foreign.require_runnable(ARMV7, binfmt_dir=binfmt, host=AMD64)
    assert "no F flag" in info.value.what
    assert info.value.fix is not None and "qemu-user-static" in info.value.fix


# -- the FROM images of a Dockerfile ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "images"),
    [
        ("FROM python:3.11-slim\nRUN true\n", ("python:3.11-slim",)),
        (
            "FROM wheeldock/python:3.11-builder AS builder\nRUN make\n"
            "FROM wheeldock/python:3.11-slim\nCOPY --from=builder /a /a\n",
            ("wheeldock/python:3.11-builder", "wheeldock/python:3.11-slim"),
        ),
        ("from base AS Build\nFROM build\nFROM scratch\n", ("base",)),
        (
            "ARG PY=3.12\nFROM python:${PY}-slim\nFROM python:$PY-alpine\n",
            ("python:3.12-slim", "python:3.12-alpine"),
        ),
        ("ARG BASE\nFROM $BASE\n", ()),
        ("# FROM commented:out\nFROM \\\n  a:1 \\\n  AS x\n", ("a:1",)),
        ("FROM --platform=$BUILDPLATFORM tools:1 AS t\nFROM tools:1\nFROM app:1\n", ("app:1",)),
        ("FROM a:1\nFROM a:1\n", ("a:1",)),
    ],
)
def test_dockerfile_bases_are_the_images_stages_start_from(
    text: str, images: tuple[str, ...]
) -> None:
    assert foreign.dockerfile_bases(text) == images


def test_build_args_override_the_dockerfiles_arg_defaults() -> None:
    text = "ARG PY=3.11\nFROM python:${PY}-slim\nARG LATE=x\nFROM late:$LATE\n"
    # an ARG after the first FROM does not reach FROM lines: late:$LATE is left out
    assert foreign.dockerfile_bases(text, {"PY": "3.13"}) == ("python:3.13-slim",)


@pytest.mark.parametrize(
    ("image", "target", "tagged"),
    [
        ("cbt-api:wheeldock", ARM64, "cbt-api:wheeldock-arm64"),
        ("registry.local:5000/team/api", ARM64, "registry.local:5000/team/api:latest-arm64"),
        ("api:1.2@sha256:" + "a" * 64, ARMV7, "api:1.2-armv7"),
    ],
)
def test_platform_tag_puts_the_platform_in_the_tag(image: str, target: Target, tagged: str) -> None:
    assert foreign.platform_tag(image, target) == tagged


# -- the override -------------------------------------------------------------------------------

BASES = {
    "wheeldock/python:3.11-builder": "wheeldock/python:3.11-builder-arm64",
    "wheeldock/python:3.11-slim": "wheeldock/python:3.11-slim-arm64",
    "python:3.11-slim": "wheeldock/python:3.11-slim-arm64",  # wheeldock's stand-in tag
}


class FakeBases:
    """What ``engine_bases`` answers for wheeldock's bases; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, ref: str, target: Target) -> str | None:
        self.asked.append((ref, target.name))
        return BASES.get(ref)


def _init_dockerfile(folder: Path) -> Path:
    svc = Service("api", "src", ("src/requirements.txt",), ("python3", "main.py"), port=8000)
    path = folder / "Dockerfile.api"
    path.write_text(dockerfile.render(dockerfile.DockerfileSpec(svc, svc.requirements, "0.13.9")))
    return path


def _config(folder: Path) -> dict[str, object]:
    _init_dockerfile(folder)
    return {
        "name": "shop",
        "services": {
            "api": {
                "build": {"context": str(folder), "dockerfile": "Dockerfile.api"},
                "image": "shop-api:wheeldock",
            },
            "legacy": {"image": "python:3.11-slim", "command": ["sh", "-c", "pip install …"]},
            "db": {"image": "postgres:16"},
            "worker": {
                "build": {
                    "context": str(folder),
                    "dockerfile_inline": 'FROM wheeldock/python:3.11-slim\nCMD ["w"]\n',
                    "additional_contexts": {"wheeldock/python:3.11-slim": "docker-image://mine"},
                }
            },
        },
    }


def test_override_builds_inits_dockerfile_on_the_targets_bases_under_its_own_tag(
    tmp_path: Path,
) -> None:
    data = foreign.override(_config(tmp_path), ["api"], ARM64, bases_for=FakeBases())
    assert data == {
        "services": {
            "api": {
                "platform": "linux/arm64",
                "image": "shop-api:wheeldock-arm64",
                "build": {
                    "additional_contexts": {
                        "wheeldock/python:3.11-builder": (
                            "docker-image://wheeldock/python:3.11-builder-arm64"
                        ),
                        "wheeldock/python:3.11-slim": (
                            "docker-image://wheeldock/python:3.11-slim-arm64"
                        ),
                    }
                },
            }
        }
    }


def test_override_swaps_the_image_of_a_service_started_from_a_base_as_it_is(
    tmp_path: Path,
) -> None:
    data = foreign.override(_config(tmp_path), ["legacy", "db"], ARM64, bases_for=FakeBases())
    assert data["services"]["legacy"] == {
        "platform": "linux/arm64",
        "image": "wheeldock/python:3.11-slim-arm64",
    }
    # not one of wheeldock's bases: the engine pulls the platform's image itself
    assert data["services"]["db"] == {"platform": "linux/arm64"}


def test_override_keeps_a_named_context_the_user_set_and_names_an_untagged_image(
    tmp_path: Path,
) -> None:
    bases = FakeBases()
    data = foreign.override(_config(tmp_path), ["worker"], ARM64, bases_for=bases)
    assert data["services"]["worker"] == {
        "platform": "linux/arm64",
        "image": "shop-worker:latest-arm64",
    }
    assert bases.asked == []


def test_override_without_builds_only_sets_the_platform(tmp_path: Path) -> None:
    bases = FakeBases()
    data = foreign.override(
        _config(tmp_path), ["api"], ARM64, bases_for=bases, retag=False, builds=False
    )
    assert data == {"services": {"api": {"platform": "linux/arm64"}}}
    assert bases.asked == []  # no base is looked up (or built) for images made elsewhere


def test_override_file_is_named_after_the_platform_and_is_yaml_compose_reads(
    tmp_path: Path,
) -> None:
    data = {"services": {"api": {"platform": "linux/arm/v7"}}}
    path = foreign.write_override(tmp_path / ".wheeldock", data, ARMV7)
    assert path == tmp_path / ".wheeldock" / "compose.armv7.yaml"
    assert json.loads(path.read_text()) == data


def test_engine_bases_make_the_armhf_base_for_arm_v7_and_the_override_asks_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = {"wheeldock.base": "slim", "wheeldock.base.arch": "amd64"}
    inspected: list[str] = []

    def docker(*args: str, check: bool = True) -> SimpleNamespace:
        inspected.append(args[-1])
        known = args[-1].startswith("wheeldock/")
        return SimpleNamespace(returncode=0 if known else 1, stdout=json.dumps(labels))

    made: list[tuple[str, str, str]] = []

    def ensure_image(variant: str, *, arch: str, suite: str) -> SimpleNamespace:
        made.append((variant, arch, suite))
        return SimpleNamespace(tags=(f"wheeldock/python:3.11-{variant}-{arch}",))

    monkeypatch.setattr(engine, "docker", docker)
    monkeypatch.setattr(bases, "ensure_image", ensure_image)
    resolve = foreign.engine_bases()
    assert resolve("wheeldock/python:3.11-slim", ARMV7) == "wheeldock/python:3.11-slim-armhf"
    assert made == [("slim", "armhf", "bookworm")]
    assert resolve("postgres:16", ARMV7) is None  # not in the engine: BuildKit pulls arm/v7

    config = _config(tmp_path)
    config["services"]["legacy"]["image"] = "wheeldock/python:3.11-slim"  # type: ignore[index]
    data = foreign.override(config, ["legacy", "db"], ARMV7, bases_for=resolve)
    assert data["services"] == {
        "legacy": {"platform": "linux/arm/v7", "image": "wheeldock/python:3.11-slim-armhf"},
        "db": {"platform": "linux/arm/v7"},
    }
    assert made == [("slim", "armhf", "bookworm")]  # remembered, not made twice
