"""nbgrader configuration of the "beyond accuracy" course (shipml). Run nbgrader in this folder.

Each setting below fixes a pitfall measured with nbgrader 0.9.6 (see the lab README).
"""

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

from autograder.integrations.nbgrader_course import StripTracebacks

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "shipml-beyond-accuracy"
# Exchange (release_assignment / fetch / submit / collect): a folder all users can reach.
# Without JupyterHub, hand out release/ yourself and put returns in submitted/ (README).
# c.Exchange.root = "/srv/nbgrader/exchange"

# A cell gets 30 s. An infinite loop is interrupted at that point and costs only its own
# cell; the cells after it still run and grade.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# Anything a graded cell writes to stderr scores 0. The test cells silence warnings
# themselves; this also drops a stderr output made only of Python warnings
# ("file:line: SomethingWarning: ..."), so that a library's warning never costs points.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\A(?:[^\n]*:\d+: \w*Warning: [^\n]*\n(?:[ \t]+[^\n]*\n)*)+\Z"

# Feedback shows no hidden-test source and no traceback: nbgrader's defaults show both.
c.GenerateFeedback.preprocessors = [GetGrades, StripTracebacks, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
c.ClearHiddenTests.enabled = True
c.StripTracebacks.enabled = True
