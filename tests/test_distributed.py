"""Data parallelism (minitransformer/distributed.py): 2 ranks x (B/2) train the model that
1 rank x B trains, only rank 0 writes the run, a run resumes on another number of ranks, and a
failing, killed or hung rank ends the job in seconds. The MPI tests launch mpiexec (the [mpi]
extra: mpi4py and MPICH's wheel) with 2 ranks and skip when it is not installed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import checkpoint, distributed
from minitransformer.zero import partition
from minitransformer.train import TrainConfig, load_run, train
from tests.distributed_worker import train_tiny

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("distributed_worker.py")
TEXT = ("Return the number of items in a container. The argument may be a sequence or a collection.\n"
        "Raise ValueError when the value is not found. Open a file and return a stream.\n") * 20
# --no-bias: the key projection's bias has a zero gradient in exact arithmetic, which float32
# rounds to noise that Adam scales up towards the learning rate (lesson 18); the other
# parameters of 1 and 2 ranks agree within 1e-6 with or without biases
TINY_RUN = ["--batch-size", "4", "--block-size", "16", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
            "--eval-interval", "2", "--eval-iters", "2", "--log-interval", "1", "--sample-tokens", "5",
            "--warmup-iters", "1", "--learning-rate", "1e-3", "--no-bias"]


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'minitransformer[mpi]')")
    found = shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec on PATH (pip install 'minitransformer[mpi]' brings MPICH's)")
    return found


def _launch(args: list[str], cwd: Path, ranks: int = 2, timeout: float = 120, **popen) -> subprocess.Popen:
    """``mpiexec -n ranks python ARGS`` with one thread a rank; MPICH's mpiexec runs as root
    without an extra flag."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MINITRANSFORMER_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.Popen([_mpiexec(), "-n", str(ranks), sys.executable, *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen)


def _run(args: list[str], cwd: Path, ranks: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    process = _launch(args, cwd, ranks)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, output)


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(np.asarray(a[name], np.float64) - np.asarray(b[name], np.float64)).max()) for name in a)


# --- one process: the fallback ------------------------------------------------------------------

def test_without_a_launcher_the_world_is_one_process():
    world = distributed.World()
    grads = [np.arange(3.0), np.ones((2, 2), np.float32)]
    assert world.all_reduce(grads) == grads and world.sum_numbers(1.5, 2.0) == [1.5, 2.0]
    assert world.any(True) and not world.any(False)
    assert world.broadcast_text("runs/a") == "runs/a"
    assert (world.rank, world.size, world.is_main) == (0, 1, True)


def test_launcher_variables_give_the_world_size(monkeypatch):
    for name in distributed.LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched_world_size() == 1
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    assert distributed.launched_world_size() == 3


def test_gradients_travel_in_buckets_of_one_dtype():
    arrays = [np.zeros(100, np.float32), np.zeros(100, np.float32), np.zeros(300, np.float32),
              np.zeros(10, np.float64), np.zeros(10, np.float32)]
    groups = distributed._buckets(arrays, bucket_bytes=800)  # 200 float32 fill a bucket
    assert [[a.size for a in group] for group in groups] == [[100, 100], [300], [10], [10]]


def test_distributed_data_parallel_on_one_process_is_gradient_accumulation():
    # the same update with 1 piece and with 4, float64 (ignore_index makes the pieces unequal)
    assert _max_difference(train_tiny(np.float64, 1)[0], train_tiny(np.float64, 4)[0]) < 1e-12


def test_sharded_optimizer_on_one_process_is_the_optimizer_and_round_trips():
    parameters, plain = train_tiny(np.float64, 1)
    sharded_parameters, sharded = train_tiny(np.float64, 1, zero=True)
    assert _max_difference(parameters, sharded_parameters) == 0.0
    state = sharded.state_dict()
    assert state["param_groups"] == plain.state_dict()["param_groups"]
    sharded.load_state_dict(state)
    assert _max_difference({f"{i}/{k}": v for i, e in sharded.state_dict()["state"].items() for k, v in e.items()},
                           {f"{i}/{k}": v for i, e in plain.state_dict()["state"].items() for k, v in e.items()}) == 0


def test_parameters_are_shared_out_largest_first_to_the_least_loaded_rank():
    sizes = [100, 10, 60, 50, 5]
    params = [mt.zeros(size, requires_grad=True) for size in sizes]
    owner = partition(params, 2)
    # 100 -> rank 0; 60 -> rank 1; 50 -> rank 1 (60 < 100); 10 -> rank 0 (100 < 110); 5 -> rank 0 (a tie)
    assert [owner[id(p)] for p in params] == [0, 0, 1, 1, 0]


# --- two ranks ----------------------------------------------------------------------------------

def test_two_ranks_train_the_parameters_of_one_process(tmp_path):
    """Each rank takes half of every batch (its rows count different numbers of targets); the
    summed gradients give one process's update: float64 within 1e-12, float32 within 1e-6
    (the ranks add their halves in another order than one matrix product does). Every rank
    ends with exactly the same parameters, though rank 1 started from others."""
    result = _run([str(WORKER), "equal", str(tmp_path), "2"], tmp_path)
    assert result.returncode == 0, result.stdout
    for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-6)):
        name = np.dtype(dtype).name
        rank0, rank1 = (dict(np.load(tmp_path / f"{name}-rank{r}.npz")) for r in (0, 1))
        assert _max_difference(rank0, rank1) == 0.0
        one_process = train_tiny(dtype, 1)[0]
        assert _max_difference(rank0, one_process) < tolerance, name


