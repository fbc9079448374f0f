from .cli import main
from .distributed import exit

exit(main())  # under mpiexec, a failing rank leaves at once and the launcher stops the others
