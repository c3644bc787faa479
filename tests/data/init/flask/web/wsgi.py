"""A small Flask app: a health route and a page that names the shop."""

import os

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/healthz", methods=["GET"])
def healthz():
    return jsonify(status="ok")


@app.post("/orders")
def create_order():
    return jsonify(created=True), 201


@app.route("/")
def index():
    return f"welcome to {os.environ.get('SHOP_NAME', 'the shop')}"
