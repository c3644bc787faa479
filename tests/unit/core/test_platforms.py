"""Platform strings: parsing, validation, the names each tool uses, and the emulation check."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheeldock import platforms
from wheeldock.deps import pylock
from wheeldock.errors import ToolNotFound, UsageError
from wheeldock.oci.image import Platform


@pytest.mark.parametrize(
    ("text", "name", "debian", "wheel", "qemu"),
    [
        ("linux/amd64", "linux/amd64", "amd64", "x86_64", "x86_64"),
        ("x86_64", "linux/amd64", "amd64", "x86_64", "x86_64"),
        ("linux/arm64", "linux/arm64", "arm64", "aarch64", "aarch64"),
        ("linux/arm64/v8", "linux/arm64", "arm64", "aarch64", "aarch64"),
        ("ARM64", "linux/arm64", "arm64", "aarch64", "aarch64"),
        ("linux/arm/v7", "linux/arm/v7", "armhf", "armv7l", "arm"),
        ("armhf", "linux/arm/v7", "armhf", "armv7l", "arm"),
        (" linux/arm ", "linux/arm/v7", "armhf", "armv7l", "arm"),
    ],
)
def test_parse_maps_each_spelling_to_every_tools_name(
    text: str, name: str, debian: str, wheel: str, qemu: str
) -> None:
    target = platforms.parse(text)
    assert (target.name, target.debian_arch, target.wheel_arch, target.qemu) == (
        name,
        debian,
        wheel,
        qemu,
    )
    assert target.platform == Platform.parse(name)


@pytest.mark.parametrize("name", list(platforms.TARGETS))
def test_each_target_reads_back_from_its_oci_platform_and_locks_for_its_wheel_arch(
    name: str,
) -> None:
    from wheeldock.deps import lock

    target = platforms.TARGETS[name]
    # the builder picks the base's Debian architecture from an image's OCI platform
    assert platforms.debian_arch(target.platform) == target.debian_arch
    assert lock.wheel_arch(name) == target.wheel_arch
    assert pylock.lock_path(Path("/p"), "api", name).name.endswith(
        ".toml" if name == pylock.DEFAULT_PLATFORM else f"-{target.wheel_arch}.toml"
    )


@pytest.mark.parametrize(
    ("oci", "debian"),
    [("linux/arm", "armhf"), ("linux/arm64/v8", "arm64"), ("linux/arm/v5", "armel")],
)
def test_an_oci_platform_without_its_variant_or_with_another_names_its_debian_arch(
    oci: str, debian: str
) -> None:

    assert platforms.debian_arch(Platform.parse(oci)) == debian


def test_arm_v7_installs_glibc_armv7l_wheels_only() -> None:
    from packaging.tags import Tag

    from wheeldock.deps.wheelhouse import supported_tags

    ranks = supported_tags("linux/arm/v7", "3.11")
    best = ranks[Tag("cp311", "cp311", "manylinux_2_36_armv7l")]
    assert best < ranks[Tag("cp311", "cp311", "manylinux2014_armv7l")]
    assert (
        ranks[Tag("cp311", "cp311", "manylinux2014_armv7l")]
        < ranks[Tag("cp311", "cp311", "linux_armv7l")]
    )
    assert ranks[Tag("py3", "none", "any")] > best
    for foreign in ("musllinux_1_1_armv7l", "manylinux_2_39_armv7l", "manylinux2014_aarch64"):
        assert Tag("cp311", "cp311", foreign) not in ranks


@pytest.mark.parametrize("text", ["linux/riscv64", "windows/amd64", "arm64v8", "", "linux//"])
def test_unknown_platform_is_refused_listing_the_accepted_ones(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        platforms.parse(text)
    assert repr(text) in exc.value.what
    assert exc.value.fix is not None
    for accepted in ("linux/amd64", "linux/arm64", "linux/arm/v7"):
        assert accepted in exc.value.fix


def test_parse_list_splits_commas_keeps_order_and_drops_duplicates() -> None:
    got = platforms.parse_list(["linux/arm64,linux/amd64", "aarch64", "linux/arm/v7,"])
    assert [t.name for t in got] == ["linux/arm64", "linux/amd64", "linux/arm/v7"]


def test_parse_list_uses_the_default_only_when_nothing_is_given() -> None:
    assert [t.name for t in platforms.parse_list([], default="linux/amd64")] == ["linux/amd64"]
    assert platforms.parse_list(None) == ()
    assert [t.name for t in platforms.parse_list("arm64", default="linux/amd64")] == ["linux/arm64"]


def test_parse_list_refuses_a_bad_entry_among_good_ones() -> None:
    with pytest.raises(UsageError, match="linux/sparc"):
        platforms.parse_list(["linux/amd64,linux/sparc"])


def test_suffix_is_short_and_distinct_per_platform() -> None:
    suffixes = {t.suffix for t in platforms.TARGETS.values()}
    assert suffixes == {"amd64", "arm64", "armv7"}


def test_of_debian_arch_and_of_platform_round_trip() -> None:
    for target in platforms.TARGETS.values():
        assert platforms.of_debian_arch(target.debian_arch) == target
        assert platforms.of_platform(target.platform) == target
    with pytest.raises(UsageError):
        platforms.of_debian_arch("mips64el")


def test_foreign_platforms_need_emulation_and_native_ones_do_not() -> None:
    amd64 = platforms.parse("linux/amd64")
    arm64 = platforms.parse("linux/arm64")
    armv7 = platforms.parse("linux/arm/v7")
    assert not platforms.needs_emulation(amd64, host_target=amd64)
    assert platforms.needs_emulation(arm64, host_target=amd64)
    assert platforms.needs_emulation(armv7, host_target=amd64)
    assert not platforms.needs_emulation(armv7, host_target=arm64)  # arm64 runs armhf natively


def test_missing_binfmt_handler_is_an_error_naming_it_and_the_fix(tmp_path: Path) -> None:
    # An empty binfmt folder: as on a machine without qemu-user-static.
    with pytest.raises(ToolNotFound) as exc:
        platforms.require_emulation(
            platforms.parse("linux/arm64"),
            binfmt_dir=tmp_path,
            host_target=platforms.parse("linux/amd64"),
        )
    assert "linux/arm64" in exc.value.what
    assert "qemu-aarch64" in exc.value.what or "aarch64" in exc.value.what
    assert exc.value.fix is not None and "qemu-user-static" in exc.value.fix
    assert "update-binfmts --enable qemu-aarch64" in exc.value.fix


def test_disabled_binfmt_handler_is_refused_and_enabled_one_accepted(tmp_path: Path) -> None:
    arm = platforms.parse("linux/arm/v7")
    host = platforms.parse("linux/amd64")
    (tmp_path / "qemu-arm").write_text("disabled\ninterpreter /usr/libexec/qemu-binfmt/arm\n")
    with pytest.raises(ToolNotFound, match="qemu-arm"):
        platforms.require_emulation(arm, binfmt_dir=tmp_path, host_target=host)
    (tmp_path / "qemu-arm").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/arm\n")
    platforms.require_emulation(arm, binfmt_dir=tmp_path, host_target=host)


def test_native_platform_needs_no_binfmt_handler(tmp_path: Path) -> None:
    amd64 = platforms.parse("linux/amd64")
    platforms.require_emulation(amd64, binfmt_dir=tmp_path, host_target=amd64)


def test_every_map_of_architecture_names_comes_from_the_one_table() -> None:
    for arch in platforms.ARCH_TABLE:
        assert platforms.ARCHES[arch.debian] == (arch.qemu, arch.docker)
        assert platforms.TRIPLETS[arch.debian] == arch.triplet
        assert platforms.WHEEL_MACHINES[arch.debian] == arch.wheel
        for machine in arch.machines:
            assert platforms.native_arch(machine) == arch.debian
    for target in platforms.TARGETS.values():
        assert platforms.debian_arch(target.platform) == target.debian_arch
