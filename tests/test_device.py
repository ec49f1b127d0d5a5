"""GPU readiness checked on CPU: every tensor of a training step and of a TTA evaluation stays on
the model's device, the step reads back to the host only where listed, and mixed precision trains."""
import collections

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from recbole_basrec.trainer.tta import augment_at_test_time

CASES = [("SASRec", "prefix", "CE"), ("SASRec", "sequence", "BPR"), ("GRU4Rec", "sequence", "BCE"),
         ("NARM", "prefix", "BPR")]


class OffDevice(TorchDispatchMode):
    """Records every operator that reads or makes a tensor off ``device``."""

    def __init__(self, device):
        super().__init__()
        self.device, self.found = torch.device(device), []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten((args, kwargs, out))[0]:
            if isinstance(t, torch.Tensor) and t.device != self.device:
                self.found.append(f"{func} on {t.device}")
        return out


class off_model_device:
    """Within the block a tensor made without ``device=`` lands on ``meta`` (torch's default
    device), so it differs from the model's device (CPU here, CUDA on a GPU) and is recorded."""

    def __enter__(self):
        self.default, self.mode = torch.device("meta"), OffDevice("cpu")
        self.default.__enter__()
        self.mode.__enter__()
        return self.mode

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)
        self.default.__exit__(*exc)


@pytest.mark.parametrize("method", ["ran", "ran_s", "slide_window", "cmr", "cmrsi", "cl4srec"])
@pytest.mark.parametrize("backbone, mode, loss", [("SASRec", "sequence", "BCE"), ("NARM", "prefix", "CE")])
def test_a_comparison_methods_step_makes_no_tensor_off_the_models_device(tiny_setup, backbone, mode, loss, method):
    _assert_step_stays_on_device(*tiny_setup(backbone, train_mode=mode, loss_type=loss, augmentation=method))


def _assert_step_stays_on_device(config, dataset, model, trainer, loaders):
    batch = next(iter(loaders[0]))
    with off_model_device() as seen:
        losses = model.calculate_loss(batch)
        sum(losses).backward()
    assert seen.found == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_the_check_sees_a_tensor_made_without_device(tiny_setup):
    with off_model_device() as seen:
        torch.arange(3) + 1
    assert seen.found and "meta" in seen.found[0]


@pytest.mark.parametrize("backbone, mode, loss", CASES)
def test_a_basrec_step_makes_no_tensor_off_the_models_device(tiny_setup, backbone, mode, loss):
    _assert_step_stays_on_device(*tiny_setup(backbone, train_mode=mode, loss_type=loss))


@pytest.mark.parametrize("tta", ["tnoise", "tmask"])
@pytest.mark.parametrize("backbone", ["SASRec", "NARM"])
def test_a_tta_evaluation_batch_makes_no_tensor_off_the_models_device(tiny_setup, backbone, tta):
    overrides = {"tta_output_views": 0} if backbone == "NARM" and tta == "tnoise" else {}
    config, _, model, trainer, (_, _, test) = tiny_setup(backbone, tta=tta, tta_views=3, **overrides)
    batch = next(iter(test))
    trainer.tot_item_num = test._dataset.item_num
    trainer._history = trainer._eval_history(test._dataset)  # the paper's history masking, on the device
    model.eval()
    with torch.no_grad(), augment_at_test_time(model, config), off_model_device() as seen:
        _, scores, _, _ = trainer._full_sort_batch_eval(batch)
    assert seen.found == []
    assert scores.shape == (len(batch[0]), test._dataset.item_num) and torch.isinf(scores).any()


class HostReads(TorchFunctionMode):
    """Counts the calls that copy tensor values to the host (a GPU sync each)."""

    NAMES = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "cpu", "numpy", "nonzero", "equal"}

    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.NAMES:
            self.calls[name] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("mode, reads", [
    ("prefix", {"tolist": 1}),  # the length groups of the SSA views' encoding (sizes and widths)
    ("sequence", {"tolist": 1, "nonzero": 1}),  # + the target slots
])
def test_host_reads_of_a_sasrec_step_are_the_listed_ones(tiny_setup, mode, reads):
    _, _, model, _, (train, _, _) = tiny_setup("SASRec", train_mode=mode, loss_type="CE")
    batch = next(iter(train))
    with HostReads() as counted:
        sum(model.calculate_loss(batch)).backward()
    assert dict(counted.calls) == reads


@pytest.mark.parametrize("backbone, mode, loss", CASES)
def test_enable_amp_trains_basrec(tiny_setup, backbone, mode, loss):
    """RecBole's enable_amp runs the step under torch.autocast (bfloat16 on CPU, float16 on CUDA)."""
    _, _, model, _, (train, _, _) = tiny_setup(backbone, train_mode=mode, loss_type=loss)
    batch = next(iter(train))
    terms = []
    for amp in (False, True):
        torch.manual_seed(1)
        with torch.autocast("cpu", enabled=amp):
            terms.append(torch.stack(model.calculate_loss(batch)).detach())
    assert terms[1].dtype == torch.float32 and torch.isfinite(terms[1]).all()
    assert not torch.equal(terms[0], terms[1])  # autocast did change the arithmetic
    np.testing.assert_allclose(terms[1].numpy(), terms[0].numpy(), rtol=2e-2)


def test_gpu_check_parses_and_refuses_cleanly_without_cuda():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert subprocess.run(["bash", "-n", os.path.join(root, "benchmarks", "gpu_check.sh")]).returncode == 0
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the whole check: bash benchmarks/gpu_check.sh")
    proc = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "gpu_check.py")],
                          capture_output=True, text=True, timeout=120, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("gpu_check: SKIPPED: no CUDA device") and proc.stderr == ""
