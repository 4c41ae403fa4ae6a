"""Task templates for markor (being written)."""

from droidrl.envs.tasks.base import TaskTemplate

TEMPLATES: list[TaskTemplate] = []
