from pathlib import Path

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    prepared = Path("/tmp/prepared")
    return {"status": "ok", "prepared": prepared.read_text() if prepared.exists() else "no"}
