"""The comparison methods (``augmentation``): their operators on hand-made batches, CL4SRec's
InfoNCE against a hand computation, the choice key, and every method training from the runner
and through ``compare --methods``."""
import logging
import math
import os
import sys
import types

import pytest
import torch

import recbole_basrec  # noqa: F401
from recbole_basrec.model import augmentation as aug
from recbole_basrec.model import methods

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from run_recbole_basrec import cli  # noqa: E402

SEQ = torch.tensor([[1, 2, 3, 4, 5, 0], [6, 7, 0, 0, 0, 0]])
LENGTHS = torch.tensor([5, 2])


def _rates(value, n=2):
    return torch.full((n,), value)


def _real(row, length):
    return row[:length].tolist()


# ------------------------------------------------------------------------------ operators
def test_crop_keeps_one_contiguous_window_of_the_rate_moved_to_the_front():
    starts = set()
    for seed in range(40):
        torch.manual_seed(seed)
        ids, lengths, masked = aug.crop(SEQ, LENGTHS, _rates(0.6), min_length=2)
        assert lengths.tolist() == [3, 2]  # floor(0.6 * 5) = 3; floor(0.6 * 2) = 1, raised to 2
        window = _real(ids[0], 3)
        start = window[0] - 1
        assert window == [start + 1, start + 2, start + 3] and 0 <= start <= 2
        starts.add(start)
        assert ids[0, 3:].tolist() == [0, 0, 0] and ids[1].tolist() == SEQ[1].tolist()
        assert not masked.any()
    assert starts == {0, 1, 2}  # every window that fits


def test_slide_window_keeps_a_window_of_its_length():
    torch.manual_seed(0)
    ids, lengths, _ = aug.window(SEQ, LENGTHS, LENGTHS.clamp(max=3))
    assert lengths.tolist() == [3, 2]
    row = _real(ids[0], 3)
    assert row == list(range(row[0], row[0] + 3)) and ids[1].tolist() == SEQ[1].tolist()


def test_mask_marks_the_rate_of_the_read_items_and_keeps_every_id():
    for seed in range(20):
        torch.manual_seed(seed)
        ids, lengths, masked = aug.mask(SEQ, LENGTHS, _rates(0.5), read=LENGTHS - 1)
        assert torch.equal(ids, SEQ) and lengths.tolist() == [5, 2]
        assert masked.sum(1).tolist() == [2, 0]  # floor(0.5 * 4) of the 4 read items; floor(0.5 * 1) = 0
        assert not masked[0, 4:].any()  # the last item is only a target: never masked


def test_insert_puts_the_given_item_before_the_chosen_ones_and_keeps_the_most_recent():
    new = SEQ * 10  # the "neighbour" of x is 10x
    for seed in range(20):
        torch.manual_seed(seed)
        ids, lengths, masked = aug.insert(SEQ, LENGTHS, _rates(0.4), new)
        # row 0: floor(0.4 * 5) = 2 inserted, 7 items in a width of 6: the oldest one dropped
        assert lengths.tolist() == [6, 3] and not masked.any()
        for row, length, original in ((ids[0], 6, [1, 2, 3, 4, 5]), (ids[1], 3, [6, 7])):
            items = _real(row, length)
            kept = [x for x in items if x < 10]
            inserted = [i for i, x in enumerate(items) if x >= 10]
            assert all(i + 1 < len(items) and items[i + 1] * 10 == items[i] for i in inserted)
            assert kept == original[len(original) - len(kept):]  # order kept, only the oldest dropped
        assert _real(ids[0], 6)[-1] == 5 and ids[1, 3:].tolist() == [0, 0, 0]
        # 2 inserted into row 0 (the dropped oldest may be one of them), 1 into row 1
        assert sum(x >= 10 for x in _real(ids[0], 6)) in (1, 2) and sum(x >= 10 for x in _real(ids[1], 3)) == 1


def test_pick_per_row_takes_each_rows_chosen_result():
    a = (torch.tensor([[1, 1], [2, 2]]), torch.tensor([1, 2]), torch.tensor([[False, False], [True, False]]))
    b = (torch.tensor([[3, 3], [4, 4]]), torch.tensor([3, 4]), torch.tensor([[True, True], [False, True]]))
    ids, lengths, masked = aug.pick_per_row(torch.tensor([1, 0]), [a, b])
    assert ids.tolist() == [[3, 3], [2, 2]] and lengths.tolist() == [3, 2]
    assert masked.tolist() == [[True, True], [True, False]]


def _fake_model(**settings):
    defaults = {"insert_rate": 0.4, "crop_rate": 0.6, "mask_rate": 0.3, "reorder_rate": 0.6, "substitute_rate": 0.1,
                "slide_window_length": 5, "aug_views": 1, "n_items": 100,
                "substitute_table": torch.arange(100) % 99 + 1}
    return types.SimpleNamespace(**{**defaults, **settings})


