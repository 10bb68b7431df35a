"""``python -m fairensemble`` runs the command line."""

from .cli import main

main()
