"""The team's flight-delay pipeline (the starter: the notebook's code, cut into steps)."""
