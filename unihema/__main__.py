import sys

from unihema.cli import main

sys.exit(main())
