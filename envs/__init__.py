"""Android devices, the action language, the gymnasium environment, tasks and suites."""
