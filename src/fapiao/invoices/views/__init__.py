"""The invoice pages (their URLs are in ``fapiao.invoices.urls``)."""
