"""``python -m intake.cli``: the ``icli`` command."""

from intake.cli import main

main()
