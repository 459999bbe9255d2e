"""mlprop's own tests: their Hypothesis tests run under mlprop's profile of this run.

This is the one place that loads a Hypothesis profile globally, and it is mlprop's own test
suite, never a user's: the plugin itself leaves global settings alone (tests/test_plugin.py
checks that).
"""

from __future__ import annotations

import os

from hypothesis import settings

from mlprop.profiles import PROFILES, default_profile

_name, _ = default_profile(os.environ)
settings.register_profile(f"{_name}-selftest", settings(settings.get_profile("default"),
                                                        **PROFILES[_name]))
settings.load_profile(f"{_name}-selftest")
