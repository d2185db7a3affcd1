"""The team's tests of flightdelay/steps.py. TODO: one test per promise the README makes."""

import pandas as pd
from flightdelay import steps


def test_label_returns_something() -> None:
    flights = pd.DataFrame({"arr_delay": [0.0, 30.0]})
    assert steps.label(flights) is not None
