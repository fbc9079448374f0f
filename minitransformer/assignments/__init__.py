"""Course assignments: the framework itself as graded homework, in course order.

Solution regions in the package are marked ``# BEGIN SOLUTION a2`` / ``# END SOLUTION a2``
(``markers``). The registry (``registry.ASSIGNMENTS``) says, for each assignment, its lesson,
its files and its parts (points per function, and the tests that grade each). ``release``
writes a runnable student copy of one assignment: the earlier assignments' code in place, its
own and the later ones' as stubs, no fast layer, no hidden tests (``releasing``). ``grade``
runs the assignment's tests against a submission in a sandbox (``sandbox``, ``grader_plugin``)
and scores them in Gradescope's results.json format (``grading``); ``classroom`` grades a
folder of submissions and builds a Gradescope autograder. The command line:
``python -m minitransformer assignments list|release|grade|grade-all|gradescope``; the
instructors' guide: lessons/INSTRUCTORS.md.
"""

from .grading import grade
from .registry import ASSIGNMENTS, Assignment, Part, get
from .releasing import release

__all__ = ["ASSIGNMENTS", "Assignment", "Part", "get", "grade", "release"]
