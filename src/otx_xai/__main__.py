"""``python -m otx_xai`` runs the ``otx`` command line."""

import sys

from otx_xai.cli import main

sys.exit(main())
