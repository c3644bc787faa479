import importlib.util

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def health(request: Request) -> JSONResponse:
    # the image holds the project's dependencies, not its dev group
    return JSONResponse({"status": "ok", "pytest": importlib.util.find_spec("pytest") is not None})


app = Starlette(routes=[Route("/health", health)])
