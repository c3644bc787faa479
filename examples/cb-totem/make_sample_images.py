"""Writes the sample screen images in vcc-totem/images/ (run once; the bytes are committed).

Drawn, not photographed, so they are tiny and reproducible: a logo (PNG with transparency), a
promotion banner (JPEG) and a payment-points map tile (WEBP).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent / "vcc-totem" / "images"


def logo() -> Image.Image:
    image = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, 248, 248), fill=(0, 84, 166, 255))
    # A flame: three stacked teardrops, blue to yellow.
    for inset, colour in (
        (0, (0, 170, 228, 255)),
        (22, (120, 200, 80, 255)),
        (44, (255, 204, 0, 255)),
    ):
        draw.polygon(
            [(128, 40 + inset), (188 - inset, 150), (128, 216 - inset // 2), (68 + inset, 150)],
            fill=colour,
        )
    return image


def promo() -> Image.Image:
    width, height = 640, 360
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for x in range(width):
        shade = x * 255 // width
        draw.line([(x, 0), (x, height)], fill=(0, 60 + shade // 3, 120 + shade // 2))
    draw.rounded_rectangle((40, 220, 360, 320), radius=24, fill=(255, 204, 0))
    draw.text((60, 250), "Paga tu recibo aqui", fill=(0, 40, 90))
    draw.ellipse((440, 60, 600, 220), outline=(255, 255, 255), width=8)
    return image


def map_tile() -> Image.Image:
    image = Image.new("RGB", (320, 320), (236, 232, 220))
    draw = ImageDraw.Draw(image)
    for i in range(0, 320, 40):
        draw.line([(i, 0), (i + 60, 320)], fill=(255, 255, 255), width=6)
        draw.line([(0, i), (320, i - 30)], fill=(255, 255, 255), width=4)
    for x, y in ((70, 90), (210, 150), (150, 250)):
        draw.ellipse((x - 10, y - 10, x + 10, y + 10), fill=(220, 40, 40))
    return image


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    logo().save(OUT / "logo.png", optimize=True)
    promo().save(OUT / "promo.jpg", quality=70, optimize=True)
    map_tile().save(OUT / "pagos-map.webp", quality=60)
    for path in sorted(OUT.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
