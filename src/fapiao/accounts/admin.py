from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from fapiao.accounts.models import ApiToken, Merchant, NumberSegment, User


class NoDeleteAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Nothing that carries legal or audit weight is deleted, not even from the admin."""

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):  # type: ignore[type-arg]
    fieldsets = (*BaseUserAdmin.fieldsets, ("Fapiao", {"fields": ("role", "merchant")}))  # type: ignore[misc]
    list_display = ("username", "role", "merchant", "is_active")

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Merchant)
class MerchantAdmin(NoDeleteAdmin):
    list_display = ("name", "uscc", "is_active")
    search_fields = ("name", "uscc")


@admin.register(NumberSegment)
class NumberSegmentAdmin(NoDeleteAdmin):
    list_display = ("merchant", "year", "province", "channel", "first_serial", "last_serial", "next_serial")
    readonly_fields = ("next_serial",)


@admin.register(ApiToken)
class ApiTokenAdmin(NoDeleteAdmin):
    list_display = ("user", "name", "scope", "prefix", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = ("digest", "prefix", "public_id")
