#!/bin/sh
set -e
pip install --no-cache-dir -r requirements-prod.txt
python manage.py migrate --noinput
exec gunicorn app.wsgi:application --bind 0.0.0.0:8000