@pytest.mark.parametrize("method", methods.HEURISTIC)
def test_every_heuristic_copy_keeps_an_input_and_its_target(method):
    model = _fake_model()
    torch.manual_seed(0)
    seq = torch.tensor([[5, 6, 7, 8, 9, 10, 0], [11, 12, 0, 0, 0, 0, 0]]).repeat(50, 1)
    lengths = torch.tensor([6, 2]).repeat(50)
    ids, new_lengths, masked = methods.heuristic_view(model, method, seq, lengths)
    assert (new_lengths >= 2).all() and (new_lengths <= seq.size(1)).all()
    pos = torch.arange(seq.size(1))
    assert ((ids > 0) == (pos < new_lengths.unsqueeze(1))).all()  # right-padded, no gap
    if method == "slide_window":
        assert new_lengths.tolist() == [5, 2] * 50
    if method in ("ran", "ran_s"):
        assert (new_lengths > lengths).all()
    if method == "ran_s":  # the inserted items are the neighbours (x -> x + 1) of the next item
        row = _real(ids[0], int(new_lengths[0]))
        extra = [i for i in range(len(row) - 1) if row[i] == row[i + 1] + 1]
        kept = [x for i, x in enumerate(row) if i not in extra]
        # floor(0.4 * 6) = 2 inserted, 8 items in a width of 7: the oldest (original or inserted) dropped
        assert len(extra) in (1, 2) and kept == list(range(5, 11))[6 - len(kept):] and len(row) == 7


def test_the_copy_becomes_inputs_and_next_item_targets():
    seen = {}
    model = _fake_model(slide_window_length=50)  # a window longer than every sequence: the copy is the original
    model.sequence_loss = lambda *args: seen.setdefault("args", args) and torch.tensor(0.0)
    item_seq = torch.tensor([[1, 2, 3, 0], [4, 0, 0, 0]])
    methods.heuristic_loss(model, "slide_window", item_seq, torch.tensor([3, 1]), torch.tensor([9, 8]))
    inputs, lengths, targets, masked = seen["args"]
    assert inputs.tolist() == item_seq.tolist() and lengths.tolist() == [3, 1]
    assert targets.tolist() == [[2, 3, 9, 0], [8, 0, 0, 0]] and not masked.any()


def test_info_nce_equals_a_hand_computation():
    z1 = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]])
    z2 = torch.tensor([[0.8, 0.1], [0.2, 0.9], [-1.0, 1.0]])
    tau = 0.5
    z = torch.cat([z1, z2]).tolist()
    n, total = 3, 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        sims = {j: sum(a * b for a, b in zip(z[i], z[j])) / tau for j in range(2 * n) if j != i}
        total += -sims[positive] + math.log(sum(math.exp(v) for v in sims.values()))
    assert aug.info_nce(z1, z2, tau).item() == pytest.approx(total / (2 * n), rel=1e-6)
    unit = [[a / math.hypot(*row) for a in row] for row in z]
    cos = aug.info_nce(z1, z2, 1.0, "cos").item()
    by_hand = 0.0
    for i in range(2 * n):
        sims = {j: sum(a * b for a, b in zip(unit[i], unit[j])) for j in range(2 * n) if j != i}
        by_hand += -sims[(i + n) % (2 * n)] + math.log(sum(math.exp(v) for v in sims.values()))
    assert cos == pytest.approx(by_hand / (2 * n), rel=1e-6)


def test_a_masked_input_reads_a_zero_embedding_at_a_real_position(tiny_setup):
    config, dataset, model, trainer, _ = tiny_setup("SASRec", augmentation="cl4srec")
    model.eval()
    seq = torch.tensor([[3, 4, 5, 0, 0, 0, 0, 0, 0, 0]])
    lengths = torch.tensor([3])
    plain = model.sequence_representation(seq, lengths)
    assert torch.allclose(plain, model.forward(seq, lengths), atol=1e-6)
    masked = torch.zeros_like(seq, dtype=torch.bool)
    masked[0, 1] = True
    hidden = model.sequence_representation(seq, lengths, masked)
    with torch.no_grad():
        model.item_embedding.weight[4] = 0.0  # item 4 read as zeros, still a real position
    assert torch.allclose(hidden, model.forward(seq, lengths), atol=1e-6)


# ------------------------------------------------------------------------------ the choice key
@pytest.mark.parametrize("settings, message", [
    ({"augmentation": "mixup"}, "augmentation must be one of basrec, none, ran, ran_s, slide_window, cmr, cmrsi, "
                                "cl4srec, got 'mixup'."),
    ({"basrec": False, "augmentation": "cmr"}, "basrec=False means augmentation=none, but augmentation=cmr was given"),
    ({"cl_operators": ["crop", "insert"]}, "cl_operators must be"),
    ({"crop_rate": 0.0}, "crop_rate must be a number in (0, 1]"),
])
def test_bad_method_settings_stop_with_one_line(settings, message, tiny_config_dict):
    from recbole_basrec.quick_start import build_config

    with pytest.raises(ValueError, match=None) as error:
        build_config("SASRec", "tiny", config_dict={**tiny_config_dict, **settings})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bert4rec_refuses_a_next_item_method(tiny_config_dict):
    from recbole_basrec.quick_start import build_config

    with pytest.raises(ValueError, match="BERT4Rec trains a cloze task"):
        build_config("BERT4Rec", "tiny", config_dict={**tiny_config_dict, "augmentation": "cmr"})


