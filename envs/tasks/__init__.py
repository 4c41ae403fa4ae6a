"""Tasks for the simulated apps: templates with seeded parameters, setup, checkers and expert solutions."""
