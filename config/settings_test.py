"""Settings for the test suite: the real settings with test-friendly defaults."""

import os

os.environ.setdefault("QUENCH_ENV_FILE", "")  # tests do not depend on a developer's .env
os.environ.setdefault("QUENCH_INSECURE_DEV_KEY", "true")
os.environ.setdefault("QUENCH_TESTING", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from config.settings import *  # noqa: E402, F403
