"""``python -m lowbit``: the ``lowbit`` command."""

import sys

from lowbit.cli.main import main

sys.exit(main())
