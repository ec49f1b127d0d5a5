"""Ray Tune search: a real 2-trial run on the tiny dataset, a failing trial, clean shutdown."""
import os
import re
import shutil
import tempfile
import time

import psutil
import pytest
import yaml

try:
    import ray
except ImportError:  # the tune extra is not installed
    ray = None

#: Tests that start Ray (a local cluster or a real search): the slow tier, and only with Ray Tune.
needs_ray = pytest.mark.skipif(ray is None, reason='needs Ray Tune: pip install "ray[tune]>=2.41"')

from recbole_basrec.tune.search import FAILED, FINISHED, STOPPED, run_search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SASREC_SPACE = os.path.join(ROOT, "properties", "search", "SASRec.hyper")


def _our_ray_processes():
    """Live (non-zombie) Ray processes started by this test process."""
    alive = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            text = p.name() + " " + " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if any(key in text for key in ("raylet", "gcs_server", "ray::", "ray/_private", "ray/dashboard")):
            alive.append(text[:100])
    return alive


def _cluster_processes(port, temp_dir):
    """Processes of the Ray cluster started on `port` with `temp_dir`, with their descendants.

    Its processes name the temp dir or the port on their command line; its agents and workers
    rename themselves, but are their descendants.
    """
    found = {}
    for p in psutil.process_iter(["cmdline"]):
        try:
            text = " ".join(p.info["cmdline"] or [])
            if temp_dir in text or re.search(rf"[:=]{port}\b", text):
                found.update({c.pid: c for c in [p, *p.children(recursive=True)]})
        except psutil.Error:
            pass
    found.pop(os.getpid(), None)
    return list(found.values())


def _stop_cluster(port, temp_dir):
    """Stop that cluster and only it: `ray stop` would also kill any other Ray cluster on this
    machine (a second test run, the user's own)."""
    procs = _cluster_processes(port, temp_dir)
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    for p in psutil.wait_procs(procs, timeout=15)[1]:
        try:
            p.kill()
        except psutil.Error:
            pass
    return procs


def assert_ray_down():
    assert not ray.is_initialized()
    deadline = time.time() + 15  # workers exit asynchronously after ray.shutdown()
    while _our_ray_processes() and time.time() < deadline:
        time.sleep(0.5)
    assert _our_ray_processes() == []


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1"):
        run_search("SASRec", "tiny", SASREC_SPACE, num_samples=0)
    with pytest.raises(ValueError, match="max_concurrent"):
        run_search("SASRec", "tiny", SASREC_SPACE, max_concurrent=0)
    with pytest.raises(FileNotFoundError, match=r"Search space file .*missing.hyper.* not found; .*\(FMLPRec, GRU4Rec, "
                                                 r"SASRec\), e.g. --search=SASRec"):
        run_search("SASRec", "tiny", str(tmp_path / "missing.hyper"))
    with pytest.raises(FileNotFoundError, match="Config file .*nope.yaml.* not found"):
        run_search("SASRec", "tiny", SASREC_SPACE, config_file_list=[str(tmp_path / "nope.yaml")])
    typo = tmp_path / "typo.hyper"
    typo.write_text("n_pair choice [1, 2]\n")
    with pytest.raises(ValueError, match="tunes unknown key 'n_pair' for BASRecSASRec; did you mean n_pairs?"):
        run_search("SASRec", "tiny", str(typo), config_dict={"checkpoint_dir": str(tmp_path)})
    with pytest.raises(ValueError, match="unknown key 'lr'"):
        run_search("SASRec", "tiny", SASREC_SPACE, config_dict={"lr": 0.1, "checkpoint_dir": str(tmp_path)})
    methods = tmp_path / "methods.hyper"
    methods.write_text('augmentation grid ["basrec", "cmr", "mixup"]\n')
    with pytest.raises(ValueError, match=r"methods.hyper': augmentation must be one of basrec, none, .*got 'mixup'"):
        run_search("SASRec", "tiny", str(methods), config_dict={"checkpoint_dir": str(tmp_path)})
    assert ray is None or not ray.is_initialized()


