"""The engines the kit exports to, simulated on this machine: Gradescope and GitHub Actions.

:class:`DockerEngine` is a local Docker engine (FIELD-NOTES, "Containers"): Debian's
``dockerd``, started here with a private data root and socket and stopped by its PID, and a
base image made without a registry (``debootstrap`` of Debian bookworm, ``docker import``).
One engine serves the whole test session.

Gradescope builds an image from the autograder zip (its base image, the zip unpacked in
``/autograder/source``, ``setup.sh`` run as root), then for each submission starts a fresh
container, puts the student's files in ``/autograder/submission``, runs
``/autograder/run_autograder`` and reads ``/autograder/results/results.json``.
:class:`DockerGradescope` does exactly that: the image is built by ``docker build`` from
``fixtures/gradescope/Dockerfile``, which follows Gradescope's own manual-Docker example, so
``setup.sh`` really installs Python, bubblewrap and the pinned wheels; each submission runs in a
container with Docker's default capabilities and seccomp profile (the kind of container
Gradescope runs; bubblewrap cannot make its namespaces there), with no network.
:class:`TreeGradescope` is the fallback where no engine can run: a private directory tree with
the same paths, mounted at ``/autograder`` by bubblewrap, and ``setup.sh`` in its offline mode.

GitHub Actions runs a workflow's job on a runner: :class:`ActionsRunner` runs the exported
workflow's job step by step in a container of an Ubuntu-like runner image (a ``runner`` user, a
Python in the tool cache), as the runner would: its ``run:`` steps with ``bash -e``, the job's
env, ``GITHUB_STEP_SUMMARY``, ``if: always()``; the three actions it uses are done by hand
(checkout: the repository copied in; setup-python: the tool cache's Python on ``PATH`` and a pip
cache kept between jobs; upload-artifact: the files copied out).
"""


from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from conftest import REPO

from autograder.engine.process import die_with_parent

DOCKERFILE = REPO / "tests" / "fixtures" / "gradescope" / "Dockerfile"
BASE_IMAGE = ("shipml-sim/debian", "bookworm")  # passed as BASE_REPO and TAG to the Dockerfile
MIRROR = "http://deb.debian.org/debian"
IGNORE = shutil.ignore_patterns("__pycache__", "*.joblib")


@dataclass
class Run:
    """One submission through the simulated Gradescope."""

    results: dict[str, Any]
    stdout: str  # what run_autograder printed: the staff's copy
    seconds: float  # wall time of run_autograder (a fresh container's start included)


def unzip_source(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    for name in ("setup.sh", "run_autograder"):  # zipfile does not restore modes
        (dest / name).chmod(0o755)
    return dest


def docker_available() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("dockerd", "docker", "debootstrap"))


