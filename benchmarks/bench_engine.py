"""P1 and P2 for the engine, measured side by side in one run.

P1: seconds to grade one fixture submission with `shipml grade`, divided by its floor: starting
    the same service by hand until healthy, plus sending the same 20 requests the checks send,
    plus the team's test command (goal <= 1.5); and the fixed cost, grading minus the floor, which
    every team of every class run pays once (goal < 1 s; most of it is Python's imports).
P2: `shipml grade-all` over 40 copies of the fixture submission, 1 worker / 2 workers
    (speed-up, goal >= 1.7).

    python benchmarks/bench_engine.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))
from conftest import ENGINE_FIXTURE, make_fixture_submission  # noqa: E402

from autograder.engine.sandbox import free_port  # noqa: E402


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - t0


def floor(folder: Path) -> float:
    t0 = time.perf_counter()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "server.py", "--port", str(port)], cwd=folder, stdout=subprocess.DEVNULL)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        for _ in range(20):
            client.get("/ping")
    proc.kill()
    subprocess.run([sys.executable, "-c", "print('tests ok')"], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one = make_fixture_submission(root / "one", "healthy")
        grade = [sys.executable, "-m", "autograder", "grade", str(ENGINE_FIXTURE), str(one), "--out", str(root / "o1"), "--quiet"]
        graded = min(timed(grade) for _ in range(3))
        base = min(floor(one) for _ in range(3))
        imports = min(timed([sys.executable, "-c", "import autograder.cli, autograder.engine.grading, autograder.engine.report"]) for _ in range(3))
        print(f"P1 grade one submission: {graded:.2f} s, floor {base:.2f} s, ratio {graded / base:.2f} (goal <= 1.5); "
              f"fixed cost {graded - base:.2f} s (goal < 1 s), of which starting Python with the grader's imports {imports:.2f} s")
        klass = root / "class"
        for i in range(40):
            make_fixture_submission(klass, "healthy").rename(klass / f"team{i:02d}")
        run = [sys.executable, "-m", "autograder", "grade-all", str(ENGINE_FIXTURE), str(klass), "--force", "--out"]
        t1 = timed([*run, str(root / "a"), "--jobs", "1"])
        t2 = timed([*run, str(root / "b"), "--jobs", "2"])
        print(f"P2 grade-all 40 submissions: 1 worker {t1:.1f} s, 2 workers {t2:.1f} s, speed-up {t1 / t2:.2f} (goal >= 1.7)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
