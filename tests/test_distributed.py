"""Training on several processes: two gloo processes on CPU, on the tiny dataset."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import recbole_basrec  # noqa: F401
from recbole_basrec import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"epochs": 1, "stage1_epochs": 0, "train_batch_size": 32, "eval_batch_size": 64, "MAX_ITEM_LIST_LENGTH": 10,
        "hidden_size": 16, "inner_size": 32, "embedding_size": 16, "n_layers": 1, "n_heads": 1, "use_gpu": False,
        "show_progress": False, "state": "ERROR", "seed": 0, "strict_keys": False}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- one process, no spawn
@pytest.mark.parametrize("kwargs, message", [
    ({"nproc": 0}, "--nproc must be an integer >= 1, got 0."),
    ({"nproc": 2, "world_size": 3, "offset": 2}, "--offset (2) + --nproc (2) is more than --world_size (3)"),
    ({"nproc": 2, "port": "http"}, "--port must be a TCP port number, got 'http'."),
    ({"nproc": 2, "environ": {"LOCAL_RANK": "0", "WORLD_SIZE": "2"}}, "--nproc cannot be combined with torchrun"),
])
def test_bad_launch_options_are_one_line(kwargs, message):
    with pytest.raises(ValueError) as error:
        distributed.launch_settings(**kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_launch_settings_use_recboles_keys_and_torchruns_environment():
    assert distributed.launch_settings(environ={}) is None
    assert distributed.launch_settings(nproc=1, environ={}) is None
    assert distributed.launch_settings(nproc=2, world_size=4, ip="10.0.0.1", port=29500, offset=2, environ={}) == {
        "nproc": 2, "world_size": 4, "ip": "10.0.0.1", "port": "29500", "offset": 2, "torchrun": False}
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "node0",
           "MASTER_PORT": "29400"}
    assert distributed.launch_settings(environ=env) == {
        "local_rank": 1, "world_size": 4, "nproc": 2, "offset": 2, "ip": "node0", "port": "29400", "torchrun": True}


def test_a_ray_tune_trial_is_one_process():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "run_recbole_basrec.py"), "--search=x.hyper",
                             "--nproc=2"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: a Ray Tune trial trains in one process (one GPU): drop --nproc/--world_size "
                                     "or torchrun, and run trials side by side with --max_concurrent.")


def test_launch_keys_in_a_config_are_not_silently_ignored(tiny_setup):
    with pytest.raises(ValueError, match=r"^nproc=2 in the config starts no processes: pass --nproc=2 to "
                                         r"run_recbole_basrec\.py \(or nproc= to recbole\.quick_start\.run\) instead\.$"):
        tiny_setup("SASRec", nproc=2)


def test_global_batch_must_split_evenly(tiny_config_dict):
    from recbole_basrec.quick_start.quick_start import build_config

    config = build_config("SASRec", "tiny", config_dict={**tiny_config_dict, "train_batch_size": 33})
    with pytest.raises(ValueError, match=r"train_batch_size \(33\) is the global batch, split over 2 processes: "
                                         r"make it a multiple of 2 \(e\.g\. 32\)\."):
        distributed.check_launch(config, {"world_size": 2, "nproc": 2})


def test_recbole_config_joins_a_gloo_group_on_cpu_and_ddp_wraps_without_device_ids(tiny_config_dict):
    """Our Config._init_device and compat's DDP wrap: RecBole 1.2.1 alone asserts gpu_id covers nproc,
    joins with NCCL and wraps with device_ids=[local_rank]."""
    import torch.distributed as dist
    from recbole.data import data_preparation
    from recbole_basrec.utils import create_dataset, get_model, get_trainer

    from recbole_basrec.quick_start.quick_start import build_config

    keys = {"local_rank": 0, "nproc": 1, "world_size": 1, "ip": "127.0.0.1", "port": free_port(), "offset": 0,
            "gpu_id": "0"}
    config = build_config("SASRec", "tiny", config_dict={**tiny_config_dict, **keys})
    try:
        assert dist.is_initialized() and dist.get_backend() == "gloo"
        assert config["single_spec"] is False and config["device"] == torch.device("cpu")
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
        model = get_model(config["model"])(config, train._dataset)
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        assert trainer.distributed_model.device_ids is None
        trainer.fit(train, valid, saved=True)
        assert set(trainer.evaluate(test)) == {f"{m}@{k}" for m in ("hit", "ndcg") for k in (5, 10, 20)}
    finally:
        dist.destroy_process_group()


def test_an_unresolvable_address_and_a_busy_port_are_one_line_before_any_process_starts():
    settings = {"nproc": 2, "world_size": 2, "offset": 0, "torchrun": False}
    with pytest.raises(ValueError, match=r"^--ip=999.1.1.1 is not an address or a host name this machine can resolve"):
        distributed.check_address({**settings, "ip": "999.1.1.1", "port": "5678"})
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=rf"^port {port} is in use on this machine, which runs rank 0"):
            distributed.check_address({**settings, "ip": "localhost", "port": str(port)})
        distributed.check_address({**settings, "ip": "localhost", "port": str(port), "offset": 2})  # not rank 0's machine


def test_waiting_for_ranks_says_how_many_joined_and_gives_up_after_the_timeout():
    lines = []
    started = time.monotonic()
    with pytest.raises(ValueError) as stop:
        distributed.join_group("gloo", "127.0.0.1", free_port(), 0, 3, 2, lines.append, every=0.5)
    assert 2 <= time.monotonic() - started < 30
    assert str(stop.value).startswith("waited 2 s at 127.0.0.1:") and "for 3 processes and 1 joined" in str(stop.value)
    assert lines and all(line.startswith("rank 0: waiting at 127.0.0.1:") and "1 joined" in line for line in lines)
    assert not torch.distributed.is_initialized()


def test_stock_run_spawns_our_module_so_children_know_our_models():
    from recbole.quick_start import quick_start

    from recbole_basrec import compat

    assert quick_start.run_recboles is compat.run_recboles  # what run(..., nproc=N) hands to mp.spawn
    assert compat.run_recboles.__module__ == "recbole_basrec.compat"


def test_compiled_models_are_refused_in_one_line(tiny_setup):
    from recbole_basrec.trainer import BASRecTrainer

    config, _, model, _, _ = tiny_setup("SASRec")
    with pytest.raises(ValueError, match=r"^torch\.compile\(model\) has no effect here: .*; pass the model itself\.$"):
        BASRecTrainer(config, torch.compile(model))


# ---------------------------------------------------------------------------- two gloo processes
def _primitives(rank, port, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    record = {}
    # 5 evaluation rows over 2 ranks as RecBole's loaders split them: rank 1 gets row 0 again as padding
    sampler = torch.utils.data.distributed.DistributedSampler(list(range(5)), num_replicas=2, rank=rank, shuffle=False)
    mine = torch.tensor([[10 * i, i] for i in sampler])
    record["gathered"] = distributed.gather_rows(mine, 5)
    record["loaded"] = distributed.load_on_rank0(lambda: {"w": torch.full((2,), 7.0 + rank)})

    def bad():
        raise ValueError("Checkpoint 'x.pth' does not exist.")

    try:
        distributed.load_on_rank0(bad)
    except ValueError as error:
        record["error"] = str(error)
    torch.manual_seed(100 + rank)
    states = distributed.gather_rng_states()
    expected = torch.rand(3)
    torch.manual_seed(0)
    record["restored"] = distributed.restore_rng_state(states, seed=0, epoch=0)
    record["same_draws"] = torch.equal(torch.rand(3), expected)
    torch.save(record, os.path.join(out, f"p{rank}.pt"))
    dist.destroy_process_group()


def test_gather_broadcast_and_random_states_across_two_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_primitives, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        record = torch.load(tmp_path / f"p{rank}.pt", weights_only=True)
        assert record["gathered"].tolist() == [[0, 0], [10, 1], [20, 2], [30, 3], [40, 4]]
        assert torch.equal(record["loaded"]["w"], torch.full((2,), 7.0))  # rank 0's, on both
        assert record["error"] == "Checkpoint 'x.pth' does not exist."  # raised on both, nobody waits
        assert record["restored"] and record["same_draws"]  # each rank continues its own stream


def _scenario(local_rank, port, out, backbone, dataset_name, overrides):
    """One rank: train with recorders on the optimizer, then evaluate the best weights."""
    import torch.distributed as dist
    from recbole.data import data_preparation
    from recbole_basrec.utils import create_dataset
    from recbole.utils import init_seed
    from recbole_basrec.utils import get_model, get_trainer

    import recbole_basrec  # noqa: F401
    from recbole_basrec.quick_start.quick_start import build_config

    keys = {"local_rank": local_rank, "nproc": 2, "world_size": 2, "ip": "127.0.0.1", "port": port, "offset": 0}
    config = build_config(backbone, dataset_name, config_dict={**overrides, **keys})
    init_seed(config["seed"], True)
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    init_seed(config["seed"] + local_rank, True)
    model = get_model(config["model"])(config, train._dataset)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    record = {"rng": torch.get_rng_state(), "initial": {k: v.clone() for k, v in model.state_dict().items()},
              "params": [], "grads": [], "batches": []}

    def flat(tensors):
        return torch.cat([t.detach().flatten().clone() for t in tensors])

    build = trainer._build_optimizer

    def recorded(**kwargs):
        optimizer = build(**kwargs)
        optimizer.register_step_pre_hook(lambda *_: record["grads"].append(flat(p.grad for p in model.parameters())))
        optimizer.register_step_post_hook(lambda *_: record["params"].append(flat(model.parameters())))
        return optimizer

    trainer._build_optimizer = recorded
    trainer.optimizer = trainer._build_optimizer()
    loss = model.calculate_loss

    def keep_batch(interaction):
        if not record["batches"]:
            record["at_first_step"] = flat(model.parameters())
        record["batches"].append({k: v.clone() for k, v in interaction.interaction.items()})
        return loss(interaction)

    model.calculate_loss = keep_batch
    trainer.fit(train, valid, saved=True)
    del model.calculate_loss
    record["valid"] = {k: float(v) for k, v in trainer.evaluate(valid, load_best_model=True).items()}
    record["test"] = {k: float(v) for k, v in trainer.evaluate(test, load_best_model=True).items()}
    record["best"] = {k: v.clone() for k, v in model.state_dict().items()}
    record["stages"] = trainer.stage
    torch.save(record, os.path.join(out, f"rank{local_rank}.pt"))
    dist.destroy_process_group()


def _run_two_ranks(tmp_path, data_path, backbone, dataset="tiny", **overrides):
    import torch.multiprocessing as mp

    settings = {**TINY, "data_path": data_path, "checkpoint_dir": str(tmp_path / "saved"), **overrides}
    mp.spawn(_scenario, args=(free_port(), str(tmp_path), backbone, dataset, settings), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    return settings, ranks


def _single_process(backbone, settings, dataset="tiny"):
    from recbole.data import data_preparation
    from recbole_basrec.utils import create_dataset
    from recbole.utils import init_seed
    from recbole_basrec.utils import get_model, get_trainer

    from recbole_basrec.quick_start.quick_start import build_config

    config = build_config(backbone, dataset, config_dict=settings)
    init_seed(0, True)
    splits = data_preparation(config, create_dataset(config))
    model = get_model(config["model"])(config, splits[0]._dataset)
    return model, get_trainer(config["MODEL_TYPE"], config["model"])(config, model), splits


def _single_process_evaluation(backbone, settings, state_dict, dataset="tiny"):
    model, trainer, (_, valid, test) = _single_process(backbone, settings, dataset)
    model.load_state_dict(state_dict)
    valid, test = (trainer.evaluate(data, load_best_model=False) for data in (valid, test))
    return {k: float(v) for k, v in valid.items()}, {k: float(v) for k, v in test.items()}


def _check_ranks_agree(backbone, settings, ranks, dataset="tiny"):
    r0, r1 = ranks
    assert len(r0["params"]) == len(r1["params"]) > 1
    for step, (a, b) in enumerate(zip(r0["params"], r1["params"])):
        assert torch.equal(a, b), f"ranks differ after step {step}"
    # each rank's own random stream: seed + rank, so reproducible and different
    for rank, record in enumerate(ranks):
        torch.manual_seed(settings["seed"] + rank)
        assert torch.equal(record["rng"], torch.get_rng_state())
    assert not torch.equal(r0["rng"], r1["rng"])
    # the two ranks trained on different halves of each global batch
    first = [r["batches"][0]["item_id_list"] for r in ranks]
    assert first[0].size(0) == first[1].size(0) == settings["train_batch_size"] // 2
    assert not torch.equal(first[0], first[1])
    # gathered metrics are a single process's on the same weights, on every rank
    assert r0["valid"] == r1["valid"] and r0["test"] == r1["test"]
    valid, test = _single_process_evaluation(backbone, settings, r0["best"], dataset)
    assert r0["valid"] == valid and r0["test"] == test


@pytest.mark.slow
def test_two_ranks_stay_identical_and_evaluate_as_one_process(tmp_path):
    """Stage 1 then stage 2 on 2 gloo processes: identical parameters after every step, and the
    first step's averaged gradient is one process's gradient on the whole global batch, so the
    learning rate needs no scaling. 63 users: the sampler pads the last evaluation rows."""
    from helpers import write_tiny_dataset

    write_tiny_dataset(str(tmp_path / "data"), name="odd", n_users=63)
    # no dropout, and CE: BCE's sampled negatives would differ between the ranks and one process
    no_dropout = {"hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0, "loss_type": "CE"}
    settings, ranks = _run_two_ranks(tmp_path, str(tmp_path / "data"), "SASRec", "odd", stage1_epochs=1, **no_dropout)
    _check_ranks_agree("SASRec", settings, ranks, "odd")
    assert ranks[0]["stages"] == 2

    from recbole.data.interaction import Interaction

    model, _, _ = _single_process("SASRec", settings, "odd")
    model.load_state_dict(ranks[0]["initial"])  # DDP starts every rank from rank 0's weights
    model.augment = False  # stage 1's first step: the plain loss
    whole = Interaction({k: torch.cat([r["batches"][0][k] for r in ranks]) for k in ranks[0]["batches"][0]})
    model.calculate_loss(whole).backward()
    single = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert torch.allclose(ranks[0]["grads"][0], single, rtol=1e-5, atol=1e-7)
    assert torch.equal(ranks[0]["grads"][0], ranks[1]["grads"][0])


@pytest.mark.slow
@pytest.mark.parametrize("backbone, overrides", [
    ("SASRec", {"train_mode": "sequence"}),
    ("GRU4Rec", {"train_mode": "prefix"}),
    ("NARM", {"train_mode": "prefix"}),  # the generic path
])
def test_modes_and_adapters_under_two_ranks(tiny_data_path, tmp_path, backbone, overrides):
    settings, ranks = _run_two_ranks(tmp_path, tiny_data_path, backbone, epochs=2, **overrides)
    _check_ranks_agree(backbone, settings, ranks)


def _authors_gru4rec_checkpoint(tiny_setup, path):
    """Our GRU4Rec's weights written as the authors' code writes them (raw item ids as rows)."""
    _, _, model, _, _ = tiny_setup("GRU4Rec")
    state = model.state_dict()
    table = state.pop("item_embedding.weight")
    raw = torch.tensor([int(t) for t in model.item_tokens[1:]])
    authors = torch.zeros(int(raw.max()) + 2, table.size(1))
    authors[raw] = table[1:]
    torch.save({"item_embeddings.weight": authors, **state}, path)
    return state


@pytest.mark.slow
def test_authors_checkpoint_as_pretrained_path_under_two_ranks(tiny_setup, tiny_data_path, tmp_path):
    path = str(tmp_path / "authors-gru4rec.pt")
    _authors_gru4rec_checkpoint(tiny_setup, path)
    settings, ranks = _run_two_ranks(tmp_path, tiny_data_path, "GRU4Rec", pretrained_path=path, epochs=1)
    _check_ranks_agree("GRU4Rec", settings, ranks)
    # stage 2 started from the converted checkpoint on both ranks (rank 0 read it, then sent it)
    model, trainer, _ = _single_process("GRU4Rec", settings)
    trainer.load_weights(path)
    loaded = torch.cat([p.detach().flatten() for p in model.parameters()])
    initial = torch.cat([v.flatten() for k, v in ranks[0]["initial"].items() if k in dict(model.named_parameters())])
    assert not torch.equal(initial, loaded)  # not where the ranks' models were initialised
    assert torch.equal(ranks[0]["at_first_step"], loaded) and torch.equal(ranks[1]["at_first_step"], loaded)


# ---------------------------------------------------------------------------- the runner
def _runner(*args, env=None, **popen):
    command = [sys.executable, os.path.join(ROOT, "run_recbole_basrec.py"), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", **(env or {})}, **popen)


def _tiny_args(tiny_data_path, checkpoint_dir, *extra):
    single_stage = [] if any(arg.startswith("--stage1_epochs=") for arg in extra) else ["--stage1_epochs=0"]
    return ["--model=SASRec", "--dataset=tiny", f"--data_path={tiny_data_path}", f"--checkpoint_dir={checkpoint_dir}",
            "--hidden_size=16", "--inner_size=32", "--n_layers=1", "--n_heads=1", "--MAX_ITEM_LIST_LENGTH=10",
            "--train_batch_size=32", "--use_gpu=False", "--seed=0", "--state=ERROR", *single_stage, *extra]


def _test_line(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("test")]
    assert len(lines) == 1, stdout
    return lines[0]


@pytest.mark.slow
def test_runner_nproc_2_prints_the_launch_once_and_the_metrics_once(tiny_data_path, tmp_path):
    proc = _runner(*_tiny_args(tiny_data_path, tmp_path, "--epochs=2", "--nproc=2", f"--port={free_port()}"))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert out.splitlines()[0] == "training on 2 processes with the gloo backend"
    assert out.count("training on") == 1 and "ndcg@20" in _test_line(out)
    assert "Traceback" not in err


@pytest.mark.slow
def test_two_machines_need_no_shared_checkpoint_folder(tiny_data_path, tmp_path):
    """Two runner invocations as two machines (--world_size, --offset, --ip, --port), each with its
    own checkpoint folder: rank 0's machine writes and prints, the other only trains."""
    common = ["--epochs=2", "--nproc=1", "--world_size=2", "--ip=127.0.0.1", f"--port={free_port()}"]
    machines = [_runner(*_tiny_args(tiny_data_path, tmp_path / f"m{m}", *common, f"--offset={m}")) for m in (0, 1)]
    (out0, err0), (out1, err1) = (m.communicate(timeout=300) for m in machines)
    assert machines[0].returncode == 0 and machines[1].returncode == 0, err0[-2000:] + err1[-2000:]
    assert out0.splitlines()[0] == "training on 2 processes (1 on this machine, ranks 0..0) with the gloo backend"
    assert out1.strip() == "training on 2 processes (1 on this machine, ranks 1..1) with the gloo backend"
    assert "ndcg@20" in _test_line(out0)
    assert list((tmp_path / "m0").glob("*-last.pth")) and not list((tmp_path / "m1").glob("*.pth"))


