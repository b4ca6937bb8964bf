"""Shared test settings: an isolated ``EMOHRNET_HOME``."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Everything emohrnet writes by default goes to a temporary folder."""
    home = tmp_path_factory.mktemp("emohrnet_home")
    old = os.environ.get("EMOHRNET_HOME")
    os.environ["EMOHRNET_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("EMOHRNET_HOME", None)
    else:
        os.environ["EMOHRNET_HOME"] = old
