"""Median wall time of ``ctr run --rm <image> <id> /bin/true``: runc against
$ROOTLET, runs interleaved on the same containerd. A measurement, printed in
the summary at the end of the run (and recorded as a junit property), not a
timed assertion; only a failed run fails the test.
``$ROOTLET_ENGINE_TIMING_RUNS`` sets the runs per runtime (default 15).
"""

from __future__ import annotations

import os
import shutil
import statistics
import time


def test_ctr_run_true_median(ctd, image, engine_runtime, token, report, record_property):
    runs = int(os.environ.get("ROOTLET_ENGINE_TIMING_RUNS", "15"))
    runtimes = {os.path.basename(engine_runtime): engine_runtime}
    runc = shutil.which("runc")
    if runc and os.path.realpath(runc) != os.path.realpath(engine_runtime):
        runtimes = {"runc": runc, **runtimes}
    times: dict[str, list[float]] = {label: [] for label in runtimes}
    failures: dict[str, list[str]] = {label: [] for label in runtimes}
    for i in range(runs):
        for label, binary in runtimes.items():
            t0 = time.perf_counter()
            r = ctd.run_rm(image.name, f"time-{token}-{label}-{i}", "/bin/true",
                           runtime=binary)
            elapsed = time.perf_counter() - t0
            if r.rc == 0:
                times[label].append(elapsed)
            else:  # timed runs go on; the failure is reported below
                failures[label].append(f"exit {r.rc}: {r.err.strip()}")
                ctd.reset()
    lines = []
    for label, ts in times.items():
        if failures[label]:
            lines.append(f"ctr run --rm /bin/true on {label}: {len(failures[label])} of {runs}"
                         f" runs failed, first: {failures[label][0]}")
        if not ts:
            continue
        median = statistics.median(ts)
        record_property(f"ctr_run_rm_true_median_{label}_ms", round(median * 1000, 1))
        lines.append(f"ctr run --rm /bin/true on {label}: median {median * 1000:.0f} ms "
                     f"(min {min(ts) * 1000:.0f}, max {max(ts) * 1000:.0f}, {len(ts)} runs)")
    for line in lines:
        report(line)
    failed = {label: f for label, f in failures.items() if f}
    assert not failed, f"ctr run --rm /bin/true failed: {failed}"
