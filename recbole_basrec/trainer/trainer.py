"""RecBole ``Trainer`` with BASRec's two-stage schedule and weights-only checkpoints.

Stage 1 trains the plain backbone (``stage1_epochs``, early-stopped, best weights restored) or
loads it from ``pretrained_path``; stage 2 adds BASRec's losses with its own early stopping.
Checkpoints hold tensors and plain Python values only and are always read with
``torch.load(..., weights_only=True)`` (RecBole's own pickle their ``Config``).
"""
import os
from logging import getLogger

import torch
from recbole.trainer import Trainer
from recbole.utils import set_color

from recbole_basrec.config import complete_config, default_config_dict

_PLAIN = (str, int, float, bool, type(None))
# Keys RecBole or complete_config rewrite into a form Config would not accept back as input.
_DERIVED = {"train_neg_sample_args"}


def _plain(value):
    """``value`` if it is built of plain Python types, else None (so it is never pickled)."""
    if isinstance(value, _PLAIN):
        return value, True
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return [v for v, _ in items], all(ok for _, ok in items)
    if isinstance(value, dict):
        items = {k: _plain(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, all(ok for _, ok in items.values()) and all(
            isinstance(k, str) for k in value
        )
    return None, False


def load_checkpoint(path, device="cpu"):
    """Read a checkpoint safely; explain what to do with RecBole's pickled ones."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist.") from None
    except Exception as error:  # unpickling refused: not a weights-only checkpoint
        raise ValueError(
            f"Checkpoint '{path}' cannot be loaded with weights_only=True ({type(error).__name__}); "
            f"use a checkpoint saved by recbole-basrec, or save `model.state_dict()` with torch.save."
        ) from None


class BASRecTrainer(Trainer):
    """Trainer for every model of recbole-basrec (also usable for stock sequential models)."""

    def __init__(self, config, model):
        complete_config(config)
        super().__init__(config, model)
        self.valid_history = []  # (stage, epoch, valid_result) for every validation
        self.stage = 2 if hasattr(model, "augment") else 0

    # ------------------------------------------------------------------ checkpoints
    def _config_snapshot(self):
        snapshot = {"model": self.config["model"], "dataset": self.config["dataset"]}
        for key in default_config_dict(self.config["model"]) if self.config["model"] else ():
            if key in _DERIVED:
                continue
            value, ok = _plain(self.config[key])
            if ok:
                snapshot[key] = value
        return snapshot

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        state = {
            "config": self._config_snapshot(),
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "stage": self.stage,
            "state_dict": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        torch.save(state, saved_model_file)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")

    def _load_weights(self, path):
        checkpoint = load_checkpoint(path, self.device)
        state_dict = checkpoint.get("state_dict", checkpoint)
        self.model.load_state_dict(state_dict)
        return checkpoint

    def resume_checkpoint(self, resume_file):
        resume_file = str(resume_file)
        self.saved_model_file = resume_file
        checkpoint = self._load_weights(resume_file)
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.stage = checkpoint.get("stage", self.stage)
        if checkpoint["config"]["model"].lower() != self.config["model"].lower():
            self.logger.warning("Checkpoint was saved by another model; loading its weights anyway.")
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if not eval_data:
            return
        if load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            self._load_weights(checkpoint_file)
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)

    # ------------------------------------------------------------------ two-stage training
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        if not hasattr(self.model, "augment") or self.start_epoch > 0:
            return super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)
        stage1_epochs = self.config["stage1_epochs"]
        pretrained = self.config["pretrained_path"]
        if pretrained:
            self._load_weights(pretrained)
            self.logger.info(set_color("Stage 2 starts from", "green") + f": {pretrained}")
        elif stage1_epochs > 0 and self.model.basrec:
            self._run_stage1(train_data, valid_data, verbose, show_progress, callback_fn)
        self.stage = 2
        self.model.augment = True
        return super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)

    def _run_stage1(self, train_data, valid_data, verbose, show_progress, callback_fn):
        """Plain training, early-stopped on validation; leaves the best weights loaded and
        resets the schedule so stage 2 runs ``epochs`` epochs with a fresh optimizer."""
        final_file, stage2_epochs = self.saved_model_file, self.epochs
        self.saved_model_file = final_file.replace(".pth", "-stage1.pth")
        self.stage, self.model.augment = 1, False
        self.epochs = self.config["stage1_epochs"]
        self.logger.info(set_color(f"Stage 1: plain training for up to {self.epochs} epochs", "green"))
        super().fit(train_data, valid_data, verbose, True, show_progress, callback_fn)
        if valid_data and os.path.isfile(self.saved_model_file):
            self._load_weights(self.saved_model_file)
        self.logger.info(set_color("Stage 2: BASRec", "green") + f", from {self.saved_model_file}")
        done = max(self.train_loss_dict) + 1 if self.train_loss_dict else 0
        self.start_epoch, self.epochs = done, done + stage2_epochs
        self.saved_model_file = final_file
        self.cur_step = 0
        self.best_valid_score = -float("inf") if self.valid_metric_bigger else float("inf")
        self.best_valid_result = None
        self.optimizer = self._build_optimizer()

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self._epoch = epoch_idx  # for the validation history (fit validates after training)
        return super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)

    def _valid_epoch(self, valid_data, show_progress=False):
        valid_score, valid_result = super()._valid_epoch(valid_data, show_progress)
        self.valid_history.append({"stage": self.stage, "epoch": getattr(self, "_epoch", -1), **valid_result})
        return valid_score, valid_result

    def _generate_train_loss_output(self, epoch_idx, s_time, e_time, losses):
        if not isinstance(losses, tuple) or len(losses) != 3:
            return super()._generate_train_loss_output(epoch_idx, s_time, e_time, losses)
        places = self.config["loss_decimal_place"] or 4
        parts = ", ".join(
            f"{set_color(name, 'blue')}: {value:.{places}f}" for name, value in zip(("rec", "ssa", "csa"), losses)
        )
        return (
            set_color(f"epoch {epoch_idx} training", "green")
            + f" [{set_color('time', 'blue')}: {e_time - s_time:.2f}s, {set_color('train loss', 'blue')}: "
            + f"{sum(losses):.{places}f} ({parts})]"
        )
