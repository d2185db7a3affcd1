"""Releases and exports edit lab.toml by parsing it: a hidden check never reaches the team,
however valid TOML spells it, and what the edit wrote is read back before anything is written.

Every lab.toml here is built from the real ``labs/serving/lab.toml`` (whatever fields its checks
have today), re-spelled in ways TOML allows: single quotes, escapes, an indented key, a comment
after the value or after the table header, the check's visibility as its last key, and the
whole list of checks as an array of inline tables."""

from __future__ import annotations

import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import tomlkit

from autograder import cli
from autograder.engine.spec import LAB_FILE, load_lab
from autograder.errors import ShipmlError
from autograder.integrations import release
from autograder.integrations.gradescope import _EXPORT_DROPS
from autograder.integrations.release import _RELEASE_DROPS, edit_lab_toml
from autograder.paths import FLIGHTS_DIR, LABS_DIR

REAL_FILE = LABS_DIR / "serving" / LAB_FILE
REAL = REAL_FILE.read_text(encoding="utf-8")
REAL_DATA = tomllib.loads(REAL)
HIDDEN = [c["id"] for c in REAL_DATA["checks"] if c.get("visibility") == "hidden"]
PUBLIC = [c for c in REAL_DATA["checks"] if c.get("visibility", "public") != "hidden"]
HEAD, _, _ = REAL.partition("\n[[checks]]")  # the comments at the top and the [lab] table
HIDDEN_LINE = 'visibility = "hidden"'


def for_release(text: str) -> str:
    return edit_lab_toml(text, drop_hidden=True, lab_keys=_RELEASE_DROPS, where="lab.toml", product="student release")


def for_export(text: str) -> str:
    return edit_lab_toml(text, drop_hidden=False, lab_keys=_EXPORT_DROPS, where="lab.toml", product="Gradescope autograder")


def respell(new_line: str) -> str:
    """The real lab.toml with its hidden checks' visibility line written as ``new_line``."""
    assert REAL.count(HIDDEN_LINE) == len(HIDDEN) >= 1, "the serving lab has hidden checks written the usual way"
    return REAL.replace(HIDDEN_LINE, new_line)


def visibility_last(text: str) -> str:
    """Each check's ``visibility`` moved to be its last key (the table's last line)."""
    doc = tomlkit.parse(text)
    for check in doc["checks"]:
        if "visibility" in check:
            value = check["visibility"]
            del check["visibility"]
            check["visibility"] = value
    return tomlkit.dumps(doc)


def inline_array(text: str) -> str:
    """The checks as ``checks = [{...}, ...]`` (before ``[lab]``, where TOML puts a top-level
    key), with the hidden ones' visibility in single quotes and a comment after each."""
    array = tomlkit.array()
    array.multiline(True)
    for check in tomllib.loads(text)["checks"]:
        table = tomlkit.inline_table()
        for key, value in check.items():
            table[key] = tomlkit.string(value, literal=True) if key == "visibility" else value
        array.append(table)
    head, _, _ = text.partition("\n[[checks]]")
    return f"# the checks as one array of inline tables\nchecks = {array.as_string()}\n\n{head}\n"


def header_comment(text: str) -> str:
    """Every ``[[checks]]`` header with a comment after it, and spaces inside its brackets."""
    return text.replace("\n[[checks]]\n", "\n[[ checks ]]  # one check\n")


FORMS: dict[str, Callable[[], str]] = {
    "single quotes": lambda: respell("visibility = 'hidden'"),
    "comment after the value": lambda: respell('visibility = "hidden"  # staff only'),
    "visibility as the last key": lambda: visibility_last(REAL),
    "last key, single quotes": lambda: visibility_last(respell("visibility = 'hidden'")),
    "inline-table array": lambda: inline_array(REAL),
    "indented key": lambda: respell('    visibility = "hidden"'),
    "escaped value": lambda: respell(r'visibility = "hid\u0064en"'),
    "multi-line literal": lambda: respell("visibility = '''hidden'''"),
    "quoted key": lambda: respell('"visibility" = "hidden"'),
    "header with a comment": lambda: header_comment(REAL),
}


def lab_folder(root: Path, text: str) -> Path:
    """A lab folder with ``text`` as its lab.toml and the serving lab's starter."""
    folder = root / "lab"
    folder.mkdir(parents=True)
    (folder / LAB_FILE).write_text(text, encoding="utf-8")
    (folder / "starter").symlink_to(LABS_DIR / "serving" / "starter", target_is_directory=True)
    return folder


@pytest.mark.parametrize("form", list(FORMS))
def test_a_hidden_check_spelled_any_valid_way_is_not_released(form):
    text = FORMS[form]()
    assert [c["id"] for c in tomllib.loads(text)["checks"] if c.get("visibility") == "hidden"] == HIDDEN, "the form still hides them"
    released = tomllib.loads(for_release(text))
    assert [c["id"] for c in released["checks"]] == [c["id"] for c in PUBLIC]
    assert not any(c.get("visibility") == "hidden" for c in released["checks"])
    assert not {"reference", "mutants"} & set(released["lab"])


