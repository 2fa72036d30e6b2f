"""The address book and product catalogue pages (their URLs are in ``fapiao.catalogue.urls``)."""
