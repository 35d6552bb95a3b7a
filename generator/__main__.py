"""python -m generator: the document worker."""

import signal
import sys

# From the first instruction (the imports take a second, also after a restart in place):
# SIGTERM stops a starting worker as Ctrl-C does, quietly. RQ installs its own once it serves.
signal.signal(signal.SIGTERM, signal.default_int_handler)
try:
    from generator.worker import main
except KeyboardInterrupt:
    sys.exit(0)

main()
