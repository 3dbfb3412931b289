"""What writing a projection's outputs costs, and the bands across replications against numpy's.

    python bench/outputs_speed.py [--days 365] [--replications 8] [--seed 1] [--repeat 3]
        [--json FILE]

On the README's `rulebook simulate` (the default scenario under ``lowprice-2024``, 365 days,
8 replications), in one run:

1. **Bands across replications**: each daily series' 5th and 95th percentiles across the
   replications, every cohort of every series the charts band, by ``np.nanpercentile(...,
   axis=0)`` (the baseline: numpy takes a NaN-holding array apart column by column) and by
   `simulator.bands.nanpercentile`; the two must give the same bits (a tied zero's sign
   aside). Best of ``--repeat``,
   CPU seconds, and their ratio.
2. **The charts**: `simulator.outputs.write_charts` in PNG and SVG, best of ``--repeat``, CPU
   seconds (after a first call that imports matplotlib and loads its fonts).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.loader import load_set  # noqa: E402
from simulator import bands, outputs  # noqa: E402
from simulator.run import project  # noqa: E402

SET_DIR = ROOT / "rules" / "books" / "lowprice-2024"


def _best(repeat: int, run: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        run()
        best = min(best, time.process_time() - t)
    return best


def _banded(series: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Every (replications x days) array the charts band: each series, each cohort."""
    out = []
    for arr in series.values():
        if arr.ndim == 2:
            out.append(arr)
        elif arr.ndim == 3:
            out += [arr[:, :, i] for i in range(arr.shape[2])]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--replications", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)

    p = project(load_set(SET_DIR), None, args.days, args.replications, args.seed)
    arrays = [np.where(np.isfinite(a).any(axis=0)[None, :], a, 0.0) for a in _banded(p.series)]

    def by_numpy() -> list[np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return [np.nanpercentile(a, outputs.BAND, axis=0) for a in arrays]

    def by_bands() -> list[np.ndarray]:
        return [bands.nanpercentile(a, outputs.BAND) for a in arrays]

    # (the same bits, a zero's sign aside: 0.0 and -0.0 tied may rank either way)
    same = all(np.array_equal((x + 0.0).view(np.uint64), (y + 0.0).view(np.uint64))
               for x, y in zip(by_numpy(), by_bands(), strict=True))
    numpy_s, bands_s = _best(args.repeat, by_numpy), _best(args.repeat, by_bands)
    with tempfile.TemporaryDirectory() as tmp:
        outputs.write_charts(p, Path(tmp) / "warm", formats=("png",))
        charts_s = _best(args.repeat, lambda: outputs.write_charts(p, Path(tmp) / "charts"))
    result = {
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    "platform": platform.platform()},
        "days": args.days, "replications": args.replications, "banded_arrays": len(arrays),
        "bands_numpy_cpu_s": numpy_s, "bands_cpu_s": bands_s, "bands_same_bits": same,
        "bands_speedup": numpy_s / bands_s if bands_s else float("inf"),
        "charts_png_svg_cpu_s": charts_s,
    }
    print(f"bands of {len(arrays)} arrays ({args.replications} x {args.days}): numpy "
          f"nanpercentile {numpy_s:.3f} s, simulator.bands {bands_s:.4f} s "
          f"({result['bands_speedup']:.0f}x), same bits: {same}")
    print(f"charts, PNG and SVG: {charts_s:.2f} s of CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
