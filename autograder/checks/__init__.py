"""The check catalogue: one module per lab, plus the checks any lab can use (``common``).

A lab.toml names each check by its import path, e.g. ``autograder.checks.serving:check_api_contract``.
"""
