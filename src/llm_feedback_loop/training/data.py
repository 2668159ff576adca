"""Training data: an export read and checked for a method (the reading is training_data/files.py's), and
handed to TRL as a `datasets.Dataset` per split.

An export is a JSONL file (`NAME.jsonl`, or `NAME.train.jsonl` + `NAME.test.jsonl` with its
`NAME.manifest.json`) or a datasets folder (`llmfl export --as-dataset`). A bad row stops the run with
the file, the line and the field, so a typo never costs a model load. What a row of each kind holds is the
kinds table's (training_data/kinds.py); which kind a method trains on, the method's (training/methods/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_feedback_loop.training.methods import method_of
from llm_feedback_loop.training_data.files import DatasetError, TrainingData, jsonl_split_files, load_export
from llm_feedback_loop.training_data.kinds import kind_of, to_conversational

__all__ = ["DatasetError", "TrainingData", "jsonl_split_files", "load_training_data", "to_dataset"]


def load_training_data(path: str | Path, method: str) -> TrainingData:
    """Read and check an export for `method`. Raises DatasetError naming the file, line and field."""
    data = load_export(path, kind_of(method_of(method).kind), method)
    if not data.train:
        raise DatasetError(f"{data.path} holds no training rows; export some feedback first (`llmfl export {method}`)")
    problem = method_of(method).check_data(data.train)
    if problem:
        raise DatasetError(f"{data.path}: {problem}")
    return data


def to_dataset(rows: list[dict[str, Any]], method: str, chat_template: bool) -> Any:
    """A `datasets.Dataset` of the columns `method` needs, chat-formatted if asked."""
    from datasets import Dataset

    columns = kind_of(method_of(method).kind).column_names
    prepared = [to_conversational(row) if chat_template else row for row in rows]
    kept = [{column: row[column] for column in columns} for row in prepared]
    return Dataset.from_list(kept)
