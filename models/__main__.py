"""`python -m landscape.models [PATTERN]`: a table of every registered network."""

import sys

from .summary import models_table

if __name__ == "__main__":
    print(models_table(sys.argv[1] if len(sys.argv) > 1 else "*"))
