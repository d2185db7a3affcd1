"""The one error type the CLI turns into a one-line message (no traceback), and the one way
the kit words pydantic's validation errors.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the data loader teams import uses ShipmlError: it does not load pydantic
    from pydantic import BaseModel, ValidationError


class ShipmlError(Exception):
    """A problem the user can fix: the message says what is wrong and how to fix it.

    The CLI prints ``shipml: error: <message>`` on one line and exits non-zero.
    """

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        # Keep messages on one line: the CLI contract is a single line per error.
        super().__init__(" ".join(message.split()))


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """The known name ``name`` was probably meant to be (difflib's closest), or ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else ""


def _model_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model that validates the item at ``loc`` inside ``model`` (None if not a
    model): steps into fields, and past the index or key of lists, tuples and dicts."""
    annotation: Any = model
    for step in loc:
        while True:  # unwrap Annotated[X, ...], X | None and the containers whose item ``step`` names
            origin = typing.get_origin(annotation)
            if origin is typing.Annotated:
                annotation = typing.get_args(annotation)[0]
            elif origin in (typing.Union, types.UnionType):
                annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), None)
            else:
                break
        origin = typing.get_origin(annotation)
        if _is_model(annotation):
            field = annotation.model_fields.get(str(step))
            if field is None:
                return None
            annotation = field.annotation
        elif origin in (list, tuple, set, frozenset) or origin is dict:
            annotation = typing.get_args(annotation)[-1] if typing.get_args(annotation) else None
        else:
            return None
    while typing.get_origin(annotation) in (typing.Annotated, typing.Union, types.UnionType):
        annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), None)
    return annotation if _is_model(annotation) else None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and isinstance(getattr(annotation, "model_fields", None), dict)


def explain_validation(
    exc: ValidationError,
    *,
    where: str = "{}",
    top: str = "(top level)",
    model: type[BaseModel] | None = None,
    unknown: str = "is not a known field",
) -> str:
    """pydantic's report as one line: which field, what is wrong with it, and how to fix it.

    ``where`` names a field from its dotted path (``"field '{}'"``, ``"params.{}"``), ``top``
    names the whole input (a problem of no one field). With the
    validated ``model``, an unknown field's message lists the fields its place takes and the
    one it was probably meant to be; ``unknown`` says what an unknown field is not (``"is not a
    parameter of check_latency"``). An unknown field leads: a misspelt name also makes the right
    one missing, and the misspelling is what the author must fix. More problems are counted.
    """
    errors = exc.errors()
    lead = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(lead["loc"])
    name = where.format(".".join(str(p) for p in loc)) if loc else top
    kind = lead["type"]
    explained = 1
    if kind == "missing":
        problem = "is required but missing; add it"
    elif kind == "extra_forbidden":
        place = _model_at(model, loc[:-1])
        # A field excluded from dumps (a spec's ``root``) is set by the loader, not written by anyone.
        known = [n for n, f in place.model_fields.items() if not f.exclude] if place is not None else []
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == loc[:-1]]
        guess = did_you_mean(str(loc[-1]), missing) or did_you_mean(str(loc[-1]), known)
        takes = f" (it takes: {', '.join(known) or 'nothing'})" if place is not None else ""
        if guess:
            problem = f"{unknown}; did you mean {guess}?{takes}"
            explained += guess in missing  # the missing field it was meant to be is the same problem
        else:
            problem = f"{unknown}{takes}; remove it or check its spelling"
    else:
        problem = lead["msg"].removeprefix("Value error, ")
        if "input" in lead and kind != "value_error":  # a validator's own message names the value
            problem = f"= {lead['input']!r}: {problem}"
    more = f" (and {len(errors) - explained} more problem(s))" if len(errors) > explained else ""
    return f"{name} {problem}{more}"
