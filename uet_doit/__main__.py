import sys

from uet_doit.cli.main import main

sys.exit(main())
