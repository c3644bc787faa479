"""One service of the fleet: every service runs this code, told apart by SERVICE_NAME.

Endpoints:
  GET /health          liveness: the service's name
  GET /peer/{port}     this service's view of a sibling's /health (on 127.0.0.1:port)
"""

from __future__ import annotations

import os

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException

NAME = os.environ.get("SERVICE_NAME", "fleet")
app = FastAPI(title=NAME)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "service": NAME}


@app.get("/peer/{port}")
def peer(port: int) -> dict[str, object]:
    if not 1 <= port <= 65535:
        raise HTTPException(422, "port must be 1 to 65535")
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    except httpx.TransportError as exc:
        raise HTTPException(502, f"127.0.0.1:{port} did not answer: {exc}") from exc
    return {"from": NAME, "status": response.status_code, "answer": response.json()}


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8110")), log_level="warning")
