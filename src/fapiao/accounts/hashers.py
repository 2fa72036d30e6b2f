"""Password hashing: Argon2id with parameters stated here, at or above the OWASP minimum.

OWASP's Password Storage Cheat Sheet asks for Argon2id with at least 19 MiB of memory, 2
iterations and 1 degree of parallelism.  We use more memory and more passes; Django rehashes a
stored password with weaker parameters the next time its owner signs in.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher

OWASP_MIN_MEMORY_KIB = 19 * 1024
OWASP_MIN_TIME_COST = 2
OWASP_MIN_PARALLELISM = 1


class Argon2idHasher(Argon2PasswordHasher):
    """Argon2id, 64 MiB, 3 passes, 2 lanes (about 0.1 s on one core of a 2024 server)."""

    # Same algorithm name as Django's hasher, so hashes stay interchangeable and are upgraded.
    algorithm = "argon2"
    memory_cost = 64 * 1024  # KiB
    time_cost = 3
    parallelism = 2
