"""Every number the book's prose and decks quote, recomputed from the data.

Each claim names a file, a pattern that finds the sentence in the prose (code cells are cut
out first, so a claim can only match what a reader reads) and the value recomputed here,
independently of the chapter's code where that is practical. A claim fails when its sentence
disappears, when the number in it drifts from the data, or when the data changes under it.

Numbers are compared at the precision the prose gives them: "31%" must be the recomputed
share rounded to whole percent, "0.728" to three decimals. ``slack`` allows that many units
of the last digit for numbers the prose introduces with "about".

The model-based figures refit the reference model (a few seconds each, one thread, so that the
results do not depend on the machine's core count).
"""

from __future__ import annotations

import ast
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from autograder.data import late_label, load_flights, load_weather

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
DECKS = REPO / "slides" / "decks"
sys.path.insert(0, str(REPO / "labs" / "reference"))

from flightdelay.features import WEATHER_FIELDS, model_input  # noqa: E402
from flightdelay.model import build_logistic_baseline, build_pipeline  # noqa: E402

NEW_YORK = ZoneInfo("America/New_York")
CODE_CELL = re.compile(r"^```\{code-cell\}.*?^```\s*$", re.M | re.S)


def prose(rel: str) -> str:
    """A book file (``chapters/x.md``) or a deck (``deck:x``) without its code cells."""
    path = DECKS / f"{rel[5:]}.md" if rel.startswith("deck:") else BOOK / rel
    text = path.read_text(encoding="utf-8")
    return re.sub(r"\s+", " ", CODE_CELL.sub("", text))


