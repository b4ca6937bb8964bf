"""Precompute a corpus into WebDataset tar shards of log-mel spectrograms.

Usage::

    python -m shards.build --dataset ravdess --data-root ../shared/data/ravdess [--out DIR] [--workers N]
    python -m shards.build --list
    python -m shards.build --dataset ravdess --data-root DIR --dry-run

The command line over :mod:`emohrnet.shards`, where what a shard holds, the manifest, reuse and
staged writes are described (and where a program imports :func:`build_shards` from).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from emohrnet.config.argtypes import int_at_least
from emohrnet.corpora import CorpusError, check_options, corpus_class, list_corpora
from emohrnet.shards import (
    ShardError,
    add_feature_args,
    build_shards,
    check_feature_args,
    features_from_args,
    parse_corpus_options,
    summarize,
)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m shards.build", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", help=f"corpus name: {', '.join(list_corpora())}")
    p.add_argument("--data-root", help="the corpus folder (default: $EMOHRNET_<NAME>_ROOT)")
    p.add_argument("--out", help="shard folder (default: $EMOHRNET_HOME/shards/<dataset>-<fingerprint>)")
    p.add_argument("--workers", type=int_at_least(1), default=os.cpu_count() or 1, help="feature processes")
    p.add_argument("--shard-size", type=int_at_least(1), default=256, help="most utterances per shard")
    p.add_argument("--corpus-option", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option, e.g. include_song=true (repeatable)")
    p.add_argument("--force", action="store_true", help="rebuild even if a matching build exists")
    p.add_argument("--list", action="store_true", help="list the corpora and their classes")
    p.add_argument("--dry-run", action="store_true", help="print the corpus summary, compute nothing")
    add_feature_args(p)
    args = p.parse_args(argv)
    if args.list:
        for name in list_corpora():
            cls = corpus_class(name)
            print(f"{name:10s} {len(cls.classes)} classes: {', '.join(cls.classes)}")
        return 0
    if not args.dataset:
        p.error("--dataset is required (or --list)")
    if args.dataset not in list_corpora():
        p.error(f"argument --dataset: {args.dataset!r} (allowed: {', '.join(list_corpora())})")
    check_feature_args(p, args)
    try:
        options = parse_corpus_options(args.corpus_option)
        check_options(args.dataset, options)
    except ValueError as err:
        p.error(str(err))
    try:
        if args.dry_run:
            print(json.dumps(summarize(args.dataset, args.data_root, options), indent=1))
            return 0
        result = build_shards(args.dataset, args.data_root, args.out, workers=args.workers,
                              features=features_from_args(args), shard_size=args.shard_size,
                              augment_copies=args.augment_copies, corpus_options=options, force=args.force)
    except (CorpusError, ShardError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.shard_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
