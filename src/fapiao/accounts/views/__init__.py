"""The account pages: users, API tokens, the second step of signing in (URLs: ``fapiao.accounts.urls``)."""
