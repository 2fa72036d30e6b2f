"""WSGI entry point for gunicorn: ``gunicorn fapiao.wsgi``.

A worker refuses to start while files of the installation stay readable by other users
(``fapiao.platform.filemodes``: it closes those this account owns).
"""

import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fapiao.settings")
# Python's warnings become log records (logger "py.warnings"), so the server writes nothing but
# JSON lines to its standard error.
logging.captureWarnings(True)
application = get_wsgi_application()

from fapiao.ops.running import mark_running  # noqa: E402  after Django is set up
from fapiao.platform.filemodes import require_private  # noqa: E402  after Django is set up

require_private()  # refuse to serve while files of the installation are readable by others
mark_running()  # `fapiao backup restore` refuses while any server process holds this
