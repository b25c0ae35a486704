"""``python -m gsad`` runs the command-line interface."""

import sys

from gsad.cli import main

if __name__ == "__main__":
    sys.exit(main())
