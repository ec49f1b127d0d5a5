"""One training step's losses and gradients stay what they were before the speed work.

``tests/data/step_reference.json`` holds, for fixed seeded batches of the tiny dataset with
dropout off, every loss term and checksums of every parameter's gradient (sum, norm, and the dot
product with a fixed random vector), computed with the code before the speed changes
(``python tests/test_step_equality.py --write`` rewrites it; do that only for a change meant to
alter the arithmetic). Every optimisation of the training step must reproduce them within float32
tolerance, with the same random-number consumption.
"""
import json
import os
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "data", "step_reference.json")

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0, "dropout_prob": 0.0}
CASES = {
    "SASRec-sequence-BCE": ("SASRec", {"train_mode": "sequence", "loss_type": "BCE"}),
    "SASRec-sequence-CE": ("SASRec", {"train_mode": "sequence", "loss_type": "CE"}),
    "SASRec-prefix-BCE": ("SASRec", {"train_mode": "prefix", "loss_type": "BCE"}),
    "SASRec-sequence-BCE-first": ("SASRec", {"train_mode": "sequence", "loss_type": "BCE", "align": "first"}),
    "GRU4Rec-sequence-BCE": ("GRU4Rec", {"train_mode": "sequence", "loss_type": "BCE"}),
    "GRU4Rec-sequence-CE": ("GRU4Rec", {"train_mode": "sequence", "loss_type": "CE"}),
    "GRU4Rec-sequence-BCE-first": ("GRU4Rec", {"train_mode": "sequence", "loss_type": "BCE", "align": "first"}),
}
COMMON = {"n_pairs": 2, "n_whole_level": 3, "beta": 0.4, "rate_min": 0.2, "rate_max": 0.71, "seed": 7, **NO_DROPOUT}


def step_record(config_dict, backbone, overrides, n_batches=2):
    """Loss terms and gradient checksums of ``n_batches`` seeded steps (no optimizer update)."""
    from helpers import build_tiny

    run = build_tiny(config_dict, backbone, **COMMON, **overrides)
    model = run.model
    model.train()
    batches = []
    for batch in run.train_data:
        batches.append(batch)
        if len(batches) == n_batches:
            break
    probe = torch.Generator().manual_seed(123)
    record = []
    for i, batch in enumerate(batches):
        torch.manual_seed(1000 + i)
        model.zero_grad(set_to_none=True)
        losses = model.calculate_loss(batch)
        losses = losses if isinstance(losses, tuple) else (losses,)
        sum(losses).backward()
        grads = {}
        for name, param in sorted(model.named_parameters()):
            g = param.grad if param.grad is not None else torch.zeros_like(param)
            g = g.detach().double().flatten()
            r = torch.randn(g.numel(), generator=probe, dtype=torch.float64)
            grads[name] = [float(g.sum()), float(g.norm()), float(g @ r)]
        record.append({"losses": [float(x.detach()) for x in losses], "grads": grads})
    return record


def _close(a, b, scale):
    return abs(a - b) <= 1e-5 * scale + 1e-4 * abs(b)


@pytest.mark.parametrize("case", sorted(CASES))
def test_step_losses_and_gradients_match_the_stored_ones(tiny_config_dict, case):
    with open(REFERENCE, encoding="utf-8") as f:
        expected = json.load(f)[case]
    backbone, overrides = CASES[case]
    got = step_record(tiny_config_dict, backbone, overrides)
    for step_got, step_exp in zip(got, expected):
        for a, b in zip(step_got["losses"], step_exp["losses"]):
            assert _close(a, b, 1.0), (case, step_got["losses"], step_exp["losses"])
        assert step_got["grads"].keys() == step_exp["grads"].keys()
        for name, values in step_exp["grads"].items():
            scale = max(abs(values[1]), 1e-3)  # the gradient's norm sets the absolute tolerance
            for a, b in zip(step_got["grads"][name], values):
                assert _close(a, b, scale), (case, name, step_got["grads"][name], values)


def _write():
    import tempfile

    sys.path.insert(0, HERE)
    sys.argv = sys.argv[:1]
    from helpers import tiny_config, write_tiny_dataset

    import recbole_basrec

    recbole_basrec.setup()
    root = tempfile.mkdtemp()
    write_tiny_dataset(root)
    out = {}
    for case, (backbone, overrides) in sorted(CASES.items()):
        cfg = tiny_config(root, os.path.join(root, "saved"), strict_keys=False)
        out[case] = step_record(cfg, backbone, overrides)
    os.makedirs(os.path.dirname(REFERENCE), exist_ok=True)
    with open(REFERENCE, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    if "--write" in sys.argv:
        _write()


def test_blocked_logsumexp_equals_the_one_block_one_with_gradients():
    from recbole_basrec.model.basrec import item_logsumexp

    torch.manual_seed(0)
    hidden = torch.randn(3, 70, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    upstream = torch.rand(3, 70, dtype=torch.float64)
    results = []
    for mib in (0, 50 * 8 * 4 / 2**20):  # one block; blocks of 8 slots (210 slots: uneven tail)
        out = item_logsumexp(hidden, weight, mib)
        grads = torch.autograd.grad((out * upstream).sum(), (hidden, weight))
        results.append((out, *grads))
    for one, blocked in zip(*results):
        assert torch.allclose(one, blocked, rtol=1e-12, atol=1e-12)


def test_zero_partner_padding_changes_only_the_csa_term(tiny_config_dict):
    backbone, overrides = CASES["SASRec-sequence-BCE"]
    encoder = step_record(tiny_config_dict, backbone, overrides)
    zero = step_record(tiny_config_dict, backbone, {**overrides, "csa_partner_padding": "zero"})
    for a, b in zip(encoder, zero):
        assert a["losses"][:2] == pytest.approx(b["losses"][:2], rel=1e-5)  # rec and SSA: trimming is exact
        assert abs(a["losses"][2] - b["losses"][2]) > 1e-5 * abs(a["losses"][2])  # CSA: partners' padding now 0
