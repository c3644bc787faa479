from django.contrib.auth.models import User
from django.http import JsonResponse
from django.urls import path


def health(request):
    # a query: the migrations ran, and the SQLite file is readable and writable here
    return JsonResponse({"service": "site", "users": User.objects.count()})


urlpatterns = [path("health", health)]
