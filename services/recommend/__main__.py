import sys

from services.recommend.cli import main

sys.exit(main())
