"""A lab's self-check as a GitHub Actions workflow for GitHub Classroom
(``shipml export github-classroom LAB --out DIR --min-score N``).

GitHub Classroom gives each team a repository made from the template that ``shipml release``
writes (the starter at the top, the kit in ``shipml-kit/``). This export adds the workflow that
runs on every push in that repository: it installs the kit's runtime at pinned versions, runs
the lab's *public* checks (``shipml check``) on the repository, posts the Markdown report as the
job summary, uploads ``report.html`` and ``results.json`` as artefacts, and fails the job when
the score is below the instructor's ``--min-score``.

It writes ``DIR/.github/workflows/shipml.yml`` and ``DIR/.github/shipml-requirements.txt``; give
the release folder as ``DIR`` (or copy ``.github/`` into it) before pushing the template.

Only public checks run there: the team owns the repository, its workflow and its runner, so
anything produced there is the team's own feedback, never a grade the staff can trust, and the
hidden checks and held-out data never leave the staff (grade with ``shipml grade-all`` or the
Gradescope export). The job runs as the runner's user, so the sandbox says in the report that it
did not isolate the team's processes: on the team's own runner there is nothing to protect.
"""

from __future__ import annotations

from pathlib import Path

from autograder.engine.spec import LabSpec
from autograder.errors import ShipmlError
from autograder.integrations.gradescope import runtime_pins
from autograder.integrations.release import KIT

WORKFLOW = ".github/workflows/shipml.yml"
REQUIREMENTS = ".github/shipml-requirements.txt"

_TEMPLATE = """\
# Written by `shipml export github-classroom {lab} --min-score {min_score:g}`: the lab's public
# checks on every push. The report is this run's summary; report.html and results.json are
# its artefacts. The job fails below {min_score:g} of the public checks' {public:g} points.
# Hidden checks are graded by the staff, not here.
name: shipml checks ({lab})

on:
  push:
  workflow_dispatch:

permissions:
  contents: read

concurrency:
  group: shipml-${{{{ github.ref }}}}
  cancel-in-progress: true

jobs:
  check:
    runs-on: ubuntu-24.04
    timeout-minutes: {timeout}
    env:
      MIN_SCORE: "{min_score:g}"
      REPORT_DIR: shipml-report
    steps:
      - uses: actions/checkout@v6
      - uses: actions/setup-python@v6
        with:
          python-version: "{python}"
          cache: pip
          cache-dependency-path: {requirements}
      - name: Install the kit (pinned)
        run: |
          python -m pip install --quiet -r {requirements}
          python -m pip install --quiet --no-deps -e ./{kit}
      - name: Run the public checks
        run: shipml check {lab} . --out "$REPORT_DIR"
      - name: Report as the job summary
        if: always()
        run: |
          if [ -f "$REPORT_DIR/report.md" ]; then
            cat "$REPORT_DIR/report.md" >> "$GITHUB_STEP_SUMMARY"
          else
            echo "No report: the checks could not run; see the step 'Run the public checks'." >> "$GITHUB_STEP_SUMMARY"
          fi
      - name: Upload the report
        if: always()
        uses: actions/upload-artifact@v6
        with:
          name: shipml-report
          path: |
            ${{{{ env.REPORT_DIR }}}}/report.html
            ${{{{ env.REPORT_DIR }}}}/results.json
          if-no-files-found: warn
      - name: Pass at {min_score:g} points or more
        run: |
          python - <<'EOF'
          import json, os, sys
          score = json.load(open(os.path.join(os.environ["REPORT_DIR"], "results.json")))["score"]
          need = float(os.environ["MIN_SCORE"])
          print(f"score {{score:g}}, pass mark {{need:g}}")
          sys.exit(0 if score >= need else 1)
          EOF
"""


def workflow_text(lab: LabSpec, min_score: float, python: str = "3.11") -> str:
    """The workflow for ``lab``'s team repositories, failing below ``min_score``."""
    public = sum(c.points for c in lab.selected("public"))
    if not public:
        raise ShipmlError(f"lab '{lab.lab.name}' has no public checks: there is nothing for a team's workflow to run")
    if not 0 <= min_score <= public:
        raise ShipmlError(f"--min-score {min_score:g}: give a score between 0 and {public:g} (the public checks' points in lab '{lab.lab.name}')")
    # Minutes: the lab's time limit for the checks, plus ten for setting up and installing.
    timeout = int(lab.lab.time_limit // 60) + 10
    return _TEMPLATE.format(lab=lab.lab.name, min_score=min_score, public=public, timeout=timeout,
                            python=python, requirements=REQUIREMENTS, kit=KIT)


def export_workflow(lab: LabSpec, out: Path, min_score: float) -> list[Path]:
    """Write the workflow and its pinned requirements under ``out``; return the files written."""
    out = Path(out)
    text = workflow_text(lab, min_score)
    workflow, requirements = out / WORKFLOW, out / REQUIREMENTS
    if workflow.exists():
        raise ShipmlError(f"{workflow}: exists; remove it first or give another --out")
    workflow.parent.mkdir(parents=True, exist_ok=True)
    requirements.write_text(
        "# shipml's runtime (shipml[labs]) at the versions the export ran with; the workflow installs these.\n"
        + "\n".join(runtime_pins()) + "\n", encoding="utf-8")
    workflow.write_text(text, encoding="utf-8")
    return [workflow, requirements]
