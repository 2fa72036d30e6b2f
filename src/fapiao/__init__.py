"""Fapiao Vault（发票保全）."""

__version__ = "0.1.0"
