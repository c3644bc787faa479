from __future__ import annotations

import json

import pytest

from wheeldock.errors import InvalidConfig, NotFound
from wheeldock.oci import image, mutate
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Healthcheck,
    History,
    Image,
    ImageConfig,
    Platform,
    canonical_json,
)
from wheeldock.oci.layer import Layer, TarEntry, build_layer

EPOCH = 1_700_000_000


@pytest.fixture
def two_layers(store: BlobStore) -> tuple[Layer, Layer]:
    base = build_layer([TarEntry.file("bin/tool", b"base", mode=0o755)], store=store, mtime=EPOCH)
    app = build_layer([TarEntry.file("app/main.py", b"app")], store=store, mtime=EPOCH)
    return base, app


def built(two_layers: tuple[Layer, Layer]) -> Image:
    img = mutate.append_layers(image.empty(), two_layers)
    img = mutate.with_config(
        img,
        cmd=["python3", "main.py"],
        env={"PATH": "/usr/local/bin:/usr/bin", "PYTHONUNBUFFERED": "1"},
        working_dir="/app",
        exposed_ports=["8000/tcp"],
        labels={"org.opencontainers.image.title": "calidda-api"},
        healthcheck=Healthcheck(
            test=("CMD", "python3", "-c", "import urllib.request"),
            interval=5,
            timeout=2.5,
            start_period=1,
            start_interval=0.5,
            retries=3,
        ),
        stop_signal="SIGTERM",
    )
    return mutate.with_created(img, EPOCH)


def test_canonical_json_sorts_keys_without_spaces() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": "é", "c": None}]}) == (
        '{"a":[1,{"c":null,"d":"é"}],"b":1}'.encode()
    )


def test_manifest_is_canonical_and_names_config_and_layers(two_layers: tuple[Layer, Layer]) -> None:
    img = built(two_layers)
    raw = img.manifest_bytes()
    assert raw == canonical_json(json.loads(raw))
    manifest = json.loads(raw)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MEDIA_TYPE_MANIFEST
    assert manifest["config"] == {
        "mediaType": MEDIA_TYPE_CONFIG,
        "digest": str(Digest.of_bytes(img.config_bytes())),
        "size": len(img.config_bytes()),
    }
    assert [d["digest"] for d in manifest["layers"]] == [str(x.digest) for x in two_layers]
    assert img.digest == Digest.of_bytes(raw)


def test_config_holds_runtime_settings_base_first(two_layers: tuple[Layer, Layer]) -> None:
    config = json.loads(built(two_layers).config_bytes())
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["rootfs"] == {"type": "layers", "diff_ids": [str(x.diff_id) for x in two_layers]}
    c = config["config"]
    assert c["Cmd"] == ["python3", "main.py"]
    assert c["Env"] == ["PATH=/usr/local/bin:/usr/bin", "PYTHONUNBUFFERED=1"]
    assert c["WorkingDir"] == "/app" and c["ExposedPorts"] == {"8000/tcp": {}}
    assert c["Healthcheck"] == {
        "Test": ["CMD", "python3", "-c", "import urllib.request"],
        "Interval": 5_000_000_000,
        "Timeout": 2_500_000_000,
        "StartPeriod": 1_000_000_000,
        "StartInterval": 500_000_000,
        "Retries": 3,
    }
    assert c["StopSignal"] == "SIGTERM"
    assert len(config["history"]) == 2


def test_same_inputs_give_same_digest(two_layers: tuple[Layer, Layer]) -> None:
    assert built(two_layers).digest == built(two_layers).digest


def test_mutate_returns_new_images_and_leaves_the_old_alone(
    two_layers: tuple[Layer, Layer],
) -> None:
    img = built(two_layers)
    before = img.manifest_bytes()
    changed = mutate.with_config(img, cmd=["other"])
    assert img.manifest_bytes() == before and img.config.cmd == ("python3", "main.py")
    assert changed.digest != img.digest and changed.config.cmd == ("other",)
    more = mutate.append_layers(img, [two_layers[0]])
    assert len(img.layers) == 2 and len(more.layers) == 3


def test_env_mapping_replaces_in_place_and_appends_new_keys() -> None:
    img = mutate.with_config(image.empty(), env={"A": "1", "B": "2"})
    img = mutate.with_config(img, env={"B": "3", "C": "4"})
    assert img.config.env == ("A=1", "B=3", "C=4")
    assert img.env() == {"A": "1", "B": "3", "C": "4"}


def test_unknown_config_field_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(InvalidConfig) as info:
        mutate.with_config(image.empty(), commnd=["x"])
    assert "cmd" in (info.value.fix or "")


def test_history_must_match_layer_count(two_layers: tuple[Layer, Layer]) -> None:
    with pytest.raises(InvalidConfig, match="2 layers but 1 history"):
        mutate.append_layers(image.empty(), two_layers, history=[History(created_by="x")])


def test_image_read_from_raw_keeps_its_digest_until_mutated(
    two_layers: tuple[Layer, Layer],
) -> None:
    img = built(two_layers)
    # a source's manifest may not be canonical: its digest must survive anyway
    raw_manifest = json.dumps(json.loads(img.manifest_bytes()), indent=3).encode()
    raw_config = json.dumps(json.loads(img.config_bytes()), indent=1).encode()
    read = Image.from_raw(raw_manifest, raw_config, img.layers)
    assert read.digest == Digest.of_bytes(raw_manifest)
    assert read.config_bytes() == raw_config
    assert read.config.cmd == ("python3", "main.py") and read.created == img.created
    assert read.config.healthcheck == img.config.healthcheck
    assert mutate.with_config(read, user="app").manifest_bytes() != raw_manifest


def test_unmodelled_config_keys_survive_a_round_trip() -> None:
    data = {"Cmd": ["a"], "ArgsEscaped": True, "OnBuild": ["RUN x"], "Env": ["A=1"]}
    assert ImageConfig.from_json(data).to_json() == data


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("arm64", Platform("linux", "arm64")),
    ],
)
def test_platform_parse_and_str(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected
    assert str(expected) == (text if "/" in text else f"linux/{text}")


def test_bad_platform_is_rejected() -> None:
    with pytest.raises(InvalidConfig):
        Platform.parse("linux//")


def test_index_lists_images_by_platform_in_a_stable_order(two_layers: tuple[Layer, Layer]) -> None:
    amd = built(two_layers)
    arm = mutate.with_platform(amd, Platform("linux", "arm64", "v8"))
    one = image.index_of(amd, arm)
    two = image.index_of(arm, amd)
    assert one.digest == two.digest
    manifest = json.loads(one.manifest_bytes())
    assert manifest["mediaType"] == MEDIA_TYPE_INDEX
    assert [m["platform"]["architecture"] for m in manifest["manifests"]] == ["amd64", "arm64"]
    assert one.image(Platform("linux", "arm64")) == arm
    with pytest.raises(NotFound, match="no image for linux/s390x"):
        one.image(Platform("linux", "s390x"))


def test_empty_image_has_no_layers_and_a_valid_config() -> None:
    img = image.empty(Platform("linux", "arm64"))
    config = json.loads(img.config_bytes())
    assert config["rootfs"] == {"type": "layers", "diff_ids": []}
    assert config["architecture"] == "arm64"
    assert json.loads(img.manifest_bytes())["layers"] == []
