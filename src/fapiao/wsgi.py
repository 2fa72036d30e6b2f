"""WSGI entry point for gunicorn: ``gunicorn fapiao.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fapiao.settings")
application = get_wsgi_application()

from fapiao.ops.running import mark_running  # noqa: E402  after Django is set up

mark_running()  # `fapiao backup restore` refuses while any server process holds this
