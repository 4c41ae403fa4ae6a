"""Task templates for clock (being written)."""

from droidrl.envs.tasks.base import TaskTemplate

TEMPLATES: list[TaskTemplate] = []
