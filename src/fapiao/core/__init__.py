"""The pure core of Fapiao Vault: no Django, no database, no network.

Everything here is importable with the standard library plus ``cryptography`` and
``rfc8785`` (and ``python-stdnum`` for identifiers), so the offline receipt verifier
and a client library can reuse it.
"""
