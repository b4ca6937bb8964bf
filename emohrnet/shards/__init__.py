"""Shards: a corpus precomputed once into WebDataset tar shards of features, with a manifest.

- :mod:`emohrnet.shards.build` -- :func:`build_shards` (build or reuse), :func:`summarize` (a dry run).
- :mod:`emohrnet.shards.folder` -- reusing a finished build, :func:`publish` (to a bucket), the
  staging folder and moving a finished build into place.
- :mod:`emohrnet.shards.options` -- the corpus and front-end options of the command lines.
- :mod:`emohrnet.shards.manifest` -- :class:`Manifest` (reading it with its digest checked, verifying the
  shards against it, the split it defines) and :class:`ShardError`.

``python -m shards.build`` is the command line over them.
"""

from __future__ import annotations

from emohrnet.shards.build import BuildResult, build_shards, summarize
from emohrnet.shards.folder import publish
from emohrnet.shards.manifest import MANIFEST, Manifest, ShardError
from emohrnet.shards.options import (
    add_feature_args,
    check_feature_args,
    features_from_args,
    parse_corpus_options,
)

__all__ = [
    "MANIFEST",
    "BuildResult",
    "Manifest",
    "ShardError",
    "add_feature_args",
    "build_shards",
    "check_feature_args",
    "features_from_args",
    "parse_corpus_options",
    "publish",
    "summarize",
]
