"""gunicorn entry point: ``gunicorn intake.wsgi:app``."""

import threading

from intake import create_app
from shared import deidentify

app = create_app()
# The French language model takes seconds to load: each web process loads it in the
# background at start, not during a referent's first save.
threading.Thread(target=deidentify.load, name="deidentify-load", daemon=True).start()
