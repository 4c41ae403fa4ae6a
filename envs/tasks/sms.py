"""Task templates for sms (being written)."""

from droidrl.envs.tasks.base import TaskTemplate

TEMPLATES: list[TaskTemplate] = []
