import sys

from uet_doit.cli import main

sys.exit(main())
