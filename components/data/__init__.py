"""The data layer: PostgreSQL, Redis, OpenSearch, the documents bucket and the stack's secrets."""
