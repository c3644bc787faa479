SECRET_KEY = "corpus"
STATIC_URL = "static/"
STATIC_ROOT = "staticfiles"
INSTALLED_APPS = ["django.contrib.staticfiles"]
ROOT_URLCONF = "mysite.urls"
