"""Where the real RAVDESS corpus is, and the skip marker for tests that need it."""

from __future__ import annotations

from pathlib import Path

import pytest

RAVDESS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess"
"""Real RAVDESS speech beside the checkout (``../shared/data/ravdess``)."""

needs_ravdess = pytest.mark.skipif(
    not RAVDESS.is_dir(), reason=f"real RAVDESS not found at {RAVDESS} (only CI and developer machines have it)"
)
