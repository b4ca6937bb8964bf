"""Section 3, the shard build: audio seconds per second and files/s of
:func:`emohrnet.shards.build_shards` with 1, 2 and all workers.

Each build goes into its own temporary folder with ``force=True``, so nothing is reused; the time is
the whole call as a user sees it (corpus scan, fingerprint, feature processes, tar writing, sha256,
manifest). The last build's shards are kept for the data-path section.
"""

from __future__ import annotations

from .common import Context, Section, Timer, main_corpus, quiet, torch_threads

TITLE = "3. Shard build: audio seconds per second and files/s"


def worker_counts(cores: int) -> list[int]:
    """1, 2 and all cores, without repeats (on a 2-core machine: 1 and 2)."""
    return sorted({1, min(2, cores), cores})


def run(ctx: Context) -> Section:
    """Build the corpus's shards once per worker count.

    Returns:
        rows in audio s/s, files/s, s (wall time) and x (speed-up over 1 worker).
    """
    from emohrnet.shards import build_shards

    sec = Section("shardbuild", TITLE)
    corpus = main_corpus(ctx)
    counts = worker_counts(ctx.cores)
    sec.settings = {"corpus": corpus.to_dict(), "workers": counts, "force": True,
                    "features": "FeatureConfig() defaults (128 mels, 25 ms / 10 ms)",
                    "timing": "whole build_shards call (scan, features, tar writing, sha256, manifest)"}
    if len(counts) < 3:
        sec.notes.append(f"this machine has {ctx.cores} usable cores, so 'all workers' is {ctx.cores} "
                         "and is not measured twice")
    base = None
    for workers in counts:
        out = ctx.work / f"shardbuild-w{workers}"
        with torch_threads(), Timer() as t:
            result = build_shards(corpus.dataset, corpus.data_root, out, workers=workers,
                                  corpus_options=corpus.options, force=True, progress=False, log=quiet)
        files = result.manifest.num_utterances
        base = base or t.s
        label = f"{workers} worker{'s' if workers > 1 else ''}" + (" (all cores)" if workers == ctx.cores else "")
        sec.add(f"build, {label}: audio", corpus.audio_seconds / t.s, "audio s/s", workers=workers,
                files=files, audio_seconds=round(corpus.audio_seconds, 1))
        sec.add(f"build, {label}: files", files / t.s, "files/s", workers=workers)
        sec.add(f"build, {label}: wall time", t.s, "s", workers=workers)
        if workers > 1:
            sec.add(f"build, {label}: speed-up over 1 worker", base / t.s, "x", workers=workers)
        ctx.shard_dir = result.shard_dir
    return sec
