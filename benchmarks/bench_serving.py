"""P3 and P4, measured side by side in one run (ratios, because these machines are noisy).

P3: requests/s of the harness's load generator divided by wrk's, against the same minimal
    FastAPI app (goal >= 0.8: the load generator is not the bottleneck) and against the reference
    service (goal >= 0.9); the two alternate three times and the median pair counts.
P4: the reference service's requests/s divided by the minimal app's, and its p99 divided by the
    minimal app's, both with 8 concurrent clients (goals >= 0.5 and <= 3).
P1 (this lab): `shipml grade serving` on the reference divided by its floor: the work the lab's
    checks ask of any team's system, done directly: training, training again on half the train
    months (provenance), three service start-ups (the shared one, health's fresh one and
    provenance's), the offline predict command, and every request the checks send, at the
    reference's top rate (goal <= 1.5).

    python benchmarks/bench_serving.py        (needs wrk: apt-get install wrk)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from autograder import data  # noqa: E402
from autograder.checks import flights_api, loadgen  # noqa: E402
from autograder.engine.sandbox import free_port  # noqa: E402

REQUESTS, CONCURRENCY = 4000, 8
ROUNDS = 3  # P3 alternates the load generator and wrk this many times: load from elsewhere on
# the machine then weighs on both sides of each pair, and the median pair is reported.


def paired(url: str, payloads: list) -> tuple[float, float]:
    """Requests/s of the load generator and of wrk, alternated ROUNDS times; the median pair by ratio."""
    loadgen.send(url, payloads, total=500, concurrency=CONCURRENCY)
    pairs = []
    for _ in range(ROUNDS):
        ours = loadgen.send(url, payloads, total=REQUESTS, concurrency=CONCURRENCY).throughput
        pairs.append((ours, wrk(url, payloads[0])))
    pairs.sort(key=lambda pair: pair[0] / pair[1])
    return pairs[len(pairs) // 2]


def start(argv: list[str], port: int, cwd: Path, env_path: str = "") -> subprocess.Popen[bytes]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": env_path, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{argv} did not start")


def wrk(url: str, body: dict) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\nwrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(["wrk", "-t1", f"-c{CONCURRENCY}", "-d5s", "-s", lua.name, url], capture_output=True, text=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk")
        return 1
    payloads = flights_api.to_requests(flights_api.labelled_flights("validation", 200))
    py = sys.executable
    port = free_port()
    minimal = start([py, "-m", "uvicorn", "minimal_app:app", "--port", str(port), "--log-level", "warning", "--no-access-log"], port, REPO / "benchmarks", str(REPO / "benchmarks"))
    url = f"http://127.0.0.1:{port}/predict"
    try:
        ours_rps, theirs = paired(url, payloads)
        ours = loadgen.send(url, payloads, total=REQUESTS, concurrency=CONCURRENCY)  # for P4's p99
    finally:
        minimal.kill()
    with tempfile.TemporaryDirectory() as tmp:
        ref = REPO / "labs" / "reference"
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ref}:{REPO}", "OMP_NUM_THREADS": "1"}
        public = data.write_public(f"{tmp}/public")
        half = data.write_public(f"{tmp}/half", train_share=0.5, seed=1)
        t0 = time.perf_counter()
        subprocess.run([py, "-m", "flightdelay.train", "--data", str(public), "--out", f"{tmp}/model.joblib"], cwd=ref, check=True, capture_output=True, env=env)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([py, "-m", "flightdelay.train", "--data", str(half), "--out", f"{tmp}/half.joblib"], cwd=ref, check=True, capture_output=True, env=env)
        retrain_s = time.perf_counter() - t0
        frame = flights_api.labelled_flights("validation", 300, seed=7)
        Path(f"{tmp}/in.csv").write_bytes(flights_api.training_rows(frame))
        t0 = time.perf_counter()
        subprocess.run([py, "-m", "flightdelay.predict", "--model", f"{tmp}/model.joblib", "--data", str(public), "--input", f"{tmp}/in.csv",
                        "--output", f"{tmp}/out.csv"], cwd=ref, check=True, capture_output=True, env=env)
        predict_s = time.perf_counter() - t0
        port = free_port()
        t0 = time.perf_counter()
        service = start([py, "-m", "flightdelay.service", "--model", f"{tmp}/model.joblib", "--data", str(public), "--port", str(port)], port, ref, f"{ref}:{REPO}")
        startup_s = time.perf_counter() - t0
        try:
            url_ref = f"http://127.0.0.1:{port}/predict"
            reference_rps, wrk_reference = paired(url_ref, payloads)
            reference = loadgen.send(url_ref, payloads, total=REQUESTS, concurrency=CONCURRENCY)
        finally:
            service.kill()
    # Requests the lab's checks send: contract 21 (+3 GETs); bad input 16 named, about 105 valid
    # variants and 60 generated (+3); health 6; latency 200 + 2000; skew 300; provenance 2 x 200
    # (+2 GETs); quality 1000; accuracy 2000.
    sent = 24 + 184 + 6 + 2200 + 300 + 402 + 1000 + 2000
    floor = train_s + retrain_s + 3 * startup_s + predict_s + sent / reference.throughput
    t0 = time.perf_counter()
    subprocess.run([py, "-m", "autograder", "grade", "serving", str(REPO / "labs/reference"), "--out", f"{tempfile.mkdtemp()}/r", "--quiet"], check=True, cwd=REPO)
    graded = time.perf_counter() - t0
    print(f"grading the reference: {graded:.1f} s; floor {floor:.1f} s (train {train_s:.1f} + {retrain_s:.1f}, start {startup_s:.1f} x3, "
          f"predict {predict_s:.1f}, {sent} requests at {reference.throughput:.0f}/s)")
    print(f"P1 (serving lab) = {graded / floor:.2f}  (goal <= 1.5)")
    print(f"minimal app, harness load generator: {ours_rps:.0f} req/s (median of {ROUNDS} pairs), p99 {ours.percentile_ms(99):.1f} ms")
    print(f"minimal app, wrk -t1 -c{CONCURRENCY}:            {theirs:.0f} req/s")
    print(f"reference service, load generator:   {reference_rps:.0f} req/s (median of {ROUNDS} pairs), p99 {reference.percentile_ms(99):.1f} ms")
    print(f"reference service, wrk -t1 -c{CONCURRENCY}:      {wrk_reference:.0f} req/s")
    print(f"P3 load generator / wrk = {ours_rps / theirs:.2f} on the minimal app (goal >= 0.8); "
          f"{reference_rps / wrk_reference:.2f} on the reference service (goal >= 0.9)")
    print(f"P4 reference / minimal  = {reference.throughput / ours.throughput:.2f} req/s ratio (goal >= 0.5), "
          f"p99 ratio {reference.percentile_ms(99) / ours.percentile_ms(99):.2f} (goal <= 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
