"""Task templates for contacts (being written)."""

from droidrl.envs.tasks.base import TaskTemplate

TEMPLATES: list[TaskTemplate] = []
