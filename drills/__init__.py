"""Drills: the whole server (uvicorn + Celery worker, as `make run` starts them) under abuse.

`make drill` runs the full set, `python -m drills --short` the one `.ci/run` runs. Each drill
is bounded in time and count, prints its figures, and checks invariants (nothing acknowledged
lost, nothing half-visible, blobs and rows matching, one feed entry per change), not example
outputs. See docs/drills.md.
"""
