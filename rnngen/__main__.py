"""``python -m rnngen`` runs the command line."""

from rnngen.cli import main

main()
