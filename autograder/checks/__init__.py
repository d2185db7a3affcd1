"""The check catalogue: ``common`` holds the checks any lab can use; a lab's own checks live in
modules named after it (the serving lab: ``serving`` for its API, ``serving_model`` for the model
it serves), beside the helpers they share (``serving_contract``: the lab's API contract as
pydantic models; ``flights_api``: requests built from the flight data; ``loadgen``: concurrent
load). Only functions named ``check_*`` are checks.

A lab.toml names each check by its import path, e.g. ``autograder.checks.serving:check_api_contract``.
"""
