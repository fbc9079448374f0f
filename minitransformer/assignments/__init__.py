"""Course assignments: the framework itself as graded homework.

Solution regions in the package are marked ``# BEGIN SOLUTION a2`` / ``# END SOLUTION a2``
(``markers``). The registry (``registry.ASSIGNMENTS``) says, for each assignment, its lesson,
its files, its points and its tests. ``release`` writes a runnable student copy with one
assignment's regions replaced by ``NotImplementedError``; ``grade`` runs that assignment's
tests against a submission in a subprocess and scores them in Gradescope's results.json
format. The command line: ``python -m minitransformer assignments list|release|grade``;
the instructors' guide: lessons/INSTRUCTORS.md.
"""

from .grading import grade
from .registry import ASSIGNMENTS, Assignment, get
from .releasing import release

__all__ = ["ASSIGNMENTS", "Assignment", "get", "grade", "release"]
