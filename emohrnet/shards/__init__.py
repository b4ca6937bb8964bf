"""Shards: a corpus precomputed once into WebDataset tar shards of features, with a manifest.

- :mod:`emohrnet.shards.build` -- :func:`build_shards` (build or reuse), :func:`summarize` (a dry run).
- :mod:`emohrnet.shards.folder` -- :func:`verify_shards`, :func:`publish` (to a bucket), the staging
  folder and moving a finished build into place.
- :mod:`emohrnet.shards.options` -- the corpus and front-end options of the command lines.
- :mod:`emohrnet.manifest` -- the manifest's name, digest, reading and :class:`ShardError`.

``python -m shards.build`` is the command line over them.
"""

from __future__ import annotations

from emohrnet.manifest import MANIFEST, ShardError, manifest_digest, read_manifest
from emohrnet.shards.build import BuildResult, build_shards, summarize
from emohrnet.shards.folder import publish, verify_shards
from emohrnet.shards.options import (
    add_feature_args,
    check_feature_args,
    features_from_args,
    parse_corpus_options,
)

__all__ = [
    "MANIFEST",
    "BuildResult",
    "ShardError",
    "add_feature_args",
    "build_shards",
    "check_feature_args",
    "features_from_args",
    "manifest_digest",
    "parse_corpus_options",
    "publish",
    "read_manifest",
    "summarize",
    "verify_shards",
]
