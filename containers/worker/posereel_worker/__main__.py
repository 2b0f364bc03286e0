"""``python -m posereel_worker --job-id J --chunk N --bucket B --device gpu|cpu``."""

import sys

from posereel_worker.worker import main

sys.exit(main())
