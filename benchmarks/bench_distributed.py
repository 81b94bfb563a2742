"""Speed-up of N torchrun ranks over one process on the same surface, and the files compared.

Runs ``python -m landscape.compute`` once as a single process and once as
``torchrun --standalone --nproc_per_node N -m landscape.compute``, same grid,
same model and data, each rank with `--threads` threads (1 by default, so on a
CPU the ranks compare one core with N). Each command is then rerun on its
finished file, which computes nothing: that is the start-up cost (imports,
loading, rendezvous), subtracted to give the compute-only speed-up.

    python benchmarks/bench_distributed.py                          # CPU, 2 ranks
    python benchmarks/bench_distributed.py --device cuda --nproc 4  # one GPU per rank

Prints the wall times, both ratios, whether the two files hold identical values,
and the machine's load average (other work on the same cores slows the ranks).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from landscape import models
from landscape.io.surface_file import read_surface

REPO = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", help="checkpoint (default: a freshly initialized --model)")
    p.add_argument("--model", default="resnet20", help="network when no --ckpt is given")
    p.add_argument("--samples", type=int, default=256, help="training samples per point")
    p.add_argument("--grid", type=int, default=7, help="points per axis (2-D grid)")
    p.add_argument("--nproc", type=int, default=2, help="ranks of the torchrun job")
    p.add_argument("--threads", type=int, default=1, help="threads per process")
    p.add_argument("--device", default="cpu")
    p.add_argument("--strategy", default="auto")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    n = args.grid
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.ckpt
        if ckpt is None:  # timing needs no trained weights
            torch.manual_seed(0)
            ckpt = f"{tmp}/{args.model}.pt"
            models.save_checkpoint(ckpt, models.create_model(args.model), epoch=0)

        def compute(launcher: list[str], out: str) -> list[str]:
            return [
                *launcher,
                "-m",
                "landscape.compute",
                *("--ckpt", ckpt, "--samples", str(args.samples)),
                *("--x", f"-1:1:{n}", "--y", f"-1:1:{n}", "--device", args.device),
                *("--strategy", args.strategy, "--quiet", "--out", f"{tmp}/{out}"),
            ]

        single = compute([sys.executable], "one.h5")
        multi = compute(
            [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            + [f"--nproc_per_node={args.nproc}"],
            "many.h5",
        )
        load_before = os.getloadavg()
        t1 = timed(single, env)
        s1 = timed(single, env)  # the file is complete: start-up only
        tn = timed(multi, env)
        sn = timed(multi, env)
        load_after = os.getloadavg()
        a, b = read_surface(f"{tmp}/one.h5"), read_surface(f"{tmp}/many.h5")
        identical = all(np.array_equal(a.values[k], b.values[k]) for k in a.values)

    result = {
        "grid": f"{n}x{n}",
        "samples": args.samples,
        "ckpt": args.ckpt or f"{args.model} (initialized)",
        "device": args.device,
        "threads_per_process": args.threads,
        "nproc": args.nproc,
        "wall_1_s": round(t1, 2),
        "wall_n_s": round(tn, 2),
        "startup_1_s": round(s1, 2),
        "startup_n_s": round(sn, 2),
        "speedup_wall": round(t1 / tn, 3),
        "speedup_compute": round((t1 - s1) / max(tn - sn, 1e-9), 3),
        "identical": identical,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }
    print(
        f"{n}x{n} grid, {args.samples} samples, {args.device}, {args.threads} thread(s) each: "
        f"1 process {t1:.1f} s, {args.nproc} ranks {tn:.1f} s -> speed-up {t1 / tn:.2f}x wall, "
        f"{result['speedup_compute']:.2f}x without start-up "
        f"({s1:.1f} s / {sn:.1f} s); identical values: {identical}; "
        f"load average {load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} CPUs"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
