from django.db import migrations


class Migration(migrations.Migration):
    """The platform app's first migration; the models it takes over from other apps follow."""

    initial = True
    dependencies: list[tuple[str, str]] = []
    operations: list[migrations.operations.base.Operation] = []