def test_train_on_two_ranks_equals_one_and_resumes_on_either(tmp_path):
    """The CLI's `train` on 2 ranks and on 1, with the same --batch-size: the same checkpoint,
    rank 0's files only, and each run continued on the other number of ranks ends equal."""
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    common = ["--data", "corpus.txt", "--out-dir", "runs", *TINY_RUN]
    result = _run(["-m", "minitransformer", "train", *common, "--name", "two", "--max-iters", "4"], tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout.count("run directory: runs/two") == 2  # rank 0's start and end lines, once each
    config = TrainConfig(data=str(tmp_path / "corpus.txt"), out_dir=str(tmp_path / "runs"), name="one",
                         max_iters=4, batch_size=4, block_size=16, n_layer=1, n_head=2, n_embd=16, eval_interval=2,
                         eval_iters=2, log_interval=1, sample_tokens=5, warmup_iters=1, learning_rate=1e-3,
                         bias=False)
    quiet = open(os.devnull, "w")
    train(config, out=quiet, results=quiet)

    one, two = tmp_path / "runs" / "one", tmp_path / "runs" / "two"
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["one", "two"]
    log_one, log_two = ((run / "log.jsonl").read_text().splitlines() for run in (one, two))
    assert len(log_two) == len(log_one)  # each step and evaluation logged once, by rank 0
    assert _max_difference(load_run(one)[0].state_dict(), load_run(two)[0].state_dict()) < 1e-6

    train(resume=two, overrides={"max_iters": 6}, out=quiet, results=quiet)  # 2 ranks, then 1
    result = _run(["-m", "minitransformer", "train", "--resume", "runs/one", "--max-iters", "6"], tmp_path)
    assert result.returncode == 0, result.stdout  # 1 rank, then 2
    assert _max_difference(load_run(one)[0].state_dict(), load_run(two)[0].state_dict()) < 1e-6


def test_sharded_optimizer_state_trains_the_unsharded_parameters(tmp_path):
    """ZeRO stage 1 on 2 ranks: each rank keeps Adam's moments for about half the parameters,
    yet ends with the parameters of one unsharded process, and the gathered state is the
    unsharded optimizer's (float64, to rounding)."""
    result = _run([str(WORKER), "zero", str(tmp_path)], tmp_path)
    assert result.returncode == 0, result.stdout
    rank0, rank1 = (dict(np.load(tmp_path / f"zero-rank{r}.npz")) for r in (0, 1))
    parameters, optimizer = train_tiny(np.float64, 1)
    expected = {**parameters, **{f"optimizer/{i}/{name}": value for i, entry in optimizer.state_dict()["state"].items()
                                 for name, value in entry.items()}}
    shares = [int(rank.pop("state_bytes")) for rank in (rank0, rank1)]
    assert _max_difference(rank0, rank1) == 0.0
    assert _max_difference(rank0, expected) < 1e-12
    unsharded = sum(value.nbytes for entry in optimizer.state.values() for value in entry.values()
                    if hasattr(value, "nbytes"))
    assert sum(shares) == unsharded and max(shares) < 0.7 * unsharded, (shares, unsharded)


def test_a_failing_rank_stops_every_rank_with_one_line(tmp_path):
    started = time.perf_counter()
    result = _run([str(WORKER), "fail"], tmp_path, timeout=60)
    assert result.returncode != 0
    assert result.stdout.strip() == "error: rank 1 failed on purpose", result.stdout  # and nothing else
    assert time.perf_counter() - started < 30


def test_a_rank_that_never_answers_times_out_instead_of_hanging(tmp_path):
    started = time.perf_counter()
    result = _run([str(WORKER), "timeout"], tmp_path, timeout=60)
    assert result.returncode != 0
    assert "rank 0 of 2: the " in result.stdout and "waited 2 s for the other ranks" in result.stdout, result.stdout
    assert time.perf_counter() - started < 30  # rank 1 sleeps 60 s: the launcher stopped it


def test_killing_a_rank_mid_run_ends_the_job_within_seconds(tmp_path):
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    process = _launch(["-m", "minitransformer", "train", "--data", "corpus.txt", "--out-dir", "runs", "--name",
                       "killed", *TINY_RUN, "--max-iters", "100000", "--eval-interval", "100000"], tmp_path)
    try:
        log = tmp_path / "runs" / "killed" / "log.jsonl"
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text().count('"kind": "step"') >= 2):
            assert process.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        os.kill(_rank_pid(1, "killed"), signal.SIGKILL)
        killed_at = time.monotonic()
        output, _ = process.communicate(timeout=30)
        assert time.monotonic() - killed_at < 15
        assert process.returncode != 0
        assert "killed" in output.lower() or "terminat" in output.lower(), output
    finally:
        if process.poll() is None:
            process.kill()


def test_ctrl_c_stops_every_rank_at_the_same_step_with_a_checkpoint(tmp_path):
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    process = _launch(["-m", "minitransformer", "train", "--data", "corpus.txt", "--out-dir", "runs", "--name",
                       "stopped", *TINY_RUN, "--max-iters", "100000", "--eval-interval", "100000"], tmp_path)
    try:
        log = tmp_path / "runs" / "stopped" / "log.jsonl"
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text().count('"kind": "step"') >= 2):
            assert process.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)  # mpiexec passes it to every rank
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert output.count("stopped at iteration") == 1, output
    stopped_at = int(output.split("stopped at iteration ")[1].split(":")[0])
    saved = checkpoint.read_config(tmp_path / "runs" / "stopped" / "checkpoint")["extra"]
    steps = [line for line in log.read_text().splitlines() if '"kind": "step"' in line]
    assert saved["iter_num"] == stopped_at and f'"iter": {stopped_at},' in steps[-1]


def _rank_pid(rank: int, marker: str) -> int:
    """The process id of one rank of the run whose command line holds ``marker``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in command and f"PMI_RANK={rank}".encode() in environment:
            return int(entry.name)
    raise AssertionError(f"no process of rank {rank} found")
