"""Tasks: what the training loop trains.

A task builds its model, gives batches, computes the loss and the eval metrics, and writes
what the report shows (a text sample, worked examples). `train.py` runs the same loop for every
task. The core has two (`text`: next-character prediction on a corpus; `addition`: 2-digit sums);
a track adds its own by registering them in its `tasks.py` (found at run time, so the core never
imports a track). `data.kind` in the config chooses the task.
"""

from __future__ import annotations

import importlib
import importlib.util

from ..config import ConfigError
from .addition import AdditionTask
from .base import Task
from .text import DatasetsTextTask, TextTask

TASKS: dict[str, type[Task]] = {}
TRACKS = ("theory", "applied", "systems")


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available as `data.kind: <cls.name>`."""
    TASKS[cls.name] = cls
    return cls


for _cls in (TextTask, AdditionTask, DatasetsTextTask):
    register(_cls)


def _discover_track_tasks() -> None:
    """Import `<package>.<track>.tasks` for the track this project has; it registers its tasks."""
    package = __package__.rsplit(".", 1)[0]
    for track in TRACKS:
        if importlib.util.find_spec(f"{package}.{track}") is None:
            continue
        if importlib.util.find_spec(f"{package}.{track}.tasks") is not None:
            importlib.import_module(f"{package}.{track}.tasks")


def task_class(kind: str) -> type[Task]:
    if kind not in TASKS:
        _discover_track_tasks()
    if kind not in TASKS:
        raise ConfigError(f"data.kind: {kind!r} is not one of {', '.join(sorted(TASKS))}")
    return TASKS[kind]


__all__ = ["TASKS", "AdditionTask", "Task", "TextTask", "register", "task_class"]
