"""Integrations with the engines courses already run: nbgrader (the exports come later)."""
