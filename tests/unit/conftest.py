"""The unit suite needs torch: imported before any test (see tests/_torch_first.py)."""

import _torch_first  # noqa: F401
