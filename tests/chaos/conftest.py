# until the racklab pytest plugin registers it (lab/testing/plugin.py), use it from here
from lab.chaos.fixtures import chaos_run  # noqa: F401
