"""Loop tests reuse the training tests' database: a fresh SQLite file whose active version is the tiny model."""

from tests.training.conftest import training_database  # noqa: F401  (a fixture)