@pytest.mark.slow
@needs_ray
def test_real_search_two_trials(tiny_config_dict, tmp_path, monkeypatch):
    """Two sampled configurations of BASRec-SASRec, one epoch each, through Ray Tune."""
    monkeypatch.chdir(tmp_path)  # Ray's trial folders and the default output go under here
    config = dict(tiny_config_dict, epochs=1)
    out = run_search("SASRec", "tiny", SASREC_SPACE, config_dict=config, num_samples=2)

    trials = out["trials"]
    assert len(trials) == 2
    # ASHA may end the weaker trial after its first epoch (STOPPED); nothing fails.
    assert all(t["status"] in (FINISHED, STOPPED) for t in trials), trials
    best = next(t for t in trials if t["params"] == out["best_params"])
    assert best["status"] == FINISHED
    assert best["metrics"]["test/ndcg@10"] > 0 and "test/hit@10" in best["metrics"]
    assert out["best_valid_score"] == best["best_valid_score"]
    assert out["best_valid_score"] == max(t["best_valid_score"] for t in trials)
    for t in trials:
        assert set(t["params"]) == {
            "beta", "rate_min", "rate_max", "n_pairs", "n_whole_level",
            "hidden_dropout_prob", "attn_dropout_prob", "learning_rate",
        }

    # The YAML file: default place, plain types, config_dict plus the best sampled values.
    assert out["output_file"] == str(tmp_path / "saved" / "best-SASRec-tiny.yaml")
    with open(out["output_file"]) as f:
        saved = yaml.safe_load(f)
    assert saved == out["best_config"]
    assert saved["epochs"] == 1 and saved["data_path"] == tiny_config_dict["data_path"]
    for key, value in out["best_params"].items():
        assert saved[key] == pytest.approx(value)
        assert type(saved[key]) in (int, float)
    assert_ray_down()


@pytest.mark.slow
@needs_ray
def test_failing_trial_does_not_stop_search(tiny_config_dict, tmp_path):
    """One trial raises: it is reported as FAILED and the other one still wins."""
    space = tmp_path / "space.hyper"
    space.write_text("beta grid [0.2, 0.5]\n")

    def fake_run(model, dataset, config_file_list=None, config_dict=None, saved=True, callback_fn=None):
        # nested, so Ray pickles it by value into the workers
        if config_dict["beta"] == 0.2:
            raise RuntimeError("broken trial beta=0.2")
        assert saved is True and os.path.isabs(config_dict["data_path"])
        callback_fn(0, 0.1)
        callback_fn(1, 0.3)
        return {
            "best_valid_score": 0.3,
            "best_valid_result": {"ndcg@10": 0.3},
            "test_result": {"ndcg@10": 0.25, "hit@10": 0.5},
        }

    output = tmp_path / "out" / "best.yaml"
    out = run_search("SASRec", "tiny", str(space), config_dict=tiny_config_dict, num_samples=1,
                     max_concurrent=2, output_file=str(output), run_fn=fake_run)

    by_beta = {t["params"]["beta"]: t for t in out["trials"]}
    assert set(by_beta) == {0.2, 0.5}
    assert by_beta[0.2]["status"] == FAILED
    assert "broken trial beta=0.2" in by_beta[0.2]["error"]
    assert by_beta[0.5]["status"] == FINISHED
    assert by_beta[0.5]["metrics"] == {"valid/ndcg@10": 0.3, "test/ndcg@10": 0.25, "test/hit@10": 0.5}
    assert out["best_valid_score"] == 0.3 and out["best_params"] == {"beta": 0.5}
    assert yaml.safe_load(output.read_text())["beta"] == 0.5
    assert_ray_down()


@pytest.mark.slow
@needs_ray
def test_ray_shut_down_on_ctrl_c(tiny_config_dict, monkeypatch):
    """A KeyboardInterrupt during the search still shuts the local Ray down."""
    from ray import tune

    def interrupted(self):
        assert ray.is_initialized()
        raise KeyboardInterrupt

    monkeypatch.setattr(tune.Tuner, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_search("SASRec", "tiny", SASREC_SPACE, config_dict=tiny_config_dict, num_samples=1)
    assert_ray_down()


def test_search_without_ray_says_how_to_install_it():
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys\n"
         "sys.modules['ray'] = None  # as if Ray were not installed\n"
         "sys.argv = ['run_recbole_basrec.py']\n"
         "from run_recbole_basrec import cli\n"
         "sys.exit(cli(['--search=properties/search/SASRec.hyper']))\n"],
        capture_output=True, text=True, timeout=120, cwd=root, env={**os.environ, "PYTHONPATH": root},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == 'error: --search needs Ray Tune: pip install "ray[tune]>=2.41"'


