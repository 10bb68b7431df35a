"""``python -m fairensemble`` runs the command line."""

from fairensemble.cli.main import main

main()
