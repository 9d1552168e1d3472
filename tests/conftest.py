"""Suite-wide settings: labs made by tests keep their state in a directory of the run,
never beside a user's own labs."""

import os
import tempfile

os.environ.setdefault("RACKLAB_HOME", tempfile.mkdtemp(prefix="racklab-test-home-"))
