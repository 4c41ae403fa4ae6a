"""Task templates for files (being written)."""

from droidrl.envs.tasks.base import TaskTemplate

TEMPLATES: list[TaskTemplate] = []
