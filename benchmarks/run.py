"""Run the benchmarks, print a table and save every figure as JSON.

Usage::

    python -m benchmarks.run                      # full sizes, --device cuda if a GPU is visible
    python -m benchmarks.run --quick              # small sizes: minutes on a 2-core CPU
    python -m benchmarks.run --device cpu --out results.json --data-root ../shared/data/ravdess
    python -m benchmarks.run --quick --sections datapath,trainstep

Sections (see ``benchmarks/README.md``): 1 data path (shards against decoding audio on the fly),
2 training step (samples/s, memory, FLOP/s), 3 shard build (1, 2, all workers), 4 DDP (1 and 2 Ray
Train workers), 5 search (with and without ASHA), 6 accuracy on real RAVDESS (both models, every
speaker fold; about an hour on 2 cores, so off in ``--quick``; also ``python -m benchmarks.accuracy``).
A failing section is recorded with its error and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from . import accuracy, datapath, ddp, machine, search, shardbuild, trainstep
from .common import DEFAULT_DATA_ROOT, Context, Section, usable_cores

RESULTS = Path(__file__).resolve().parent / "results"
"""Default folder of the JSON files (``benchmarks/results``)."""

# Run order: the shard build first, so the data-path section reads its shards. Printed by number.
SECTIONS: dict[str, ModuleType] = {
    "shardbuild": shardbuild,
    "datapath": datapath,
    "trainstep": trainstep,
    "ddp": ddp,
    "search": search,
    "accuracy": accuracy,
}
NOISY = {"ddp", "search", "accuracy"}
"""Sections whose Ray output goes to the log file (unless ``--verbose``)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    import torch

    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu",
                   help="device of the training-step section (default: cuda if a GPU is visible, else cpu)")
    p.add_argument("--quick", action="store_true", help="small sizes (under 10 minutes on a 2-core CPU)")
    p.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/latest-<device>.json)")
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                   help="RAVDESS folder (default ../shared/data/ravdess); the synthetic corpus if it is missing")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default all)")
    p.add_argument("--threads", default="auto",
                   help="torch threads of the benchmark process: a number, or 'auto' (default): the usable cores "
                   "not already busy (cores minus the 1-minute load average, rounded, at least 1)")
    p.add_argument("--work-dir", type=Path, help="parent of the scratch folder (default: the system temp folder)")
    p.add_argument("--keep-work", action="store_true", help="keep the scratch folder (shards, Ray runs)")
    p.add_argument("--verbose", action="store_true", help="show Ray's output instead of writing it to the log")
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        p.error(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU is visible to torch")
    if args.threads != "auto" and not (args.threads.isdigit() and int(args.threads) > 0):
        p.error(f"--threads {args.threads!r}: use a positive number or 'auto'")
    args.out = args.out or RESULTS / f"latest-{args.device}.json"
    return args


def choose_threads(setting: str, cores: int) -> tuple[int, str]:
    """Torch threads for ``--threads`` and the reason, recorded in the JSON.

    ``auto`` leaves out the cores other processes keep busy: OpenMP threads on an oversubscribed CPU
    wait for one another at every parallel op (a 2-thread step can be several times slower than a
    1-thread one on a loaded 2-core machine).
    """
    if setting != "auto":
        return int(setting), "--threads"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    threads = max(1, min(cores, round(cores - load)))
    return threads, f"auto: {cores} usable cores, 1-minute load average {load:.2f} at start"


# --------------------------------------------------------------------------- table
def fmt_value(value: Any) -> str:
    """A figure for the table: ``-`` when missing, else about 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, int) or not isinstance(value, float):
        return str(value)
    a = abs(value)
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _setting_text(value: Any) -> str:
    if isinstance(value, dict) and "description" in value:
        return str(value["description"])
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 110 else text[:107] + "..."


def format_section(sec: dict[str, Any]) -> str:
    """One section as text: heading, its settings, one line per figure, notes."""
    lines = [f"\n== {sec['title']}  ({sec['wall_s']:.0f} s) =="]
    for key, value in sec["settings"].items():
        lines.append(f"   {key}: {_setting_text(value)}")
    if sec["status"] != "ok":
        lines.append(f"   {sec['status'].upper()}: {sec['error'].strip().splitlines()[-1] if sec['error'] else ''}")
    width = max([len(r["name"]) for r in sec["rows"]] + [20])
    for r in sec["rows"]:
        note = f"  {r['note']}" if r["note"] else ""
        lines.append(f"   {r['name']:<{width}}  {fmt_value(r['value']):>10}  {r['unit']}{note}")
    lines += [f"   note: {n}" for n in sec["notes"]]
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    """The whole report as text: the machine, then every section in number order."""
    m = report["machine"]
    gpus = ", ".join(g["name"] for g in m["gpus"]) or "none"
    v = m["versions"]
    lines = [
        f"emohrnet benchmarks ({report['mode']}, device {report['device']}), {report['created']}",
        f"CPU: {m['cpu']}, {m['cores_usable']} usable cores ({m['cores_logical']} logical), "
        f"RAM {m['ram_gib']} GiB, GPU: {gpus}; load average at start {m['load_average_1_5_15min']}",
        "versions: " + ", ".join(f"{k} {v[k]}" for k in ("python", "torch", "torchaudio", "ray", "webdataset",
                                                          "optuna")),
        f"torch threads: {report['torch_threads']} ({report['torch_threads_reason']})",
    ]
    load = m["load_average_1_5_15min"]
    if load and load[0] >= m["cores_usable"]:
        lines.append(f"WARNING: load average {load[0]} at start on {m['cores_usable']} usable cores: other processes "
                     "share the CPU, timings are noisy")
    for sec in sorted(report["sections"].values(), key=lambda s: s["title"]):
        lines.append(format_section(sec))
    lines.append(f"\ntotal wall time {report['wall_s']:.0f} s")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
class SectionTimeout(BaseException):
    """A section ran past its time limit (a ``BaseException``, so library code catching ``Exception``
    does not swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise :class:`SectionTimeout` in the main thread after ``seconds`` (``SIGALRM``; no limit where
    the platform has none)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise SectionTimeout(f"the section ran past its {seconds} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def section_limit(key: str, quick: bool) -> int:
    """Seconds a section may run: a safety net for a Ray run that waits forever."""
    return (900 if quick else 7200) if key in NOISY else (1800 if quick else 14400)


def run_section(key: str, ctx: Context, log: TextIO | None) -> Section:
    """Run one section, catching its failure and enforcing :func:`section_limit`; Ray's output goes to
    ``log`` when given (kept open for the whole run: Ray's log handlers keep writing to it)."""
    start = time.perf_counter()
    print(f"[benchmarks] {key} ...", file=sys.stderr, flush=True)
    try:
        with contextlib.ExitStack() as stack:
            if log is not None:
                log.write(f"\n===== {key} =====\n")
                stack.enter_context(contextlib.redirect_stdout(log))
                stack.enter_context(contextlib.redirect_stderr(log))
            with time_limit(section_limit(key, ctx.quick)):
                sec = SECTIONS[key].run(ctx)
    except (Exception, SectionTimeout):  # record it, run the other sections
        sec = Section(key, SECTIONS[key].TITLE, status="error", error=traceback.format_exc())
        print(sec.error, file=sys.stderr)
    sec.wall_s = time.perf_counter() - start
    print(f"[benchmarks] {key}: {sec.status} in {sec.wall_s:.0f} s", file=sys.stderr, flush=True)
    return sec


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if a section failed)."""
    import torch

    from emohrnet.io.storage import atomic_write_text

    args = parse_args(argv)
    start = time.perf_counter()
    cores = usable_cores()
    threads, why = choose_threads(args.threads, cores)
    torch.set_num_threads(threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log_file = None if args.verbose else args.out.with_suffix(".log")
    log = open(log_file, "w", buffering=1) if log_file is not None else None  # open until exit: Ray keeps it
    work = Path(tempfile.mkdtemp(prefix="emohrnet-bench-", dir=args.work_dir))
    ctx = Context(device=args.device, quick=args.quick, work=work, cores=cores, data_root=args.data_root)
    report: dict[str, Any] = {
        "benchmark": "emohrnet",
        "command": ["python", "-m", "benchmarks.run", *(sys.argv[1:] if argv is None else argv)],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": "quick" if args.quick else "full",
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "torch_threads_reason": why,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "machine": machine.describe(),
        "row_format": "each row: name, value, unit, note, settings (what it was measured with)",
        "sections": {},
    }
    try:
        for key in [k for k in SECTIONS if k in args.sections]:
            sec = run_section(key, ctx, log if key in NOISY else None)
            report["sections"][key] = sec.to_dict()
            report["wall_s"] = round(time.perf_counter() - start, 1)
            atomic_write_text(args.out, json.dumps(report, indent=1, default=str))  # partial results survive
    finally:
        if args.keep_work:
            print(f"[benchmarks] scratch folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report["wall_s"] = round(time.perf_counter() - start, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    atomic_write_text(args.out, json.dumps(report, indent=1, default=str))
    print(format_report(report))
    print(f"\nresults: {args.out}" + (f" (Ray output: {log_file})" if log_file else ""))
    return 1 if any(s["status"] == "error" for s in report["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
