"""Code shared by the intake web app and the generator worker (no Flask imports here)."""
