"""Storage: tables, engine and session factory, migrations, batched writes and the queries the API needs."""
