#!/bin/sh
# What the container ran at every start before wheeldock.
set -e
apt-get update
apt-get install -y --no-install-recommends libyaml-0-2
pip install -e .
exec python -m jobs
