"""Backups proven by restoring them (``fapiao backup``): docs/operations/backup.md."""
