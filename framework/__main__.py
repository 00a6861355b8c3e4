import sys

from muone.cli import main

sys.exit(main())
