"""`droidrl eval`: a policy on a task suite under a named protocol, repeated runs with CIs, resumable, with a report.

`python -m droidrl.eval ...` (what `ray job submit` runs) and `droidrl eval ...` are the same command.
"""
