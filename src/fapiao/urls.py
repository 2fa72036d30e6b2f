from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from fapiao.api import api
from fapiao.ops import views as ops_views

urlpatterns = [
    path("api/v1/", api.urls),
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("ledger/", include("fapiao.ledger.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
]
