"""catalog-api: a product catalog fed by a supplier's XML, with thumbnails and signed links.

Endpoints:
  GET  /health                       liveness, with the ODBC drivers pyodbc sees
  POST /catalog                      replace the catalog with a supplier feed (XML body)
  POST /catalog/upload               the same, as a multipart file upload
  POST /catalog/fetch?url=…          the same, fetched from the supplier's URL
  GET  /items                        the catalog as JSON
  GET  /items/{sku}/thumbnail?w=64   a PNG swatch of the item's colour
  GET  /items/{sku}/link             a signed link to the item (Ed25519)
  GET  /                             the catalog as an HTML page
"""

from __future__ import annotations

import base64
import io
from dataclasses import asdict, dataclass

import httpx
import orjson
import pyodbc
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, HTTPException, Request, Response, UploadFile
from jinja2 import Environment
from lxml import etree
from PIL import Image
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    host: str = "0.0.0.0"
    port: int = 8010
    public_url: str = "http://127.0.0.1:8010"


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    price_cents: int
    colour: str  # #rrggbb


class InvalidFeed(ValueError):
    pass


def parse_feed(xml: bytes) -> list[Item]:
    """The items of a supplier feed: ``<feed><item sku=".." colour="#rrggbb"><name/><price/>``."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidFeed(f"not XML: {exc}") from exc
    items = []
    for node in root.iterfind("item"):
        sku, colour = node.get("sku"), node.get("colour", "#808080")
        name, price = node.findtext("name"), node.findtext("price")
        if not sku or name is None or price is None:
            raise InvalidFeed(f"item {sku or '?'}: sku, name and price are required")
        items.append(Item(sku, name.strip(), round(float(price) * 100), colour))
    return items


def swatch(colour: str, width: int) -> bytes:
    """A PNG square of ``colour``, ``width`` pixels a side."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, width), colour).save(buffer, format="PNG")
    return buffer.getvalue()


PAGE = Environment(autoescape=True).from_string(
    "<!doctype html><title>Catalog</title><ul>"
    "{% for i in items %}<li>{{ i.name }}: {{ '%.2f' % (i.price_cents / 100) }}</li>{% endfor %}"
    "</ul>"
)


def make_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="catalog-api")
    key = Ed25519PrivateKey.generate()
    catalog: dict[str, Item] = {}

    def item(sku: str) -> Item:
        if sku not in catalog:
            raise HTTPException(404, f"no item {sku}")
        return catalog[sku]

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "items": len(catalog), "odbc_drivers": pyodbc.drivers()}

    def replace(xml: bytes) -> dict[str, int]:
        try:
            items = parse_feed(xml)
        except InvalidFeed as exc:
            raise HTTPException(422, str(exc)) from exc
        catalog.clear()
        catalog.update((i.sku, i) for i in items)
        return {"items": len(catalog)}

    @app.post("/catalog")
    async def load(request: Request) -> dict[str, int]:
        return replace(await request.body())

    @app.post("/catalog/upload")
    async def upload(feed: UploadFile) -> dict[str, int]:
        return replace(await feed.read())

    @app.post("/catalog/fetch")
    async def fetch(url: str) -> dict[str, int]:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
        if response.status_code != 200:
            raise HTTPException(502, f"{url} answered {response.status_code}")
        return replace(response.content)

    @app.get("/items")
    def items() -> Response:
        body = orjson.dumps([asdict(i) for i in catalog.values()])
        return Response(body, media_type="application/json")

    @app.get("/items/{sku}/thumbnail")
    def thumbnail(sku: str, w: int = 64) -> Response:
        if not 1 <= w <= 1024:
            raise HTTPException(422, "w must be 1 to 1024")
        return Response(swatch(item(sku).colour, w), media_type="image/png")

    @app.get("/items/{sku}/link")
    def link(sku: str) -> dict[str, str]:
        signature = key.sign(item(sku).sku.encode())
        token = base64.urlsafe_b64encode(signature).decode().rstrip("=")
        return {"url": f"{settings.public_url}/items/{sku}?sig={token}"}

    @app.get("/")
    def page() -> Response:
        return Response(PAGE.render(items=list(catalog.values())), media_type="text/html")

    return app


if __name__ == "__main__":
    settings = Settings()
    uvicorn.run(make_app(settings), host=settings.host, port=settings.port, log_level="warning")
