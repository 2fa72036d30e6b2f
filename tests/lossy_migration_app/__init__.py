"""A test-only app whose second migration botches the data: the migration check must catch it.

Installed only by tests/integration/test_migrate_check.py (never in settings).  ``0001`` changes
nothing; ``0002`` "converts fen to yuan" in the invoice lines of the first merchant — the kind of
data migration that makes invoices' amounts vanish.  Both depend on the latest invoices migration.
"""
