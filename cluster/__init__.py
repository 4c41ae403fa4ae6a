"""Ray actors and placement: env actors, engine actors, learner group, job entry points."""
