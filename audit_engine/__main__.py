"""``python -m audit_engine``: the command line (audit_engine.cli; also the ``privacy-audit``
console command)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
