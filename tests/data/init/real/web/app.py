import sys

from flask import Flask

app = Flask(__name__)


@app.get("/health")
def health() -> dict[str, str]:
    return {"service": "web", "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}