def test_basrec_false_and_none_train_the_same_plain_loss(tiny_setup):
    _, _, model, _, (train, _, _) = tiny_setup("SASRec", basrec=False)
    assert model.augmentation == "none" and model.loss_terms() == ("loss",)
    batch = next(iter(train))
    torch.manual_seed(0)
    off = model.calculate_loss(batch)
    _, _, model2, _, _ = tiny_setup("SASRec", augmentation="none")
    torch.manual_seed(0)
    assert torch.equal(off, model2.calculate_loss(batch))


@pytest.mark.parametrize("method", ["cmr", "cl4srec"])
def test_a_method_learns_the_toy_task(method, tiny_setup):
    _, _, model, trainer, (train, valid, _) = tiny_setup("SASRec", augmentation=method, epochs=8, eval_step=0,
                                                         learning_rate=0.01)
    trainer.fit(train, None, saved=False)
    first, last = trainer.epoch_losses[0], trainer.epoch_losses[max(trainer.epoch_losses)]
    assert len(first) == 2 and all(math.isfinite(v) and v > 0 for v in first)
    assert last[0] < 0.92 * first[0]  # the recommendation term falls
    if method == "cl4srec":
        assert last[1] < 0.8 * first[1]  # and the two views' representations agree more
    assert list(trainer.loss_terms(0)) == ["rec", "aug" if method == "cmr" else "cl"]


# ------------------------------------------------------------------------------ from the runner, on ml-100k
FAST = ["--keep_last_interactions=10", "--stage1_epochs=1", "--epochs=1", "--hidden_size=16", "--inner_size=32",
        "--embedding_size=16", "--n_layers=1", "--n_heads=1", "--MAX_ITEM_LIST_LENGTH=10", "--strict_keys=False",
        "--train_batch_size=512", "--eval_batch_size=1024"]


@pytest.mark.parametrize("backbone", ["SASRec", "GRU4Rec", "NARM"])
@pytest.mark.parametrize("method", [m for m in methods.METHODS if m != "none"])
def test_every_method_trains_and_tests_from_the_runner(backbone, method, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    extra = ["--train_mode=prefix"] if backbone == "NARM" else []
    assert cli([f"--model={backbone}", "--dataset=ml-100k", f"--augmentation={method}",
                f"--checkpoint_dir={tmp_path}", *FAST, *extra]) == 0
    log = caplog.text
    stage2 = [line for line in log.splitlines() if "stage 2 epoch 1/1:" in line]
    names = methods.LOSS_TERMS[method]
    assert stage2 and all(f" {name} " in stage2[0] for name in names), log[-2000:]
    assert f"Stage 2: {methods.LABELS[method]}" in log
    assert "test      : {'hit@5'" in capsys.readouterr().out


@pytest.mark.parametrize("backbone", ["SASRec", "GRU4Rec", "NARM"])
def test_compare_runs_every_method_from_one_stage1(backbone, tiny_config_dict, tmp_path):
    from recbole_basrec.quick_start.compare import run_compare

    lines = []
    every = [m for m in methods.METHODS if m != "none"]
    settings = {k: v for k, v in tiny_config_dict.items() if k != "seed"}
    settings.update({"stage1_epochs": 1, "epochs": 1, **({"train_mode": "prefix"} if backbone == "NARM" else {})})
    record = run_compare(backbone, "tiny", seeds=[1], config_dict=settings, methods=every, say=lines.append)
    assert set(record["runs"]) == {f"{arm}-1" for arm in ["plain", *every]}
    assert [record["runs"][f"{m}-1"]["augmentation"] for m in ["plain", *every]] == ["none", *every]
    assert record["methods"] == every
    rows = [line.split("|")[0].strip() for line in record["table"].splitlines()[2:]]
    assert rows == ["plain", *(methods.LABELS[m] for m in every)]
    assert sum("stage 1:" in line for line in lines) == 1
    stage1 = os.path.join(os.path.dirname(record["json_path"]), record["stage1"]["checkpoint"])
    for arm in ["plain", *every]:  # every arm continues from the one stage 1
        assert f"[{arm}-1] stage 2 starts from {stage1}" in lines


def test_a_slide_window_as_long_as_every_sequence_is_named(tiny_setup, caplog):
    # A window above MAX_ITEM_LIST_LENGTH is refused (docs/errors.md); below it, the data's sequences decide.
    tiny_setup("SASRec", augmentation="slide_window", slide_window_length=14, MAX_ITEM_LIST_LENGTH=20)
    assert "slide_window_length=14 is at least the longest training sequence (14 items)" in caplog.text
    caplog.clear()
    tiny_setup("SASRec", augmentation="slide_window", slide_window_length=13, MAX_ITEM_LIST_LENGTH=20)
    assert "slide_window_length" not in caplog.text
