"""``python -m ssm_lfilter demo``: same as the ``ssm-lfilter`` console script."""
import sys

from .cli import main

sys.exit(main())
