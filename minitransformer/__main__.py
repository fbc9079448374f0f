import sys

from .cli import main
from . import distributed

if distributed.launched_world_size() > 1:  # join mpiexec's world first: a rank that fails then ends the job
    try:
        distributed.init()
    except (RuntimeError, ValueError) as error:
        print(f"minitransformer: error: {error}", file=sys.stderr)
        sys.exit(1)
distributed.exit(main())  # a failing rank leaves at once and the launcher stops the others