class DockerEngine:
    """A private ``containerd`` and ``dockerd``, and the base image every simulated engine
    builds on.

    Both daemons are started here, each with its own root, state and socket under one folder
    (``/var/tmp/gsim-dockerd-*``), and stopped by their PIDs; a ``dockerd`` left to itself would
    use the machine's own containerd whenever one runs. Both die with the test run, even if
    pytest is SIGKILLed (the kernel's parent-death signal), and the next engine sweeps what such
    a run left: its containers' shims, mounts and folder.
    """

    NETWORK = "gsim-internal"
    """A bridge network with no route out (``--internal``): a container on it has an interface
    besides loopback, as a Gradescope container has, and reaches nothing past the bridge."""

    def __init__(self) -> None:
        sweep_engines()
        # Short paths (unix sockets), not under /var/tmp/shipml-* (the grader sweeps those).
        self.home = Path(tempfile.mkdtemp(prefix=ENGINE_PREFIX, dir="/var/tmp"))
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.home}/docker.sock", "DOCKER_BUILDKIT": "0"}
        self.daemons: list[subprocess.Popen[bytes]] = []
        self.timings: dict[str, float] = {}
        try:
            self._start()
            self._base_image()
            self.docker("network", "create", "--internal", self.NETWORK)
        except BaseException:
            self.close()
            raise

    def docker(self, *args: str, timeout: float = 600, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args[:3])} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
        return proc

    def _daemon(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with open(self.home / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        (self.home / f"{name}.pid").write_text(str(proc.pid))
        self.daemons.append(proc)
        return proc

    def _wait(self, proc: subprocess.Popen[bytes], name: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 60
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start: {(self.home / f'{name}.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def _start(self) -> None:
        started = time.monotonic()
        (self.home / "containerd.toml").write_text("version = 2\n")
        containerd = self._daemon("containerd", [
            "containerd", f"--config={self.home}/containerd.toml", f"--root={self.home}/containerd-root",
            f"--state={self.home}/containerd-state", f"--address={self.home}/containerd.sock"])
        self._wait(containerd, "containerd", (self.home / "containerd.sock").exists)
        dockerd = self._daemon("dockerd", [
            "dockerd", f"--containerd={self.home}/containerd.sock", f"--data-root={self.home}/data",
            f"--exec-root={self.home}/exec", f"--pidfile={self.home}/dockerd-own.pid", f"--host=unix://{self.home}/docker.sock",
            "--bridge=none", "--iptables=false", "--ip-masq=false"])
        self._wait(dockerd, "dockerd", lambda: self.docker("info", check=False, timeout=30).returncode == 0)
        self.timings["containerd and dockerd start"] = time.monotonic() - started

    def _base_image(self) -> None:
        """Debian bookworm from Debian's mirror, imported as an image: no registry involved.
        The host's CA bundle goes in so that pip trusts this machine's TLS proxy (FIELD-NOTES);
        that is the machine's, not the autograder's, so it belongs in the base image."""
        started = time.monotonic()
        rootfs = self.home / "rootfs"
        proc = subprocess.run(["debootstrap", "--variant=minbase", BASE_IMAGE[1], str(rootfs), MIRROR], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"debootstrap failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
        (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/host-ca.crt")
        (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/host-ca.crt\n")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", "-", ":".join(BASE_IMAGE)], stdin=tar.stdout, env=self.env, capture_output=True, timeout=600)
        tar.wait()
        assert imported.returncode == 0, imported.stderr.decode()
        shutil.rmtree(rootfs)
        self.timings["base image (debootstrap, import)"] = time.monotonic() - started

    def build(self, context: Path, tag: str, timeout: float = 1800) -> str:
        """``docker build`` of ``context`` on the base image (``BASE_REPO`` and ``TAG``), with the
        host's network for the build steps (apt-get and pip)."""
        proc = self.docker("build", "--network=host", "--build-arg", f"BASE_REPO={BASE_IMAGE[0]}", "--build-arg", f"TAG={BASE_IMAGE[1]}",
                           "-t", tag, str(context), timeout=timeout, check=False)
        assert proc.returncode == 0, f"image build failed: {proc.stdout.decode()[-3000:]}{proc.stderr.decode()[-2000:]}"
        return proc.stdout.decode(errors="replace")

    def copy_out(self, cid: str, path: str) -> bytes | None:
        """The contents of one file of a container, or None if it is not there."""
        proc = self.docker("cp", f"{cid}:{path}", "-", check=False)
        if proc.returncode != 0:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["tar", "-x", "-C", tmp], input=proc.stdout, check=True)
            return (Path(tmp) / Path(path).name).read_bytes()

    def close(self) -> None:
        """Remove the containers, stop dockerd then containerd by their PIDs, and remove the
        folder (unmounting what they left)."""
        if self.daemons and self.daemons[-1].poll() is None:
            ids = self.docker("ps", "-aq", check=False).stdout.decode().split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        for proc in reversed(self.daemons):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
        remove_engine_folder(self.home)


ENGINE_PREFIX = "gsim-dockerd-"


def remove_engine_folder(home: Path) -> None:
    """Kill what still runs from ``home`` (a container's shim names the engine's socket), unmount
    what is mounted under it, and remove it."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(home).encode() in cmdline and int(pid) != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(str(home))), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


def sweep_engines() -> list[Path]:
    """Remove the engine folders of test runs that are gone (no daemon of theirs alive)."""
    swept = []
    for home in Path("/var/tmp").glob(ENGINE_PREFIX + "*"):
        pids = [int(f.read_text()) for f in home.glob("*.pid") if f.read_text().strip().isdigit()]
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            remove_engine_folder(home)
            swept.append(home)
    return swept


class DockerGradescope:
    """The Gradescope image of one autograder zip, and one container per submission."""

    engine = "docker"

    def __init__(self, docker: DockerEngine, zip_path: Path) -> None:
        self.docker = docker
        self.timings = dict(docker.timings)
        started = time.monotonic()
        context = Path(tempfile.mkdtemp(prefix="context-", dir=docker.home))
        shutil.copy(DOCKERFILE, context / "Dockerfile")
        unzip_source(zip_path, context / "source")
        self.image = "shipml-sim/autograder:" + zip_path.stem.lower()
        log = docker.build(context, self.image)
        assert "shipml autograder ready" in log, log[-3000:]
        shutil.rmtree(context)
        self.timings["image build (setup.sh)"] = time.monotonic() - started

    def run(self, submission: Path | None, *, replace: dict[str, bytes] | None = None, namespaces: bool = False,
            timeout: float = 900) -> Run:
        """One submission in a fresh container from the image, on a network of its own (an
        interface besides loopback, no route out).

        By default the container has Docker's default capabilities and seccomp profile, in which
        bubblewrap cannot make its namespaces; with ``namespaces`` it also has the two rights
        bubblewrap needs (``CAP_SYS_ADMIN``, ``CAP_NET_ADMIN``, no seccomp filter), as a
        Gradescope container might. ``replace`` swaps files of the image (paths under
        /autograder/source) first: a grader bug found at run time."""
        docker = self.docker.docker
        rights = ["--cap-add=SYS_ADMIN", "--cap-add=NET_ADMIN", "--security-opt=seccomp=unconfined"] if namespaces else []
        cid = docker("create", f"--network={DockerEngine.NETWORK}", *rights, self.image, "/autograder/run_autograder").stdout.decode().strip()
        try:
            if submission is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    shutil.copytree(submission, Path(tmp) / "s", ignore=IGNORE)
                    docker("cp", f"{tmp}/s/.", f"{cid}:/autograder/submission")
            for path, data in (replace or {}).items():
                with tempfile.NamedTemporaryFile() as f:
                    f.write(data)
                    f.flush()
                    docker("cp", f.name, f"{cid}:/autograder/source/{path}")
            started = time.monotonic()
            out = docker("start", "-a", cid, timeout=timeout)
            seconds = time.monotonic() - started
            state = json.loads(docker("inspect", cid).stdout)[0]["State"]
            assert state["ExitCode"] == 0, f"run_autograder exited {state['ExitCode']}"
            data = self.docker.copy_out(cid, "/autograder/results/results.json")
            assert data is not None, "run_autograder wrote no results.json"
            return Run(json.loads(data), out.stdout.decode(errors="replace") + out.stderr.decode(errors="replace"), seconds)
        finally:
            docker("rm", "-f", cid, check=False)

    def close(self) -> None:
        self.docker.docker("rmi", "-f", self.image, check=False)


class TreeGradescope:
    """The same paths in a private tree under bubblewrap, for machines without a Docker engine:
    ``/autograder`` is a fresh folder in a mount namespace, the kit's checkout is masked, and
    ``setup.sh`` (offline mode) proves this interpreter holds every pinned version."""

    engine = "tree"

    def __init__(self, zip_path: Path) -> None:
        self.zip_path = zip_path
        self.home = Path(tempfile.mkdtemp(prefix="gsim-tree-"))
        self.timings: dict[str, float] = {}
        self.count = 0

    def run(self, submission: Path | None, *, replace: dict[str, bytes] | None = None, namespaces: bool = True,
            timeout: float = 900) -> Run:
        """One submission in a fresh tree; bubblewrap can always make its namespaces here."""
        assert namespaces, "the tree cannot withhold bubblewrap's namespaces"
        self.count += 1
        tree = self.home / f"run{self.count}" / "autograder"
        for name in ("submission", "results"):
            (tree / name).mkdir(parents=True)
        unzip_source(self.zip_path, tree / "source")
        for path, data in (replace or {}).items():
            (tree / "source" / path).write_bytes(data)
        if submission is not None:
            shutil.copytree(submission, tree / "submission", dirs_exist_ok=True, ignore=IGNORE)
        argv = ["bwrap", "--die-with-parent", "--cap-add", "ALL", "--tmpfs", "/"]
        for entry in sorted(os.listdir("/")):
            path = f"/{entry}"
            if entry == "autograder":
                continue
            if os.path.islink(path):
                argv += ["--symlink", os.readlink(path), path]
            elif entry == "dev":
                argv += ["--dev-bind", path, path]
            elif os.path.isdir(path):
                argv += ["--bind", path, path]
        argv += ["--bind", str(tree), "/autograder"]
        for masked in ("autograder", "labs", "datasets", "tests"):
            argv += ["--tmpfs", str(REPO / masked)]
        script = (
            "set -e; cp source/run_autograder /autograder/run_autograder; bash source/setup.sh >&2; "
            "start=$(date +%s%N); /autograder/run_autograder; "
            "echo \"shipml-ms $(( ($(date +%s%N) - start) / 1000000 ))\""
        )
        argv += ["--chdir", "/autograder", "--setenv", "SHIPML_SIMULATED_PYTHON", sys.executable, "--", "bash", "-c", script]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"simulated Gradescope run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        seconds = int(proc.stdout.strip().splitlines()[-1].split()[-1]) / 1000
        results = json.loads((tree / "results" / "results.json").read_text())
        return Run(results, proc.stdout, seconds)

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def gradescope(docker: DockerEngine | None, zip_path: Path) -> DockerGradescope | TreeGradescope:
    """The Docker simulation where this machine has an engine to start, else the tree."""
    return DockerGradescope(docker, zip_path) if docker is not None else TreeGradescope(zip_path)


ACTIONS_DOCKERFILE = REPO / "tests" / "fixtures" / "actions" / "Dockerfile"
RUNNER_UID = 1001  # the runner user of fixtures/actions/Dockerfile
TOOL_PYTHON = "/opt/hostedtoolcache/Python/{version}/x64"


@dataclass
class Job:
    """One run of a workflow's job on the simulated runner."""

    outcomes: dict[str, str]  # step name -> success, failure or skipped
    summary: str  # what the steps wrote to GITHUB_STEP_SUMMARY
    artifacts: dict[str, bytes]  # "<artifact name>/<file name>" -> contents
    log: str
    seconds: float

    @property
    def conclusion(self) -> str:
        return "failure" if "failure" in self.outcomes.values() else "success"


class ActionsRunner:
    """Runs a workflow's one job, step by step, in a fresh container of the runner image."""

    def __init__(self, docker: DockerEngine) -> None:
        self.docker = docker
        started = time.monotonic()
        context = Path(tempfile.mkdtemp(prefix="context-", dir=docker.home))
        shutil.copy(ACTIONS_DOCKERFILE, context / "Dockerfile")
        self.image = "shipml-sim/actions-runner:latest"
        docker.build(context, self.image)
        shutil.rmtree(context)
        # setup-python's `cache: pip`: the pip cache outlives a job (GitHub restores it by key).
        self.pip_cache = docker.home / "actions-pip-cache"
        self.pip_cache.mkdir(exist_ok=True)
        os.chown(self.pip_cache, RUNNER_UID, RUNNER_UID)
        self.timings = {"runner image": time.monotonic() - started}

    def run_job(self, repo: Path, workflow: str = ".github/workflows/shipml.yml", timeout: float = 1800) -> Job:
        spec = yaml.safe_load((repo / workflow).read_text())
        (job,) = spec["jobs"].values()
        # What the simulation knows how to run; anything else must fail the test, not be skipped.
        assert set(job) <= {"runs-on", "timeout-minutes", "env", "steps"}, f"job keys the runner does not simulate: {set(job)}"
        for step in job["steps"]:
            assert set(step) <= {"name", "uses", "with", "run", "if"}, f"step keys the runner does not simulate: {set(step)}"
        assert "${{" not in str(job.get("env")), "expressions in the job's env"
        tree = committed_tree(repo)  # what actions/checkout puts in the workspace
        work = "/home/runner/work/repo"
        env = {"HOME": "/home/runner", "CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_OS": "Linux", "GITHUB_WORKSPACE": work,
               "GITHUB_STEP_SUMMARY": "/home/runner/_step_summary.md", "PATH": "/usr/local/bin:/usr/bin:/bin",
               **{k: str(v) for k, v in (job.get("env") or {}).items()}}
        docker = self.docker.docker
        # The host's network, as a hosted runner has one (pip installs the pins); the team's
        # service listens on the container's loopback, which is the host's here.
        cid = docker("run", "-d", "--network=host", "-v", f"{self.pip_cache}:/home/runner/.cache/pip", self.image, "sleep", "infinity").stdout.decode().strip()
        outcomes: dict[str, str] = {}
        artifacts: dict[str, bytes] = {}
        log: list[str] = []
        started = time.monotonic()
        try:
            failed = False
            for step in job["steps"]:
                name = step.get("name") or step["uses"]
                condition = step.get("if")
                assert condition in (None, "always()"), f"the simulated runner does not evaluate 'if: {condition}'"
                if failed and condition != "always()":
                    outcomes[name] = "skipped"
                    continue
                if "uses" in step:
                    ok = self._action(cid, step, env, work, tree, artifacts, log)
                else:
                    script = self._expand(step["run"], env)
                    argv = ["exec", "-u", "runner", "-w", work]
                    for key, value in env.items():
                        argv += ["-e", f"{key}={value}"]
                    proc = docker(*argv, cid, "bash", "-e", "-c", script, timeout=timeout, check=False)
                    log.append(f"## {name} (exit {proc.returncode})\n{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}")
                    ok = proc.returncode == 0
                outcomes[name] = "success" if ok else "failure"
                failed = failed or not ok
            summary = self.docker.copy_out(cid, env["GITHUB_STEP_SUMMARY"]) or b""
            return Job(outcomes, summary.decode(), artifacts, "\n".join(log), time.monotonic() - started)
        finally:
            docker("rm", "-f", cid, check=False)

    @staticmethod
    def _expand(text: str, env: dict[str, str]) -> str:
        """``${{ env.NAME }}``, the one expression the workflow uses; any other is an error."""
        text = re.sub(r"\$\{\{\s*env\.(\w+)\s*\}\}", lambda m: env[m.group(1)], text)
        assert "${{" not in text, f"the simulated runner does not evaluate: {text}"
        return text

    def _action(self, cid: str, step: dict[str, Any], env: dict[str, str], work: str, tree: bytes,
                artifacts: dict[str, bytes], log: list[str]) -> bool:
        action, _, version = step["uses"].partition("@")
        args = step.get("with") or {}
        docker = self.docker.docker
        if action == "actions/checkout":
            docker("exec", "-u", "root", cid, "mkdir", "-p", work)
            docker("cp", "-", f"{cid}:{work}", input=tree)
            docker("exec", "-u", "root", cid, "chown", "-R", "runner:runner", work)
        elif action == "actions/setup-python":
            prefix = TOOL_PYTHON.format(version=args["python-version"])
            assert docker("exec", cid, "test", "-x", f"{prefix}/bin/python", check=False).returncode == 0, f"no Python {args['python-version']} in the tool cache"
            env["PATH"] = f"{prefix}/bin:{env['PATH']}"
            env["pythonLocation"] = prefix
        elif action == "actions/upload-artifact":
            for line in self._expand(str(args["path"]), env).splitlines():
                if line.strip():
                    data = self.docker.copy_out(cid, f"{work}/{line.strip()}")
                    if data is None:
                        assert args.get("if-no-files-found", "warn") == "warn", f"no file {line.strip()} to upload"
                        log.append(f"## upload-artifact: warning, no file {line.strip()}")
                    else:
                        artifacts[f"{args['name']}/{Path(line.strip()).name}"] = data
        else:
            raise AssertionError(f"the simulated runner does not know the action {action}@{version}")
        return True


def committed_tree(repo: Path) -> bytes:
    """A tar of what a push of ``repo`` holds: its files committed to a fresh git repository
    (so ``.gitignore`` applies, as it does for the team), then ``git archive``."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "repo"
        shutil.copytree(repo, clone)
        git = ["git", "-C", str(clone), "-c", "user.name=team", "-c", "user.email=team@example.org", "-c", "init.defaultBranch=main"]
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "push"]):
            subprocess.run([*git, *args], check=True, capture_output=True)
        return subprocess.run([*git, "archive", "--format=tar", "HEAD"], check=True, capture_output=True).stdout