@pytest.mark.parametrize("form", list(FORMS))
def test_the_export_keeps_every_check_however_it_is_spelled(form):
    text = FORMS[form]()
    exported = tomllib.loads(for_export(text))
    assert exported["checks"] == tomllib.loads(text)["checks"]
    assert not set(_EXPORT_DROPS) & set(exported["lab"])


def test_comments_layout_and_public_checks_survive_the_release():
    released = for_release(REAL)
    data = tomllib.loads(released)
    assert data["checks"] == PUBLIC, "public checks are released exactly as written"
    assert {k: v for k, v in data["lab"].items()} == {k: v for k, v in REAL_DATA["lab"].items() if k not in _RELEASE_DROPS}
    head_comments = [line for line in HEAD.splitlines() if line.startswith("#")]
    assert head_comments and all(line in released for line in head_comments)
    public_text = REAL.split("\n[[checks]]")[1]  # the first check, public, byte for byte
    assert public_text in released
    assert "plausible_lift" not in released, "the hidden check's own comment and params go with it"


def test_the_export_keeps_the_hidden_checks_comments():
    exported = for_export(REAL)
    assert "# The plausibility ceiling" in exported and HIDDEN_LINE in exported
    assert "reference =" not in exported and "starter =" not in exported


@pytest.mark.parametrize("form", ["single quotes", "inline-table array", "visibility as the last key"])
def test_the_released_lab_toml_loads_as_a_lab(form, tmp_path):
    path = tmp_path / LAB_FILE
    path.write_text(for_release(FORMS[form]()), encoding="utf-8")
    lab = load_lab(path)
    assert [c.id for c in lab.checks] == [c["id"] for c in PUBLIC] and not lab.selected("hidden")


def test_shipml_release_of_a_single_quoted_lab_ships_no_hidden_check(tmp_path, capsys):
    folder = lab_folder(tmp_path, FORMS["single quotes"]())
    out = tmp_path / "release"
    assert cli.main(["release", str(folder), "--out", str(out)]) == 0, capsys.readouterr().err
    shipped = out / "shipml-kit" / "labs" / "serving" / LAB_FILE
    lab = load_lab(shipped)
    assert not lab.selected("hidden") and not set(HIDDEN) & {c.id for c in lab.checks}
    for path in out.rglob("*.toml"):
        assert "'hidden'" not in path.read_text(encoding="utf-8"), path


def _no_op(text: str, **_: object) -> str:
    return text


def test_release_refuses_a_lab_toml_the_editor_left_hidden_checks_in_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(release, "_drop_from_lab_toml", _no_op)
    folder = lab_folder(tmp_path, REAL)
    out = tmp_path / "release"
    assert cli.main(["release", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"would still hold hidden check(s) {', '.join(HIDDEN)}" in err and "nothing was written" in err
    assert not out.exists()


def test_export_refuses_a_lab_toml_the_editor_could_not_clean_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(release, "_drop_from_lab_toml", _no_op)
    folder = lab_folder(tmp_path, REAL)
    out = tmp_path / "zips" / "autograder.zip"
    assert cli.main(["export", "gradescope", str(folder), "--out", str(out), "--heldout", str(FLIGHTS_DIR)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "would still hold [lab] reference, mutants, starter" in err and "nothing was written" in err
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_an_edit_that_changes_more_than_asked_is_refused(monkeypatch):
    editor = release._drop_from_lab_toml

    def also_drops_a_public_check(text: str, **kw: bool | tuple[str, ...]) -> str:
        doc = tomlkit.parse(editor(text, **kw))
        del doc["checks"][0]
        return tomlkit.dumps(doc)

    monkeypatch.setattr(release, "_drop_from_lab_toml", also_drops_a_public_check)
    with pytest.raises(ShipmlError, match="changed more than its hidden checks"):
        for_export(REAL)


def test_a_lab_whose_checks_are_all_hidden_has_nothing_to_release():
    text = REAL.replace(f"{HIDDEN_LINE}\n", "").replace("\n[[checks]]\n", f"\n[[checks]]\n{HIDDEN_LINE}\n")
    with pytest.raises(ShipmlError, match="every check is hidden"):
        for_release(text)


def test_the_zip_of_a_single_quoted_lab_keeps_its_hidden_checks(tmp_path, monkeypatch):
    from autograder.integrations import gradescope

    monkeypatch.setattr(gradescope, "runtime_pins", lambda *a: ["pydantic==2"])  # the pins are not what this tests
    lab = load_lab(lab_folder(tmp_path, FORMS["single quotes"]()))
    out = gradescope.export_zip(lab, tmp_path / "autograder.zip", FLIGHTS_DIR)
    with zipfile.ZipFile(out) as zf:
        data = tomllib.loads(zf.read("kit/labs/serving/lab.toml").decode())
    assert [c["id"] for c in data["checks"] if c.get("visibility") == "hidden"] == HIDDEN
    assert not set(_EXPORT_DROPS) & set(data["lab"])