@pytest.mark.slow
@needs_ray
def test_search_joins_a_running_cluster_and_leaves_it_healthy(tiny_config_dict, tmp_path, monkeypatch):
    """`ray start --head` on 127.0.0.1, a one-trial search through --ray_address, cluster still up;
    then that cluster alone is stopped."""
    import socket
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    # Both sides in the same auth mode, however earlier tests or ~/.ray/auth_token left it (see _join_cluster).
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    ray._raylet.Config.initialize("")  # re-read the mode, as Ray does when it turns token auth on itself
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    address = f"127.0.0.1:{port}"
    temp_dir = tempfile.mkdtemp(prefix="rb-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)  # short: socket paths
    subprocess.run([ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    f"--temp-dir={temp_dir}", "--include-dashboard=false", "--disable-usage-stats"],
                   check=True, capture_output=True, timeout=180)
    try:
        out = run_search("SASRec", "tiny", SASREC_SPACE, config_dict=dict(tiny_config_dict, epochs=1),
                         num_samples=1, ray_address=address)
        assert [t["status"] for t in out["trials"]] == [FINISHED]
        assert not ray.is_initialized()  # the driver left, the cluster stays
        status = subprocess.run([ray_cli, "status", f"--address={address}"], capture_output=True, text=True,
                                timeout=120)
        assert status.returncode == 0, status.stderr
    finally:
        stopped = _stop_cluster(port, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert stopped and _cluster_processes(port, temp_dir) == []


def test_joining_a_cluster_fails_with_one_line_errors():
    """ray.init's ConnectionError becomes one line naming the fix; a token-auth refusal (Ray 2.60 raises
    ConnectionError from a RuntimeError quoting the AuthenticationError) says how to authenticate."""
    from recbole_basrec.tune.search import _join_cluster

    class FakeRay:
        def __init__(self, cause):
            self.cause = cause

        def init(self, **kwargs):
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from self.cause

    gcs_refused = RuntimeError("Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n"
                               "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken")
    with pytest.raises(ValueError, match=r"^the Ray cluster at 10\.0\.0\.1:6379 requires token authentication: "
                                         r"set RAY_AUTH_MODE=token .*run again\.$"):
        _join_cluster(FakeRay(gcs_refused), "10.0.0.1:6379", {})
    with pytest.raises(ValueError, match=r"^cannot join the Ray cluster at 10\.0\.0\.1:6379 \(Failed to connect.*\); "
                                         r"check --ray_address"):
        _join_cluster(FakeRay(RuntimeError("Failed to connect to GCS")), "10.0.0.1:6379", {})


def test_an_address_nothing_answers_at_is_refused_before_ray_is_contacted(monkeypatch):
    """Ray retries an unreachable HOST:PORT for minutes; a TCP probe names it in one line instead.
    'auto', 'local' and ray:// addresses are left to Ray as before."""
    import socket

    from recbole_basrec.tune import search

    with socket.socket() as closed:  # a port that was free a moment ago: connection refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(ValueError, match=rf"^--ray_address=127\.0\.0\.1:{port}: nothing answers at "
                                         rf"127\.0\.0\.1:{port} \(.*\); start the cluster \(`ray start --head "
                                         rf"--port={port}` on its head node\) or check the address\.$"):
        search.check_ray_address(f"127.0.0.1:{port}")
    with pytest.raises(ValueError, match=r"^--ray_address=notahost\.invalid:6379: host 'notahost\.invalid' cannot "
                                         r"be resolved \(.*\); check the address of the cluster's head node\.$"):
        search.check_ray_address("notahost.invalid:6379")  # .invalid never resolves (RFC 6761)
    with pytest.raises(ValueError, match=r"^--ray_address=notahost is not HOST:PORT"):
        search.check_ray_address("notahost")
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        search.check_ray_address("127.0.0.1:%d" % listening.getsockname()[1])  # answers: accepted
    # run_search probes before it builds anything, so a dead address stops at once.
    monkeypatch.setattr(search, "_checked_output", lambda *a: pytest.fail("went past the probe"))
    with pytest.raises(ValueError, match="cannot be resolved"):
        run_search("SASRec", "tiny", SASREC_SPACE, num_samples=1, ray_address="notahost.invalid:6379")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("probed"))
    for address in ("auto", "local", "ray://head.example:10001"):
        search.check_ray_address(address)


def test_a_shipped_space_is_found_by_name_from_any_folder(tmp_path, monkeypatch):
    from recbole_basrec.config.files import properties_dir
    from recbole_basrec.tune.search import resolve_search_file

    monkeypatch.chdir(tmp_path)
    assert resolve_search_file("SASRec") == os.path.join(properties_dir(), "search", "SASRec.hyper")
    (tmp_path / "mine.hyper").write_text("beta choice [0.3]\n")
    assert resolve_search_file("mine.hyper") == str(tmp_path / "mine.hyper")  # a path still wins
