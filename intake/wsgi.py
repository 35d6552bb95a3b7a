"""gunicorn entry point: ``gunicorn --preload intake.wsgi:app``.

The French language model (several hundred MB) is loaded here, before gunicorn forks its
workers when it preloads the app (``--preload``, as ``icli web``, compose.yaml and the Docker
image start it): the workers share its pages instead of each loading a copy. Without
``--preload`` each worker loads it here, at start, not during a referent's first save.
"""

import gc

from intake import create_app
from shared import deidentify

app = create_app()
deidentify.load()
for template in app.jinja_env.list_templates(extensions=["html"]):
    app.jinja_env.get_template(template)  # compiled once, here, not by each worker
# Workers open their own database connections: none is inherited across the fork.
app.extensions["icli"].engine.dispose()
# What is loaded by now lives as long as the process: the collector leaves it alone, so its
# pages are not copied into each worker by the collector's writes.
gc.freeze()