_KILL_RANK_1 = """
import os, signal
from recbole_basrec import distributed
from recbole_basrec.trainer import BASRecTrainer
original = BASRecTrainer._save_last
def save_then_die(self, epoch):
    original(self, epoch)
    if epoch == {epoch} and distributed.rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception handler runs
BASRecTrainer._save_last = save_then_die
"""


@pytest.mark.slow
def test_sigkill_of_one_rank_stops_all_and_resumes_to_the_uninterrupted_result(tiny_data_path, tmp_path):
    args = ["--epochs=4", "--stage1_epochs=1", "--nproc=2"]
    whole = _runner(*_tiny_args(tiny_data_path, tmp_path / "whole", *args, f"--port={free_port()}"))
    out, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err[-3000:]
    # the spawned ranks run sitecustomize at start-up: rank 1 kills itself after epoch 2 was saved
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_KILL_RANK_1.format(epoch=2))
    killed = _runner(*_tiny_args(tiny_data_path, tmp_path / "killed", *args, f"--port={free_port()}"),
                     env={"PYTHONPATH": f"{hook}{os.pathsep}{ROOT}"})
    _, kill_err = killed.communicate(timeout=300)
    assert killed.returncode == 1, kill_err[-3000:]
    assert "Traceback" not in kill_err
    line = kill_err.strip().splitlines()[-1]
    assert line.startswith("error: process 1 of 2 ended by SIGKILL; every process was stopped; continue with --resume=")
    last = line.split("--resume=")[1].split(" and the same")[0]
    resumed = _runner(*_tiny_args(tiny_data_path, tmp_path / "killed", *args, f"--port={free_port()}",
                                  f"--resume={last}"))
    res_out, res_err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, res_err[-3000:]
    assert _test_line(res_out) == _test_line(out)


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_with_exit_130(tiny_data_path, tmp_path):
    proc = _runner(*_tiny_args(tiny_data_path, tmp_path, "--epochs=400", "--stopping_step=400", "--nproc=2",
                               f"--port={free_port()}"), start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("*-last.pth")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("interrupted: best checkpoint so far: ")
    assert "--resume=" in err and "Traceback" not in err
    deadline = time.monotonic() + 15  # multiprocessing's resource tracker leaves once the launcher has
    with pytest.raises(ProcessLookupError):  # no rank is left behind
        while time.monotonic() < deadline:
            os.killpg(proc.pid, 0)
            time.sleep(0.1)


@pytest.mark.slow
def test_torchrun_starts_the_ranks(tiny_data_path, tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    if not os.path.exists(torchrun):
        pytest.skip("torchrun is not installed beside this Python")
    command = [torchrun, "--standalone", "--nproc_per_node=2", os.path.join(ROOT, "run_recbole_basrec.py"),
               *_tiny_args(tiny_data_path, tmp_path, "--epochs=1")]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("training on 2 processes with the gloo backend") == 1
    assert "ndcg@20" in _test_line(proc.stdout)


@pytest.mark.slow
def test_stock_recbole_run_trains_our_model_on_two_processes(tiny_data_path, tmp_path):
    from recbole.quick_start import run

    config = {**TINY, "data_path": tiny_data_path, "checkpoint_dir": str(tmp_path)}
    result = run("BASRecSASRec", "tiny", config_dict=config, nproc=2, port=str(free_port()))
    assert set(result["test_result"]) == {f"{m}@{k}" for m in ("hit", "ndcg") for k in (5, 10, 20)}
