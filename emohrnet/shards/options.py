"""The corpus and front-end options shared by the command lines (``python -m shards.build``,
``python -m tune.search``, ``python -m tune.evaluate``): ``--corpus-option KEY=VALUE``,
``--features``, ``--n-mels``, ``--n-mfcc``, ``--n-fft``, ``--win-length``, ``--hop-length``,
``--augment-copies``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from emohrnet.config.argtypes import int_at_least
from emohrnet.frontend import FeatureConfig, MfccConfig
from emohrnet.shards.build import FeatureSpec


def parse_corpus_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to reader options; values are parsed as JSON when they can be
    (``true``, ``3``), else kept as strings.

    Raises:
        ValueError: a pair without ``=`` or with an empty key.
    """
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--corpus-option {pair!r}: use KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def add_feature_args(parser: argparse.ArgumentParser) -> None:
    """Add the front-end flags (``--features``, ``--n-mels``, ``--n-mfcc``, ...) to a parser."""
    d = FeatureConfig()
    g = parser.add_argument_group("features")
    g.add_argument("--features", choices=("logmel", "mfcc"), default="logmel",
                   help="front end: log-mel (EmoHRNet) or MFCC (cnn1d_attention) (default logmel)")
    g.add_argument("--n-mels", type=int_at_least(1), default=d.n_mels, help="log-mel bands (default %(default)s)")
    g.add_argument("--n-mfcc", type=int_at_least(1), default=MfccConfig().n_mfcc, help="MFCCs (default %(default)s)")
    g.add_argument("--n-fft", type=int_at_least(2), default=d.n_fft, help="FFT size in samples (default %(default)s)")
    g.add_argument("--win-length", type=int_at_least(1), default=d.win_length,
                   help="window in samples, at most --n-fft (default %(default)s)")
    g.add_argument("--hop-length", type=int_at_least(1), default=d.hop_length,
                   help="hop in samples (default %(default)s)")
    g.add_argument("--augment-copies", type=int_at_least(0), default=0,
                   help="waveform-augmented copies per utterance (noise, pitch, speed; default 0)")


def check_feature_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse front-end flags that do not fit together (argparse error, exit 2): a window longer
    than the FFT, more mel bands than FFT bins, more MFCCs than mel bands."""
    if args.win_length > args.n_fft:
        parser.error(f"argument --win-length: {args.win_length} is longer than --n-fft {args.n_fft} "
                     "(allowed: 1 to --n-fft)")
    if args.n_mels is not None and args.n_mels > args.n_fft // 2 + 1:
        parser.error(f"argument --n-mels: {args.n_mels} is more than the {args.n_fft // 2 + 1} FFT bins "
                     f"of --n-fft {args.n_fft} (allowed: 1 to {args.n_fft // 2 + 1})")
    if args.features == "mfcc" and args.n_mfcc > MfccConfig().n_mels:
        parser.error(f"argument --n-mfcc: {args.n_mfcc} is more than the {MfccConfig().n_mels} mel bands "
                     f"(allowed: 1 to {MfccConfig().n_mels})")


def features_from_args(args: argparse.Namespace, kind: str | None = None) -> FeatureSpec:
    """The front end the flags describe (``kind`` overrides ``--features``)."""
    if (kind or args.features) == "mfcc":
        return MfccConfig(n_mfcc=args.n_mfcc, n_fft=args.n_fft, win_length=args.win_length,
                          hop_length=args.hop_length)
    return FeatureConfig(n_mels=args.n_mels, n_fft=args.n_fft, win_length=args.win_length,
                         hop_length=args.hop_length)
