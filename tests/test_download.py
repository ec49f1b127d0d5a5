"""A dataset known to RecBole but missing locally is downloaded as stock RecBole does (here from
a local HTTP server on 127.0.0.1 standing in for RecBole's URL), then trained on."""
import functools
import http.server
import os
import sys
import threading
import zipfile

import pytest
from recbole.data.dataset import dataset as recbole_dataset

import recbole_basrec  # noqa: F401
from recbole_basrec.data.dataset import recbole_downloads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from run_recbole_basrec import cli  # noqa: E402

SMALL = {"epochs": 1, "hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 1,
         "MAX_ITEM_LIST_LENGTH": 10, "state": "ERROR", "seed": 0}


@pytest.fixture
def ml1m_server(tmp_path, monkeypatch):
    """Serves an ml-1m-shaped zip (RecBole's layout: ml-1m.inter at its root) on 127.0.0.1."""
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(1, 41):
        lines += [f"{user}\t{(user + t) % 30 + 1}\t4\t{978300000 + t}" for t in range(10)]
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "ml-1m.zip", "w") as z:
        z.writestr("ml-1m.inter", "\n".join(lines) + "\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ml-1m.zip"
    real = recbole_dataset.Dataset._get_download_url

    def local_url(self, url_file, allow_none=False):
        assert real(self, url_file, allow_none)  # RecBole's own table knows the dataset
        return url

    monkeypatch.setattr(recbole_dataset.Dataset, "_get_download_url", local_url)
    monkeypatch.setattr(sys, "argv", ["run_recbole_basrec.py"])
    yield tmp_path
    server.shutdown()


def test_ml1m_is_known_to_recbole():
    assert recbole_downloads("ml-1m") and not recbole_downloads("nowhere")


def test_runner_downloads_then_trains(ml1m_server):
    data = ml1m_server / "data"
    args = [f"--{k}={v}" for k, v in SMALL.items()]
    assert cli(["--model=SASRec", "--dataset=ml-1m", f"--data_path={data}",
                f"--checkpoint_dir={ml1m_server / 'saved'}", *args]) == 0
    assert (data / "ml-1m" / "ml-1m.inter").is_file()  # RecBole's folder layout


def test_stock_run_recbole_with_our_model_downloads_then_trains(ml1m_server):
    from recbole.quick_start import run_recbole

    data = ml1m_server / "data"
    result = run_recbole(model="BASRecSASRec", dataset="ml-1m",
                         config_dict={**SMALL, "data_path": str(data), "checkpoint_dir": str(ml1m_server / "saved")})
    assert (data / "ml-1m" / "ml-1m.inter").is_file()
    assert set(result["test_result"]) == {f"{m}@{k}" for m in ("hit", "ndcg") for k in (5, 10, 20)}  # our defaults
    assert result["test_result"]["ndcg@10"] > 0
