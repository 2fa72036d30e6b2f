from django.contrib import admin
from django.urls import include, path

from fapiao.api import api
from fapiao.ops import incidents as ops_incidents
from fapiao.ops import metrics as ops_metrics
from fapiao.ops import views as ops_views

urlpatterns = [
    path("api/v1/", api.urls),
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_metrics.metrics, name="metrics"),
    path("incidents/", ops_incidents.incident_list, name="incidents"),
    path("incidents/<int:incident_id>/", ops_incidents.incident_page, name="incident"),
    path("incidents/<int:incident_id>/act/", ops_incidents.incident_act, name="incident-act"),
    path("ledger/", include("fapiao.ledger.urls")),
    path("operations/", include("fapiao.ops.urls")),
    path("audit/", include("fapiao.audit.urls")),
    path("accounts/", include("fapiao.accounts.urls")),
    path("cases/", include("fapiao.recovery.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("fapiao.documents.urls")),
    path("", include("fapiao.invoices.urls")),
    path("", include("fapiao.catalogue.urls")),
    path("", include("fapiao.web.urls")),
]

# Error pages in plain words (under /api/ they are problem documents).
handler403 = "fapiao.platform.errors.permission_denied"
handler404 = "fapiao.platform.errors.page_not_found"
handler500 = "fapiao.platform.errors.server_error"