def code(rel: str) -> str:
    return "\n".join(CODE_CELL.findall((BOOK / rel).read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------- the facts
def _threads() -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


@cache
def data() -> dict[str, Any]:
    weather = load_weather()
    public = load_flights("public")
    label = late_label(public)
    labelled = public[label.notna()].reset_index(drop=True)
    y = label[label.notna()].astype(bool).to_numpy()
    return {
        "weather": weather,
        "public": public,
        "public_label": label,
        "rows": labelled,
        "y": y,
        "X": model_input(labelled, weather),
    }


@cache
def reference_validation() -> dict[str, Any]:
    """The reference model fitted on Jan-Jun, its probabilities on Jul-Aug."""
    d = data()
    train = (d["rows"]["month"] <= 6).to_numpy()
    with _threads():
        model = build_pipeline().fit(d["X"][train], d["y"][train])
        p = model.predict_proba(d["X"][~train])[:, 1]
    return {"model": model, "p": p, "y": d["y"][~train], "train": train}


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


@cache
def facts() -> dict[str, float]:
    """Every recomputed number, by name."""
    d = data()
    rows, y, X, weather = d["rows"], d["y"], d["X"], d["weather"]
    month = rows["month"].to_numpy()
    f: dict[str, float] = {}

    # introduction and baselines
    f["public_late_share"] = float(d["public_label"].mean())
    summer = month >= 7
    f["val_on_time_pct"] = 100 * (1 - y[summer].mean())
    f["val_late_pct"] = 100 * y[summer].mean()

    # the reference model at two thresholds (what-is-different)
    ref = reference_validation()
    for t in (0.3, 0.5):
        pred = ref["p"] >= t
        f[f"error_pct_{t}"] = 100 * float((pred != ref["y"]).mean())
        f[f"recall_pct_{t}"] = 100 * float((pred & ref["y"]).sum() / ref["y"].sum())
        f[f"warned_pct_{t}"] = 100 * float(pred.mean())

    # hour x season (what-is-different), over all public flights with a label
    public = d["public"].assign(late=d["public_label"])
    band = pd.cut(public["hour"], [0, 10, 14, 18, 24], right=False, labels=["m", "x", "y", "e"])
    is_summer = public["month"].isin([6, 7, 8])
    for name, sel in (("summer", is_summer), ("winter", ~is_summer)):
        share = public[sel].groupby(band[sel], observed=True)["late"].mean()
        f[f"{name}_morning_pct"] = 100 * float(share["m"])
        f[f"{name}_evening_pct"] = 100 * float(share["e"])
        f[f"{name}_effect_points"] = 100 * float(share["e"] - share["m"])
    f["evening_late_pct"] = 100 * float(public.loc[public["hour"] >= 18, "late"].mean())
    by_month = public.groupby("month")["late"].mean()
    f["july_minus_max_training_month"] = float(by_month.loc[7] - by_month.loc[1:6].max())
    f["may_late_pct"] = 100 * float(by_month.loc[5])
    f["july_late_pct"] = 100 * float(by_month.loc[7])

    # splits (model-to-system): random flights, random days, time
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    n_test = int(summer.sum())
    everything = np.arange(len(y))
    day = rows["month"] * 100 + rows["day"]
    scores: dict[str, list[float]] = {"flights": [], "days": []}
    with _threads():
        for draw in range(3):
            by_flight = train_test_split(everything, test_size=n_test, random_state=draw)
            by_day = next(
                GroupShuffleSplit(1, test_size=n_test / len(y), random_state=draw).split(
                    X, groups=day
                )
            )
            for name, (tr, te) in (("flights", by_flight), ("days", by_day)):
                p = build_pipeline().fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[te])[:, 1]
                scores[name].append(_auc(y[te], p))
    f["auc_random_flights"] = float(np.mean(scores["flights"]))
    f["auc_random_days"] = float(np.mean(scores["days"]))
    f["auc_random_days_min"] = min(scores["days"])
    f["auc_random_days_max"] = max(scores["days"])
    f["auc_time"] = _auc(ref["y"], ref["p"])
    f["leakage_auc"] = f["auc_random_flights"] - f["auc_random_days"]
    f["time_mean_p"] = float(ref["p"].mean())

    # feature availability: the newest reading at 20:00 New York time the day before
    readings = weather.sort_values("time_hour")[["origin", "time_hour", *WEATHER_FIELDS]]

    def evening(sel: np.ndarray) -> pd.DataFrame:
        r = rows[sel]
        asked = [
            datetime(a, b, c, tzinfo=NEW_YORK) - timedelta(hours=4)
            for a, b, c in zip(r["year"], r["month"], r["day"], strict=True)
        ]
        asks = pd.DataFrame(
            {
                "origin": r["origin"].to_numpy(),
                "row": np.arange(len(r)),
                "asked": pd.to_datetime(asked, utc=True).astype(readings["time_hour"].dtype),
            }
        )
        asks = asks.sort_values("asked")
        known = pd.merge_asof(
            asks, readings, left_on="asked", right_on="time_hour", by="origin", direction="backward"
        ).sort_values("row")
        return X[sel].assign(**{c: known[c].to_numpy() for c in WEATHER_FIELDS})

    train = ref["train"]
    with _threads():
        p_evening = (
            build_pipeline().fit(evening(train), y[train]).predict_proba(evening(~train))[:, 1]
        )
    f["auc_evening_before"] = _auc(ref["y"], p_evening)
    f["availability_gap"] = f["auc_time"] - f["auc_evening_before"]

    # cross-validation: shuffled folds agree more closely than forward-chained ones
    from sklearn.model_selection import KFold, cross_val_score

    tr_rows = np.flatnonzero(train)
    months = month[train]
    forward = [(np.flatnonzero(months <= k), np.flatnonzero(months == k + 1)) for k in range(1, 6)]
    with _threads():
        shuffled = cross_val_score(
            build_logistic_baseline(),
            X.iloc[tr_rows],
            y[tr_rows],
            scoring="roc_auc",
            cv=KFold(5, shuffle=True, random_state=0),
        )
        chained = cross_val_score(
            build_logistic_baseline(), X.iloc[tr_rows], y[tr_rows], scoring="roc_auc", cv=forward
        )
    f["cv_shuffled_spread"] = float(shuffled.max() - shuffled.min())
    f["cv_chained_spread"] = float(chained.max() - chained.min())
    # the level, next to the same five-fold cut with every day kept whole (GroupKFold by day)
    from sklearn.model_selection import GroupKFold

    train_days = (rows["month"] * 100 + rows["day"]).to_numpy()[tr_rows]
    with _threads():
        whole_days = cross_val_score(
            build_logistic_baseline(),
            X.iloc[tr_rows],
            y[tr_rows],
            scoring="roc_auc",
            cv=GroupKFold(5),
            groups=train_days,
        )
    f["cv_shuffled_mean"] = float(shuffled.mean())
    f["cv_days_mean"] = float(whole_days.mean())

    # temperatures of the validation months against the training months (Jan-Jun)
    temp = X["temp"]
    trained = month <= 6
    f["train_max_temp"] = float(temp[trained].max())
    f["val_above_train_max_pct"] = 100 * float(temp[~trained].gt(temp[trained].max()).mean())
    f["train_mean_temp"] = float(temp[trained].mean())
    f["val_mean_temp"] = float(temp[~trained].mean())
    for m in (6, 7):
        f[f"mean_temp_{m}"] = float(temp[month == m].mean())

    # testing in production: label waits, computed from the local schedule (not time_hour)
    local_departure = [
        datetime(a, b, c, h, m, tzinfo=NEW_YORK)
        for a, b, c, h, m in zip(
            rows["year"], rows["month"], rows["day"], rows["hour"], rows["minute"], strict=True
        )
    ]
    dep = pd.Series(pd.to_datetime(local_departure, utc=True))
    landed = dep + pd.to_timedelta(rows["dep_delay"] + rows["air_time"], unit="min")
    hour_start = dep.dt.floor("h")
    evening_ask = pd.Series(
        pd.to_datetime(
            [
                datetime(a, b, c, tzinfo=NEW_YORK) - timedelta(hours=4)
                for a, b, c in zip(rows["year"], rows["month"], rows["day"], strict=True)
            ],
            utc=True,
        )
    )
    for name, asked in (("hour", hour_start), ("evening", evening_ask)):
        wait = (landed - asked).dt.total_seconds() / 3600
        f[f"wait_{name}_median"] = float(wait.median())
        f[f"wait_{name}_p90"] = float(wait.quantile(0.9))

    # slow degradation: temperatures and PSI, Jan-Apr against each later month
    before = month <= 4
    spring = X.loc[before, "temp"]
    f["spring_max_temp"] = float(spring.max())
    f["spring_q90_temp"] = float(spring.quantile(0.9))
    for m in range(5, 9):
        temps = X.loc[month == m, "temp"]
        f[f"above_max_pct_{m}"] = 100 * float(temps.gt(spring.max()).mean())
        f[f"above_q90_pct_{m}"] = 100 * float(temps.gt(spring.quantile(0.9)).mean())
        for feature in ("temp", "distance", "wind_speed"):
            f[f"psi_{feature}_{m}"] = _psi(X.loc[before, feature], X.loc[month == m, feature])
    april = month == 4
    f["april_late_pct"] = 100 * float(y[april].mean())
    f["august_flights_per_day"] = float((month == 8).sum() / 31)

    # canary (testing in production): the replay model trained on Jan-Apr, week 3 of the log
    from scipy.stats import binomtest

    with _threads():
        replay = build_pipeline().fit(X[before], y[before])
        p_after = replay.predict_proba(X[~before])[:, 1]
    log = rows.loc[~before, ["time_hour"]].assign(late=y[~before], p_late=p_after)
    week = log["time_hour"].dt.tz_convert("America/New_York").dt.tz_localize(None)
    log["week"] = week.dt.to_period("W").dt.start_time
    third = log[log["week"] == log["week"].unique()[2]]
    canary = np.random.default_rng(1).random(len(third)) < 0.05
    for name, g in (("canary", third[canary]), ("main", third[~canary])):
        late = int(g["late"].sum())
        caught = int(((g["p_late"] >= 0.3) & g["late"]).sum())
        ci = binomtest(caught, late).proportion_ci(method="wilson")
        f[f"{name}_late"], f[f"{name}_caught"] = late, caught
        f[f"{name}_recall"] = caught / late
        f[f"{name}_low"], f[f"{name}_high"] = float(ci.low), float(ci.high)
        r = caught / late
        f[f"{name}_wald_half"] = 1.96 * math.sqrt(r * (1 - r) / late)
    f["one_percent_sample"] = len(log.sample(frac=0.01, random_state=0))
    return f


def _psi(expected: pd.Series, actual: pd.Series, bins: int = 10) -> float:
    edges = np.unique(np.quantile(expected.dropna(), np.linspace(0, 1, bins + 1)))
    e = np.histogram(expected.dropna(), edges)[0] / expected.notna().sum() + 1e-6
    clipped = actual.dropna().clip(edges[0], edges[-1])
    a = np.histogram(clipped, edges)[0] / actual.notna().sum() + 1e-6
    return float(np.sum((a - e) * np.log(a / e)))


# --------------------------------------------------------------------------------- the claims
@dataclass(frozen=True)
class Claim:
    file: str
    pattern: str
    values: tuple[Callable[[dict[str, float]], float], ...]
    slack: int = 0  # units of the last printed digit

    @property
    def id(self) -> str:
        return f"{self.file}: {self.pattern[:50]}"


def F(name: str, scale: float = 1.0) -> Callable[[dict[str, float]], float]:
    return lambda f: f[name] * scale


N = r"(\d+(?:\.\d+)?)"
WID = "chapters/what-is-different.md"
MTS = "chapters/model-to-system.md"
TIP = "chapters/testing-in-production.md"

CLAIMS = [
    # introduction: "about one flight in four is late" (1 / late share, rounded)
    Claim(
        "chapters/introduction.md",
        r"about one flight in (four) is late",
        (lambda f: round(1 / f["public_late_share"]),),
    ),
    # introduction: the gap between a random and a time split is leakage, not drift
    Claim(
        "chapters/introduction.md",
        rf"scores a ROC AUC of about {N} when its test flights are drawn at random from "
        rf"January–August, and {N} when it trains on January–June",
        (F("auc_random_flights"), F("auc_time")),
    ),
    Claim(
        "chapters/introduction.md",
        rf"the random split falls to {N}, below the time split",
        (F("auc_random_days"),),
    ),
    # model-to-system
    Claim(MTS, rf"share of on-time flights \(about {N}% in July–August\)", (F("val_on_time_pct"),)),
    Claim(
        MTS,
        rf"ROC AUC falls by about {N} \({N} to {N}\)",
        (F("leakage_auc"), F("auc_random_flights"), F("auc_random_days")),
        slack=1,
    ),
    Claim(
        MTS,
        rf"\*not\* fall at all: at {N} it is above every random-day draw \({N} to {N}\), and "
        rf"the model's mean probability \({N}\) matches the share of late flights in "
        rf"July–August \({N}%\)",
        (
            F("auc_time"),
            F("auc_random_days_min"),
            F("auc_random_days_max"),
            F("time_mean_p"),
            F("val_late_pct"),
        ),
    ),
    Claim(
        MTS,
        rf"the late share moves from {N}% in May to {N}% in July",
        (F("may_late_pct"), F("july_late_pct")),
    ),
    Claim(
        MTS, rf"evening-before prediction: about {N} of ROC AUC", (F("availability_gap"),), slack=1
    ),
    Claim(
        MTS,
        rf"At 0\.5 our model warns on {N}% of the July–August flights while {N}% of them are late, "
        rf"and catches only {N}% of the late ones",
        (F("warned_pct_0.5"), F("val_late_pct"), F("recall_pct_0.5")),
    ),
    # what-is-different
    Claim(WID, rf"is wrong on {N}% of the July–August flights", (F("error_pct_0.3"),)),
    Claim(WID, rf"always says \"on time\" \(wrong on {N}%\)", (F("val_late_pct"),)),
    Claim(
        WID,
        rf"catching {N}% of the late flights\. At a threshold of 0\.5 it is wrong on {N}% and "
        rf"catches {N}%",
        (F("recall_pct_0.3"), F("error_pct_0.5"), F("recall_pct_0.5")),
    ),
    Claim(
        WID,
        rf"raises the late share by {N} points in summer \({N}% to {N}%\) but by {N} points "
        rf"in winter and spring \({N}% to {N}%\)",
        (
            F("summer_effect_points"),
            F("summer_morning_pct"),
            F("summer_evening_pct"),
            F("winter_effect_points"),
            F("winter_morning_pct"),
            F("winter_evening_pct"),
        ),
    ),
    # testing in production
    Claim(
        TIP,
        rf"half of the labels arrive within {N} hours and nine in ten within {N}",
        (F("wait_hour_median"), F("wait_hour_p90")),
    ),
    Claim(
        TIP,
        rf"the median wait is {N} hours and the slowest tenth waits more than {N} hours",
        (lambda f: f["wait_evening_median"], lambda f: math.floor(f["wait_evening_p90"])),
    ),
    Claim(
        TIP,
        rf"Temperature is far past it from May on \({N} in May, {N} in July and August\)",
        (F("psi_temp_5"), F("psi_temp_7")),
    ),
    Claim(
        TIP,
        rf"{N} in July and August\), and the route mix \(distance, {N}–{N}\)",
        (
            F("psi_temp_8"),
            lambda f: min(f[f"psi_distance_{m}"] for m in range(5, 9)),
            lambda f: max(f[f"psi_distance_{m}"] for m in range(5, 9)),
        ),
    ),
    Claim(
        TIP,
        rf"crosses the alarm level in July and August \({N} and {N}\)",
        (F("psi_wind_speed_7"), F("psi_wind_speed_8")),
    ),
    Claim(
        TIP,
        rf"January–April flights left at {N} °F or more; from June on, {N}% or more",
        (
            F("spring_q90_temp"),
            lambda f: math.floor(min(f[f"above_q90_pct_{m}"] for m in (6, 7, 8))),
        ),
    ),
    Claim(
        TIP,
        rf"maximum is {N} °F, and it is exceeded by {N}% of the flights in May, {N}% in June, "
        rf"{N}% in July and {N}% in August",
        (
            F("spring_max_temp"),
            F("above_max_pct_5"),
            F("above_max_pct_6"),
            F("above_max_pct_7"),
            F("above_max_pct_8"),
        ),
    ),
    Claim(
        TIP,
        rf"the canary saw {N} late flights and warned {N} of them: a recall of {N} whose 95% "
        rf"interval runs from {N} to {N}",
        (
            F("canary_late"),
            F("canary_caught"),
            F("canary_recall"),
            F("canary_low"),
            F("canary_high"),
        ),
    ),
    Claim(
        TIP,
        rf"main one \({N}, interval {N} to {N}\)\. The Wald formula would have claimed "
        rf"{N} ± {N}",
        (
            F("main_recall"),
            F("main_low"),
            F("main_high"),
            F("canary_recall"),
            F("canary_wald_half"),
        ),
    ),
    Claim(
        TIP,
        rf"April\s+was a hard month \(a late share near {N}%\)",
        (F("april_late_pct"),),
        slack=1,
    ),
    Claim(
        TIP,
        rf"Daily ROC AUC is noisy \(about {N} flights a day\)",
        (F("august_flights_per_day"),),
        slack=10,
    ),
    # decks
    Claim(
        "deck:introduction",
        r"about \*\*one flight in (four)\*\* is late",
        (lambda f: round(1 / f["public_late_share"]),),
    ),
    Claim(
        "deck:what-is-different",
        rf"yet most evening flights arrive on time: {N}% of them are late",
        (F("evening_late_pct"),),
    ),
    Claim(
        "deck:what-is-different",
        rf"wrong on \*\*{N}%\*\* of Jul–Aug flights \(always \"on time\": "
        rf"{N}%\), catching {N}% of the late ones; at 0\.5: wrong on {N}%, "
        rf"catching {N}%",
        (
            F("error_pct_0.3"),
            F("val_late_pct"),
            F("recall_pct_0.3"),
            F("error_pct_0.5"),
            F("recall_pct_0.5"),
        ),
    ),
    Claim(
        "deck:what-is-different",
        rf"the late share moves from {N}% in May to {N}% in July\. July's flights leave at "
        rf"{N} °F on average, June's at {N} °F, yet only {N}% of the July–August flights are "
        rf"warmer than the warmest training flight \({N} °F\)",
        (
            F("may_late_pct"),
            F("july_late_pct"),
            F("mean_temp_7"),
            F("mean_temp_6"),
            F("val_above_train_max_pct"),
            F("train_max_temp"),
        ),
    ),
    Claim(
        "deck:what-is-different",
        rf"winter/spring \(1–5\) \| {N}% \| {N}% \| \+{N} points",
        (F("winter_morning_pct"), F("winter_evening_pct"), F("winter_effect_points")),
    ),
    Claim(
        "deck:what-is-different",
        rf"summer \(6–8\) \| {N}% \| {N}% \| \+{N} points",
        (F("summer_morning_pct"), F("summer_evening_pct"), F("summer_effect_points")),
    ),
    Claim(
        "deck:model-to-system", rf"random flights \| yes \| no \| ≈ {N}", (F("auc_random_flights"),)
    ),
    Claim("deck:model-to-system", rf"random days \| no \| no \| ≈ {N}", (F("auc_random_days"),)),
    Claim("deck:model-to-system", rf"Jan–Jun → Jul–Aug \| no \| yes \| ≈ {N}", (F("auc_time"),)),
    Claim(
        "deck:model-to-system",
        rf"\*\*no loss at all\*\* \({N}, above every random-day draw\), "
        rf"mean p_late {N} for a late share of {N}",
        (F("auc_time"), F("time_mean_p"), F("val_late_pct", 0.01)),
    ),
    Claim(
        "deck:model-to-system",
        rf"evening before: a forecast, or the last reading at 20:00 → "
        rf"ROC AUC {N} → {N}",
        (F("auc_time"), F("auc_evening_before")),
    ),
    Claim("deck:model-to-system", rf"about {N}% accurate in Jul–Aug", (F("val_on_time_pct"),)),
    Claim(
        "deck:testing-in-production",
        rf"One week at 5%: {N} late flights, {N} warned: "
        rf"recall {N}, Wilson 95% interval \*\*{N}–{N}\*\* \(main: {N}, "
        rf"{N}–{N}\)",
        (
            F("canary_late"),
            F("canary_caught"),
            F("canary_recall"),
            F("canary_low"),
            F("canary_high"),
            F("main_recall"),
            F("main_low"),
            F("main_high"),
        ),
    ),
    Claim(
        "deck:testing-in-production",
        rf"median label arrives after {N} h; asked at 20:00 the "
        rf"evening before \(New York time\), after {N} h",
        (F("wait_hour_median"), F("wait_evening_median")),
    ),
    Claim(
        "deck:testing-in-production",
        rf"temperature PSI about {N}–{N} from May; the Jan–Apr maximum "
        rf"\({N} °F\) is exceeded by {N}% \(May\) to {N}% \(July\)",
        (
            lambda f: round(min(f[f"psi_temp_{m}"] for m in range(5, 9))),
            lambda f: round(max(f[f"psi_temp_{m}"] for m in range(5, 9))),
            F("spring_max_temp"),
            F("above_max_pct_5"),
            F("above_max_pct_7"),
        ),
    ),
    Claim(
        "deck:testing-in-production", rf"\| 1% \| about {N} \|", (F("one_percent_sample"),), slack=5
    ),
]


def _same(text: str, value: float, slack: int) -> bool:
    if text == "four":
        text = "4"
    decimals = len(text.split(".")[1]) if "." in text else 0
    unit = 10.0**-decimals
    return abs(round(value, decimals) - float(text)) <= unit * slack + 1e-9


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_prose_number_matches_the_data(claim: Claim) -> None:
    text = prose(claim.file)
    found = re.findall(claim.pattern, text)
    assert found, f"{claim.file}: the sentence /{claim.pattern}/ is gone: update this claim"
    if not claim.values:
        return
    got = found[0] if isinstance(found[0], tuple) else (found[0],)
    got = tuple(g for g in got if g)[-len(claim.values) :]
    f = facts()
    want = [v(f) for v in claim.values]
    wrong = [
        f"{g} (data: {w:.4f})"
        for g, w in zip(got, want, strict=True)
        if not _same(g, w, claim.slack)
    ]
    assert not wrong, (
        f"{claim.file}: /{claim.pattern}/ quotes numbers the data no longer gives: {wrong}"
    )


def test_lowest_cost_threshold_is_below_the_best_f1_threshold() -> None:
    """designing-the-system deck: with a missed delay costing 5 false alarms, the lowest-cost
    threshold is lower than the best-F1 one (the chapter's grid of thresholds)."""
    assert "the lowest-cost threshold is **lower** than the best-F1 threshold" in prose(
        "deck:designing-the-system"
    )
    ref = reference_validation()
    p, y = ref["p"], ref["y"]
    grid = np.linspace(0.05, 0.8, 76)
    cost = [5 * ((p < t) & y).sum() + ((p >= t) & ~y).sum() for t in grid]
    f1 = [
        2 * ((p >= t) & y).sum() / (2 * ((p >= t) & y).sum() + ((p >= t) ^ y).sum()) for t in grid
    ]
    assert grid[int(np.argmin(cost))] < grid[int(np.argmax(f1))]


def test_july_is_later_than_every_training_month() -> None:
    """what-is-different: "July's late share is higher than that of any training month"."""
    assert "July's late share is higher than that of any training month" in prose(WID)
    assert facts()["july_minus_max_training_month"] > 0


def test_shuffled_folds_agree_more_closely_than_forward_chained_ones() -> None:
    """model-to-system: the shuffled folds "agree with each other closely" and the forward ones vary."""
    assert "The shuffled folds agree with each other closely" in prose(MTS)
    f = facts()
    assert f["cv_shuffled_spread"] < f["cv_chained_spread"] / 2, f


def test_fold_agreement_is_not_called_evidence_of_leakage_the_level_is() -> None:
    """model-to-system (chapter and deck): close agreement of shuffled folds is no symptom of
    leakage; the level next to a cut that keeps days whole is, and for the logistic baseline the
    two levels are the same ("a mean ROC AUC of 0.65 either way")."""
    chapter, deck = prose(MTS), prose("deck:model-to-system")
    assert "is the symptom" not in chapter and "*symptom* here" not in deck
    assert "That is no evidence of leakage, for or against" in chapter
    found = [
        re.search(rf"a mean ROC AUC of {N} either way", chapter),
        re.search(rf"mean ROC AUC {N} either way", deck),
    ]
    assert all(found), "the sentences about the two levels are gone: update this test"
    f = facts()
    for m in found:
        quoted = m.group(1)
        assert _same(quoted, f["cv_shuffled_mean"], 0), (quoted, f)
        assert _same(quoted, f["cv_days_mean"], 0), (quoted, f)
    assert abs(f["cv_shuffled_mean"] - f["cv_days_mean"]) < 0.005, f
    assert f["cv_shuffled_spread"] < 0.02, "shuffled folds no longer agree closely"


def test_time_split_auc_is_above_every_random_day_draw() -> None:
    """model-to-system and introduction: the time split loses nothing against random days (the
    random split "falls to 0.70, below the time split"): the gap is leakage, not drift."""
    intro = prose("chapters/introduction.md")
    assert "that is **leakage**, not drift" in intro
    assert "because the later months behave differently" not in intro
    f = facts()
    assert f["auc_time"] > f["auc_random_days_max"], f
    assert f["auc_random_flights"] > f["auc_time"], f


def test_ml_test_score_example_sums() -> None:
    """pipelines: the example team's section sums and its final score, from the cell's own lists."""
    source = code("chapters/pipelines.md")
    literal = re.search(r"team = (\{.*?\})\n", source, re.S)
    assert literal, "the ML Test Score example's `team = {...}` is gone"
    team = ast.literal_eval(literal.group(1))
    sums = {k: sum(v) for k, v in team.items()}
    text = prose("chapters/pipelines.md")
    m = re.search(
        rf"invested in infrastructure \({N}\) but has barely started monitoring \({N}\), "
        rf"so its score is {N}",
        text,
    )
    assert m, "the sentence about the example team's score is gone"
    assert [float(x) for x in m.groups()] == [sums["Infra"], sums["Monitor"], min(sums.values())]
    deck = prose("deck:pipelines")
    m = re.search(rf"Data {N} · Model {N} · Infra {N} · Monitor {N} → score \*\*{N}\*\*", deck)
    assert m, "the deck's example team line is gone"
    want = [sums["Data"], sums["Model"], sums["Infra"], sums["Monitor"], min(sums.values())]
    assert [float(x) for x in m.groups()] == want


def test_serving_deck_quotes_the_bad_input_check_as_configured() -> None:
    """designing-the-system deck: "15 named bad inputs must get a 4xx", as lab.toml says."""
    assert "15 named bad inputs must get a 4xx" in prose("deck:designing-the-system")
    lab = (REPO / "labs" / "serving" / "lab.toml").read_text(encoding="utf-8")
    assert "15 named bad inputs get a 4xx" in lab


def test_data_at_scale_sample_size() -> None:
    assert "Our sample is 50,000 flights" in prose(WID)
    assert len(load_flights("all")) == 50_000


def test_model_sizes_quoted_in_the_book() -> None:
    """introduction and model-to-system: the reference model is "about a megabyte" of "300
    boosted trees", the logistic baseline "a few kilobytes"."""
    import io

    import joblib

    assert "about a megabyte" in prose("chapters/introduction.md")
    assert "megabyte (300 boosted trees; the logistic baseline is a few kilobytes)" in prose(MTS)
    ref = reference_validation()
    buffer = io.BytesIO()
    joblib.dump(ref["model"], buffer)
    assert 0.5e6 < len(buffer.getvalue()) < 2e6
    assert ref["model"][-1].n_iter_ == 300
    d = data()
    with _threads():
        logistic = build_logistic_baseline().fit(d["X"][ref["train"]], d["y"][ref["train"]])
    buffer = io.BytesIO()
    joblib.dump(logistic, buffer)
    assert len(buffer.getvalue()) < 20_000


# ------------------------------------------------------------------ the worked answers (issue 23)
ANSWERS = "instructor/answers.md"


@cache
def weekly_psi() -> pd.DataFrame:
    """Exercise 6.2: PSI per week of May-August against January-April, in the testing-in-
    production chapter's replay (weeks of New York time, starting on Mondays)."""
    d = data()
    rows, X = d["rows"], d["X"]
    before = (rows["month"] <= 4).to_numpy()
    local = rows["time_hour"].dt.tz_convert("America/New_York").dt.tz_localize(None)
    week = local.dt.to_period("W").dt.start_time[~before]
    table = {
        start: {
            feature: _psi(X.loc[before, feature], X.loc[idx, feature])
            for feature in ("temp", "distance", "wind_speed")
        }
        for start, idx in week.groupby(week).groups.items()
    }
    return pd.DataFrame(table).T.sort_index()


def test_drift_alarm_answer_matches_the_weekly_data() -> None:
    """answers, Exercise 6.2: temperature fires from the first May week, as a shift of mass (most
    May flights above the Jan-Apr 90th percentile, few above its maximum), not because the model
    "never saw such temperatures"; distance never moves; wind passes 0.25 in single May weeks and
    first stays above it two weeks running in the second half of June."""
    answer = prose(ANSWERS)
    assert "never saw such temperatures" not in answer
    assert "wind speed only in summer weeks" not in answer
    for phrase in (
        "Temperature is far past any usual threshold in every week from the first week of May on",
        "most May flights are warmer than the warmest tenth of the January–April flights, while "
        "only a few are warmer than the January–April maximum",
        "Distance never moves",
        "passes 0.25 in single weeks already in May",
        "first stays above 0.25 for two weeks in a row in the second half of June",
    ):
        assert phrase in answer, f"the answer no longer says: {phrase!r}: update this test"
    f = facts()
    assert f["above_q90_pct_5"] > 50 and f["above_max_pct_5"] < 10, f
    psi = weekly_psi()
    assert (psi["temp"] > 0.25).all(), psi["temp"]
    assert (psi["distance"] < 0.1).all(), psi["distance"]
    wind = psi["wind_speed"] > 0.25
    may = [w for w in psi.index if (w + pd.Timedelta(days=6)).month == 5 or w.month == 5]
    single = [
        w for i, w in enumerate(psi.index) if w in may and wind.iloc[i] and not wind.iloc[i + 1]
    ]
    assert single, "no single-week wind alarm in May"
    pairs = [w for i, w in enumerate(psi.index[:-1]) if wind.iloc[i] and wind.iloc[i + 1]]
    assert pairs and pairs[0].month == 6 and pairs[0].day >= 15, pairs


def test_model_card_exercise_exists_and_its_answer_is_true_to_the_data() -> None:
    """teams: the chapter says Exercise 7.4 writes a model card; the exercise and its worked answer
    exist, and the answer's caveat "July–August is warmer than training on average" holds."""
    teams = prose("chapters/teams.md")
    assert "Exercise 7.4 has the team write one for the reference model" in teams
    assert "**Exercise 7.4 (a model card).**" in teams
    answer = prose(ANSWERS)
    assert "### Exercise 7.4 (a model card)" in answer
    assert "July–August is warmer than training on average" in answer
    f = facts()
    assert f["val_mean_temp"] > f["train_mean_temp"], f


# ---------------------------------------------------- the precision/recall table (issue 23)
THRESHOLD_ROW = re.compile(
    r"^\| (0\.\d) \| (\d+)% \| (\d+)% \| (\d+)% \| (\d+) \| (\d+) \|\s*$", re.M
)


def _threshold_rows(path: Path) -> dict[float, tuple[int, ...]]:
    text = CODE_CELL.sub("", path.read_text(encoding="utf-8"))
    return {float(m[0]): tuple(int(x) for x in m[1:]) for m in THRESHOLD_ROW.findall(text)}


def test_precision_recall_table_by_threshold_matches_the_data() -> None:
    """model-to-system chapter and its "Pick a threshold" activity slide: the table of the
    reference model on July-August, threshold 0.1 to 0.7, recomputed: flights warned, precision,
    recall (whole percent), missed delays and false alarms per 100 flights (whole numbers)."""
    ref = reference_validation()
    p, y = ref["p"], ref["y"]
    want = {}
    for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        warned = p >= t
        caught = (warned & y).sum()
        want[t] = tuple(
            round(float(v))
            for v in (
                100 * warned.mean(),
                100 * caught / warned.sum(),
                100 * caught / y.sum(),
                100 * (~warned & y).mean(),
                100 * (warned & ~y).mean(),
            )
        )
    chapter = _threshold_rows(BOOK / MTS)
    assert chapter == want, f"{MTS}: the table by threshold drifted from the data: {want}"
    deck = DECKS / "model-to-system.md"
    assert "## Activity: Pick a threshold" in deck.read_text(encoding="utf-8")
    assert _threshold_rows(deck) == want, f"the Pick a threshold slide drifted: {want}"
    # the sentences that read the table
    text = prose(MTS)
    assert (
        f"at 0.2 the app warns about more than half of all flights and misses {want[0.2][3]} "
        f"delays in every 100 flights; at 0.5 it warns about one flight in five and misses "
        f"{want[0.5][3]}." in text
    )
    assert want[0.2][0] > 50 and round(100 / want[0.5][0]) == 5, want


def test_introduction_month_plot_sentence_matches_the_data() -> None:
    """introduction, under its plot of flights by month: the late share runs "between 22% in
    May and 33% in July" (the lowest and highest months), and "8 and 9 February alone account
    for 141" of the flights with no arrival, "more than all of August has"."""
    text = prose("chapters/introduction.md")
    m = re.search(rf"between {N}% in May and {N}% in July", text)
    assert m, "the sentence about the late share by month is gone"
    d = data()
    public, label = d["public"], d["public_label"]
    share = label.groupby(public["month"]).mean()
    assert share.idxmin() == 5 and share.idxmax() == 7, share
    assert [round(100 * share[5]), round(100 * share[7])] == [int(x) for x in m.groups()]
    m = re.search(rf"8 and 9 February alone account for {N} of them, more than all of August has", text)
    assert m, "the sentence about the flights with no arrival is gone"
    none = label.isna()
    storm = int(none[(public["month"] == 2) & public["day"].isin([8, 9])].sum())
    assert storm == int(m.group(1)) and storm > int(none[public["month"] == 8].sum())


def test_pipelines_utc_hour_plot_sentence_matches_the_data() -> None:
    """pipelines, under its UTC-hour plot: the UTC hour is "four or five hours later", "the red
    line ends at 19:00" and later flights would read "hours 0 to 4, when no flight in the
    training data leaves"."""
    text = prose("chapters/pipelines.md")
    assert "passes an hour four or five hours later" in text
    assert "The red line ends at 19:00: later flights would read hours 0 to 4, when no flight" in text
    train = load_flights("train")
    local = train["time_hour"].dt.tz_convert(NEW_YORK).dt.hour
    assert (local == train["hour"]).all(), "`hour` is the New York hour of time_hour"
    shift = (train["time_hour"].dt.hour - train["hour"]) % 24
    assert set(shift.unique()) == {4, 5}
    assert not train["hour"].between(0, 4).any()
    read = train["time_hour"].dt.hour
    served = train.loc[read >= 5, "hour"]  # hours the model learned from
    assert served.max() == 19
