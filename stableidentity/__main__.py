"""``python -m stableidentity``: the identity library command line (see :mod:`stableidentity.cli`)."""

from stableidentity.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
