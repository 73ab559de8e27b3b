"""`python -m authd` runs the same entry point as the `codex-authd` console script."""

from authd.main import run

run()
