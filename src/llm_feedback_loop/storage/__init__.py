"""The database: tables, the engine, one database context (`database.py`), migrations, the JSON codec and the
key rows are grouped by (`prompts.py`). The feedback store over it is `feedback/`."""
