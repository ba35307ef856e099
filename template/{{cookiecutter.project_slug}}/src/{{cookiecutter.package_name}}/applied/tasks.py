"""The applied track's tasks for the core training loop: `data.kind: classify` (classify.py).

The core imports this module at run time (tasks.task_class) and never imports it by name.
"""

from .classify import ClassifyTask

__all__ = ["ClassifyTask"]
