"""What every domain app stands on, importing none of them: the unit of work and group commit,
idempotency, problem documents, request and form helpers, and the one mapping of errors to
responses for the API and the pages."""
