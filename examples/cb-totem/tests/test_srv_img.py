"""srv-img (vcc-totem/main.py): serving and resizing images, and refusing bad requests."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "vcc-totem" / "images"


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """The shipped samples plus files that must be refused, in a folder inside ``tmp_path``."""
    folder = tmp_path / "images"
    shutil.copytree(SAMPLES, folder)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    shutil.copy(SAMPLES / "logo.png", folder / "disguised.jpg")
    Image.new("RGB", (4, 4)).save(folder / "tiny.bmp")
    (tmp_path / "secret.png").write_bytes((SAMPLES / "logo.png").read_bytes())
    (folder / "escape.png").symlink_to(tmp_path / "secret.png")
    return folder


@pytest.fixture
def client(srv_img: ModuleType, images: Path) -> TestClient:
    return TestClient(srv_img.create_app(images))


def decode(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def test_health_answers_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_listing_names_only_supported_images(client: TestClient) -> None:
    response = client.get("/img")
    assert response.status_code == 200
    assert response.json()["images"] == [
        "broken.png",
        "disguised.jpg",
        "escape.png",
        "logo.png",
        "pagos-map.webp",
        "promo.jpg",
    ]


def test_image_without_size_is_sent_unchanged(client: TestClient) -> None:
    response = client.get("/img/promo.jpg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content == (SAMPLES / "promo.jpg").read_bytes()


@pytest.mark.parametrize(
    ("query", "size"),
    [
        ("w=320", (320, 180)),  # promo.jpg is 640x360: aspect kept
        ("h=90", (160, 90)),
        ("w=100&h=100", (100, 100)),  # both: exact
        ("w=2048", (2048, 1152)),
        ("w=1&h=1", (1, 1)),
    ],
)
def test_jpeg_is_resized_as_asked(client: TestClient, query: str, size: tuple[int, int]) -> None:
    response = client.get(f"/img/promo.jpg?{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    image = decode(response.content)
    assert image.format == "JPEG"
    assert image.size == size


def test_png_keeps_format_and_transparency(client: TestClient) -> None:
    response = client.get("/img/logo.png?w=64")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = decode(response.content)
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (64, 64))
    assert image.getpixel((0, 0))[3] == 0  # the corner outside the disc stays transparent


def test_webp_is_resized_as_webp(client: TestClient) -> None:
    response = client.get("/img/pagos-map.webp?h=32")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert decode(response.content).size == (32, 32)


def test_short_side_never_rounds_to_zero(client: TestClient, images: Path) -> None:
    Image.new("RGB", (2000, 10)).save(images / "strip.png")
    response = client.get("/img/strip.png?w=50")
    assert response.status_code == 200
    assert decode(response.content).size == (50, 1)


@pytest.mark.parametrize(
    "query", ["w=0", "h=0", "w=2049", "h=4096", "w=-5", "w=abc", "h=1.5", "w=100&h=0"]
)
def test_sizes_outside_1_to_2048_are_rejected(client: TestClient, query: str) -> None:
    response = client.get(f"/img/promo.jpg?{query}")
    assert response.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/img/sub/logo.png",
        "/img/..%2Fsecret.png",
        "/img/%2E%2E%2Fsecret.png",
        "/img/%2E%2E",
        "/img/...png",
        "/img/logo..png",
        "/img/.hidden.png",
        "/img/back%5Cslash.png",
        "/img/..%5Csecret.png",
        "/img/nul%00.png",
        "/img/logo.png%00.txt",
        "/img/sp%20ace.png",
        "/img/%2Fetc%2Fpasswd",
        "/img/caf%C3%A9.png",
        "/img/" + "a" * 200 + ".png",
    ],
)
def test_unsafe_names_are_rejected_with_400(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400, (path, response.status_code)
    assert "invalid image name" in response.json()["detail"]


def test_symlink_leading_out_of_the_folder_is_rejected(client: TestClient) -> None:
    response = client.get("/img/escape.png")
    assert response.status_code == 400
    assert "outside" in response.json()["detail"]


@pytest.mark.parametrize("name", ["missing.png", "logo.PNG.png", "promo.jpeg"])
def test_unknown_images_are_404(client: TestClient, name: str) -> None:
    response = client.get(f"/img/{name}?w=10")
    assert response.status_code == 404


@pytest.mark.parametrize("name", ["notes.txt", "tiny.bmp", "broken.png", "disguised.jpg"])
def test_unsupported_or_undecodable_files_are_415(client: TestClient, name: str) -> None:
    response = client.get(f"/img/{name}?w=10")
    assert response.status_code == 415, response.text


def test_default_folder_is_images_next_to_main(
    srv_img: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGES_DIR", raising=False)
    app = srv_img.create_app()
    assert app.state.images_dir == SAMPLES


def test_images_dir_env_overrides_the_folder(
    srv_img: ModuleType, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGES_DIR", str(images))
    client = TestClient(srv_img.create_app())
    assert client.get("/img/notes.txt").status_code == 415


def test_shipped_samples_are_small_and_decodable() -> None:
    files = sorted(p for p in SAMPLES.iterdir() if p.is_file())
    assert len(files) >= 2
    assert sum(p.stat().st_size for p in files) < 50_000
    for path in files:
        with Image.open(path) as image:
            image.load()
