"""srv-img: serves the totem's screen images, resized on request.

``GET /img/{name}?w=&h=`` answers the image ``name`` from ``$IMAGES_DIR`` (default ``images/``
next to this file). With only ``w`` or only ``h`` the aspect ratio is kept; with both the image is
resized to exactly ``w`` x ``h``; with neither the file is sent as it is. ``PORT`` (default 8001)
and ``HOST`` (default 0.0.0.0) set the listener.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import uvicorn
from fastapi import FastAPI, HTTPException, Query, Response
from fastapi import Path as PathParam
from PIL import Image, UnidentifiedImageError

log = logging.getLogger("srv_img")

HERE = Path(__file__).resolve().parent
MAX_SIDE = 2048
# One path segment of plain characters: no separators, no "..", nothing a shell or a file system
# treats specially.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
MAX_NAME = 128
# File suffix -> the Pillow format it must decode as, and the format the answer is encoded in.
FORMATS: dict[str, tuple[str, str]] = {
    ".png": ("PNG", "PNG"),
    ".jpg": ("JPEG", "JPEG"),
    ".jpeg": ("JPEG", "JPEG"),
    ".webp": ("WEBP", "WEBP"),
    ".gif": ("GIF", "PNG"),  # resized GIFs lose animation anyway; PNG keeps the palette crisp
}
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}

Side = Annotated[int | None, Query(ge=1, le=MAX_SIDE, description=f"1..{MAX_SIDE} pixels")]


def check_name(name: str) -> str:
    """``name`` if it is a safe single file name, else a 400."""
    if len(name) > MAX_NAME or not SAFE_NAME.fullmatch(name) or ".." in name:
        raise HTTPException(
            400,
            f"invalid image name {name!r}: use 1-{MAX_NAME} letters, digits, '_', '-' "
            "and single dots",
        )
    return name


def target_size(original: tuple[int, int], w: int | None, h: int | None) -> tuple[int, int]:
    """The output size: exact when both sides are given, aspect-preserving when one is."""
    width, height = original
    if w is not None and h is not None:
        return w, h
    if w is not None:
        return w, max(1, min(MAX_SIDE, round(height * w / width)))
    if h is not None:
        return max(1, min(MAX_SIDE, round(width * h / height))), h
    return original


def render(path: Path, w: int | None, h: int | None) -> tuple[bytes, str]:
    """The image at ``path`` resized to ``w``/``h``, encoded; returns (bytes, media type)."""
    expected, out_format = FORMATS[path.suffix.lower()]
    try:
        with Image.open(path) as image:
            if image.format != expected:
                raise HTTPException(
                    415, f"{path.name} is {image.format or 'unknown'} data, not {expected}"
                )
            if w is None and h is None:
                return path.read_bytes(), MEDIA_TYPES[expected]
            size = target_size(image.size, w, h)
            resized = image.resize(size, Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise HTTPException(404, f"no image named {path.name!r}") from exc
        raise HTTPException(415, f"{path.name} cannot be decoded as {expected}") from exc
    if out_format == "JPEG" and resized.mode not in ("RGB", "L"):
        resized = resized.convert("RGB")
    buffer = io.BytesIO()
    options = {"quality": 85} if out_format in ("JPEG", "WEBP") else {"optimize": True}
    resized.save(buffer, format=out_format, **options)
    return buffer.getvalue(), MEDIA_TYPES[out_format]


def create_app(images_dir: Path | None = None) -> FastAPI:
    root = (images_dir or Path(os.environ.get("IMAGES_DIR", HERE / "images"))).resolve()
    app = FastAPI(title="srv-img", version="1.0.0")
    app.state.images_dir = root

    def locate(name: str) -> Path:
        check_name(name)
        path = (root / name).resolve()
        # A symlink inside the folder must not lead out of it.
        if not path.is_relative_to(root):
            raise HTTPException(400, f"invalid image name {name!r}: it leads outside the folder")
        if not path.is_file():
            raise HTTPException(404, f"no image named {name!r}")
        if path.suffix.lower() not in FORMATS:
            raise HTTPException(
                415, f"{name} is not a supported image; supported: {', '.join(sorted(FORMATS))}"
            )
        return path

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/img")
    def list_images() -> dict[str, list[str]]:
        if not root.is_dir():
            return {"images": []}
        names = sorted(
            p.name
            for p in root.iterdir()
            if p.is_file() and p.suffix.lower() in FORMATS and SAFE_NAME.fullmatch(p.name)
        )
        return {"images": names}

    # ``{name:path}`` so that names with "/" reach the check and get a 400 rather than a 404.
    # A sync endpoint: FastAPI runs it in its thread pool, so resizing does not block the loop.
    @app.get("/img/{name:path}")
    def image(name: Annotated[str, PathParam()], w: Side = None, h: Side = None) -> Response:
        body, media_type = render(locate(name), w, h)
        return Response(
            body, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"}
        )

    return app


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        port = int(os.environ.get("PORT", "8001"))
    except ValueError:
        print(f"srv-img: PORT must be a number, got {os.environ['PORT']!r}", file=sys.stderr)
        return 2
    app = create_app()
    if not app.state.images_dir.is_dir():
        print(f"srv-img: images folder {app.state.images_dir} does not exist", file=sys.stderr)
        return 2
    # 0.0.0.0: inside a container the published/host-network port must be reachable from outside.
    uvicorn.run(app, host=os.environ.get("HOST", "0.0.0.0"), port=port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
