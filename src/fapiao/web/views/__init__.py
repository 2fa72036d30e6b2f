"""The site frame's pages: home, account, and the error pages' templates."""
