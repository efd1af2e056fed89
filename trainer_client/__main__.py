"""`python -m trainer_client ...` is `grpo-train ...`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
