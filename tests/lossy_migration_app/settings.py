"""The project's settings plus the lossy app: for running the real `fapiao migrate` in a subprocess."""

from fapiao.settings import *  # noqa: F403
from fapiao.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.lossy_migration_app"]
