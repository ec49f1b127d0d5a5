"""RecBole ``Trainer`` with BASRec's two-stage schedule and the paper's evaluation protocol.

Stage 1 trains the plain backbone (``stage1_epochs``, early-stopped, best weights restored) or
loads it from ``pretrained_path`` (ours or the authors' code's); stage 2 adds BASRec's losses
with its own early stopping. ``epochs: 0`` with a ``pretrained_path`` only evaluates it.
:meth:`BASRecTrainer.schedule` lists the stages a ``fit`` runs. With ``eval_mask_history``
(default) the full ranking excludes every item the user had before the target, as the paper's
protocol does; RecBole excludes nothing for sequential models. What checkpoints hold and how they
are written and read is :mod:`recbole_basrec.trainer.checkpoint`'s.
"""
import dataclasses
import os
import time
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from typing import Optional

import numpy as np
import torch
from recbole.trainer import Trainer
from recbole.utils import set_color
from torch.nn.utils import clip_grad_norm_

from recbole_basrec import distributed
from recbole_basrec.config import backbone_of, tta_settings
from recbole_basrec.config.snapshot import config_snapshot
from recbole_basrec.console import CONSOLE, Heartbeat
from recbole_basrec.data.dataset import HISTORY_LENGTH_FIELD
from recbole_basrec.model.authors_checkpoint import convert_authors_state_dict, is_authors_checkpoint
from recbole_basrec.model.basrec import StagedModel
from recbole_basrec.trainer.checkpoint import ModelState, ResumeState, copy_atomically, load_checkpoint
from recbole_basrec.trainer.memory import keep_freed_memory
from recbole_basrec.trainer.tta import augment_at_test_time

#: ``BASRecTrainer.stage`` (also saved in checkpoints and the validation history): a model without
#: stages (not a :class:`StagedModel`) has none; a staged model trains plain in stage 1
#: (optional), augmented in stage 2.
NO_STAGES, STAGE_1, STAGE_2 = 0, 1, 2
# Metric values compared for early stopping are rounded to 1e-17 (RecBole: 1e-4): a rank change of
# one user that changes an NDCG@k or HR@k (k <= 20) at all moves its mean over n users by >= ~1e-3 / n.
_FULL_PRECISION_PLACES = 17
#: Longest silence inside a training epoch or an evaluation, in seconds.
HEARTBEAT_S = 30.0
#: Our keys the trainer reads for every model (``properties/overall.yaml`` sets them), and those a
#: staged model's schedule reads. ``pretrained_path`` may be absent: no stage-1 checkpoint.
TRAINER_KEYS = ("eval_mask_history", "exact_valid_score", "valid_start_epoch")
SCHEDULE_KEYS = ("stage1_epochs", "stage1_stopping_step")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One entry of the schedule :meth:`BASRecTrainer.fit` runs."""

    number: int  # NO_STAGES, STAGE_1 or STAGE_2: ``trainer.stage`` while it runs
    epochs: int  # epochs it runs in all (early stopping aside), counted from its first epoch
    augment: Optional[bool]  # ``model.augment`` (the augmented or the plain loss); None: no stages
    stopping_step: int  # its early stopping's patience
    best_file: str  # its best-model checkpoint
    hands_on_best: bool = False  # the next stage starts from its best weights: always saved, reloaded
    weights: Optional[str] = None  # a checkpoint it starts from (``pretrained_path``)
    line: Optional[str] = None  # what the console says as it starts


def _refuse_compiled(model):
    if type(model).__name__ == "OptimizedModule" and type(model).__module__.startswith("torch._dynamo"):
        raise ValueError(
            "torch.compile(model) has no effect here: RecBole's trainer calls calculate_loss and full_sort_predict, "
            "which compile() leaves uncompiled; pass the model itself."
        )


class BASRecTrainer(Trainer):
    """Trainer for every model of recbole-basrec (also usable for stock sequential models)."""

    def __init__(self, config, model):
        _refuse_compiled(model)
        #: Whether the model trains in stages (the declared :class:`StagedModel` interface).
        self.staged = isinstance(model, StagedModel)
        missing = [key for key in TRAINER_KEYS + (SCHEDULE_KEYS if self.staged else ()) if key not in config]
        if missing:
            raise ValueError(f"BASRecTrainer needs {', '.join(missing)} in the configuration: build it with "
                             "recbole_basrec's defaults (recbole_basrec.quick_start.build_config).")
        super().__init__(config, model)
        # RecBole names checkpoints to the second: two runs started together in one folder would
        # share files. The process id (rank 0's under DDP) makes the name this run's own.
        token = os.getpid() if config["single_spec"] else distributed.broadcast_object(os.getpid())
        self.saved_model_file = self.saved_model_file[: -len(".pth")] + f"-{token}.pth"
        if not config["single_spec"]:
            distributed.prepare_trainer(self)
        else:
            distributed.refuse_launch_keys(config)
        if torch.device(self.device).type == "cpu":
            keep_freed_memory()
        self.valid_history = []  # (stage, epoch, valid_result) for every validation
        self.stage = STAGE_2 if self.staged else NO_STAGES
        self.mask_history = bool(config["eval_mask_history"])
        self.exact_valid_score = bool(config["exact_valid_score"])
        self.valid_start_epoch = config["valid_start_epoch"]
        self._stage_start = 0  # first epoch index of the current stage
        self._history = None  # (user_ptr, items) on the device while scoring with masking
        self._scoring = False  # inside scoring(): score_batch may run
        self.epoch_losses = {}  # epoch -> mean loss per batch of each term (rec, ssa, csa) or (loss,)
        #: Where each epoch's progress line goes, and where the state to resume from is written
        #: after every epoch (default ``<best checkpoint>-last.pth``).
        self.progress_sink = lambda line: self.logger.info(line, extra=CONSOLE)
        self.last_file = None
        self._stage_clock = None  # (perf_counter at the stage's start, its first epoch)
        self._train_data = None
        self._pending_generator = None  # the data order state of a resumed run
        self._resumed = None  # what resume_checkpoint restored, for resume_line
        self._validating = False  # test-time augmentation applies to tests only, as TTA4SR
        self._beat = None  # the running evaluation's progress lines

    # ------------------------------------------------------------------ checkpoints
    def _config_snapshot(self):
        return config_snapshot(self.config)

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.config["single_spec"] and not distributed.is_main():  # global rank 0 writes
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        ModelState(config=self._config_snapshot(), epoch=epoch, cur_step=self.cur_step,
                   best_valid_score=self.best_valid_score, stage=self.stage, state_dict=self.model.state_dict(),
                   optimizer=self.optimizer.state_dict()).save(saved_model_file)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")

    @property
    def last_checkpoint_file(self):
        """Written after every epoch: what ``--resume`` needs to continue this run."""
        return self.last_file or self.saved_model_file.replace(".pth", "-last.pth")

    def _save_last(self, epoch, finished=False):
        rng_per_rank = None if self.config["single_spec"] else distributed.gather_rng_states()  # every rank
        if rng_per_rank is not None and not distributed.is_main():
            return
        loader = self._train_data
        generator = getattr(loader, "generator", None) if loader is not None else None
        ResumeState(
            config=self._config_snapshot(), epoch=epoch, cur_step=self.cur_step,
            best_valid_score=self.best_valid_score, state_dict=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(), best_valid_result=self.best_valid_result,
            best_model_file=self.saved_model_file, stage=self.stage, stage_start=self._stage_start,
            epochs=self.epochs, valid_history=self.valid_history, rng=torch.get_rng_state(),
            epoch_losses=self.epoch_losses, finished=finished,
            generator=None if generator is None else generator.get_state(), rng_per_rank=rng_per_rank,
        ).save(self.last_checkpoint_file)

    def load_weights(self, path):
        """Load the model weights of a checkpoint into ``self.model``: one of ours (best or
        ``-last.pth``), a bare ``state_dict``, or the authors' code's (names and item ids mapped).
        Returns the whole checkpoint; a checkpoint that does not fit is a one-line ValueError."""
        if self.config["single_spec"]:
            checkpoint = load_checkpoint(path, self.device)
        else:  # rank 0 reads (only it writes checkpoints) and sends it to every rank
            checkpoint = distributed.load_on_rank0(lambda: load_checkpoint(path, "cpu"))
        state_dict = checkpoint.get("state_dict", checkpoint)
        if is_authors_checkpoint(checkpoint, self.model):
            backbone = backbone_of(self.config["model"])
            state_dict = convert_authors_state_dict(state_dict, self.model, backbone, f"Checkpoint '{path}'")
        try:
            self.model.load_state_dict(state_dict)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[-1].strip()
            raise ValueError(
                f"Checkpoint '{path}' does not fit {self.config['model']} on {self.config['dataset']} ({first}); "
                f"use a checkpoint of the same model, size and dataset."
            ) from None
        return checkpoint

    def resume_checkpoint(self, resume_file):
        """Continue from a checkpoint: a ``-last.pth`` file (written after every epoch) restores
        the epoch, the optimizer, early stopping, the best model so far, the random state and
        the data order, so the run ends as an uninterrupted one would; a best-model checkpoint
        restores what it holds. Returns the checkpoint as read."""
        resume_file = str(resume_file)
        checkpoint = self.load_weights(resume_file)
        state = ResumeState.from_dict(checkpoint, resume_file)
        saved_by = state.config.get("model", self.config["model"])
        if saved_by.lower() != self.config["model"].lower():
            raise ValueError(
                f"Checkpoint '{resume_file}' was saved by {saved_by}, not {self.config['model']}: "
                f"resume with --model={saved_by}."
            )
        best = state.best_model_file
        beside = best and os.path.join(os.path.dirname(resume_file), os.path.basename(best))
        if best and not os.path.exists(best) and os.path.exists(beside):
            best = beside  # the run's folder was moved or copied since: its best model moved with it
        folder = os.path.abspath(self.config["checkpoint_dir"])
        if best and os.path.abspath(os.path.dirname(best)) != folder:
            # resumed into another checkpoint_dir: the run goes on there, its best model so far with it
            moved = os.path.join(folder, os.path.basename(best))
            if os.path.isfile(best) and (self.config["single_spec"] or distributed.is_main()):
                copy_atomically(best, moved)
            best = moved
        self.saved_model_file = best or resume_file
        self.start_epoch = state.epoch + 1
        self.cur_step = state.cur_step
        self.best_valid_score = state.best_valid_score
        self.best_valid_result = state.best_valid_result
        if state.stage is not None:
            self.stage = state.stage
        self._stage_start = state.stage_start
        saved_epochs = self.epochs if state.epochs is None else state.epochs
        self.epochs = saved_epochs
        if self.stage != STAGE_1:  # the stage runs config["epochs"] epochs in all: a changed --epochs extends or shortens it
            self.epochs = self._stage_start + self.config["epochs"]
        stopped_early = state.finished and state.epoch + 1 < saved_epochs
        self._resumed = {"stage": self.stage, "epoch": state.epoch, "finished": state.finished,
                         "stopped_early": stopped_early}
        if stopped_early or self.start_epoch >= self.epochs:
            self.start_epoch = max(self.start_epoch, self.epochs)  # nothing left to train: the test follows
        self.valid_history = state.valid_history
        self.epoch_losses = state.epoch_losses
        if self.staged:
            self.model.augment = self.stage != STAGE_1
        self.optimizer.load_state_dict(state.optimizer)
        if not self.config["single_spec"]:
            distributed.restore_rng_state(state.rng_per_rank, self.config["seed"], state.epoch)
        elif state.rng is not None:
            torch.set_rng_state(state.rng.cpu())
        self._pending_generator = state.generator
        return checkpoint

    def resume_line(self):
        """What resuming did, in one line: where it continues, or why nothing is left to train."""
        state = self._resumed
        if state is None:
            return ""
        stage = {1: "stage 1", 2: "stage 2"}.get(state["stage"], "training")
        where = f"resumed from {stage}, epoch {state['epoch']}"
        if state["stopped_early"]:
            return f"{where}: this run already finished (early stopping); testing its best model {self.saved_model_file}"
        if self.start_epoch > self.epochs:
            return (f"{where}: epochs={self.config['epochs']} is fewer than this stage already trained, so nothing "
                    f"is trained; testing its best model {self.saved_model_file}")
        if self.start_epoch >= self.epochs:
            done = "already finished" if state["finished"] else f"ends at epoch {self.epochs - 1} with these epochs"
            return f"{where}: this run {done}; testing its best model {self.saved_model_file}"
        return f"{where}: training epochs {self.start_epoch} to {self.epochs - 1}"

    # ------------------------------------------------------------------ one step, one scored batch
    def train_step(self, batch):
        """One optimizer step on one training batch, as an epoch of :meth:`fit` takes it (autocast
        with ``enable_amp``, ``clip_grad_norm``; one process); the model trains in the stage's
        mode (``model.augment``). Returns the loss, the sum of its terms, detached."""
        if not self.model.training:
            self.model.train()
        batch = batch.to(self.device)
        self.optimizer.zero_grad()
        with torch.autocast(device_type=self.device.type, enabled=self.enable_amp):
            losses = self.model.calculate_loss(batch)
        loss = sum(losses) if isinstance(losses, tuple) else losses
        loss.backward()
        if self.clip_grad_norm:
            clip_grad_norm_(self.model.parameters(), **self.clip_grad_norm)
        self.optimizer.step()
        return loss.detach()

    @contextmanager
    def scoring(self, eval_data):
        """Within the block, :meth:`score_batch` scores batches of ``eval_data`` (a full-ranking
        loader) as :meth:`evaluate` does: the model in eval mode, each user's history masked
        (``eval_mask_history``), test-time augmentation outside validation (``tta``)."""
        dataset = eval_data.dataset
        self.model.eval()
        self.tot_item_num = dataset.item_num
        if self.item_tensor is None:  # RecBole's scoring through predict() for models without full_sort_predict
            self.item_tensor = dataset.get_item_feature().to(self.device)
        self._history = self._eval_history(dataset) if self.mask_history else None
        augmenting = nullcontext() if self._validating else augment_at_test_time(
            self.model, {**tta_settings(self.config), "seed": self.config["seed"]},
            pulse=lambda: self._beat is not None and self._beat.pulse())
        self._scoring = True
        try:
            with augmenting:
                yield self
        finally:
            self._scoring, self._history, self._beat = False, None, None

    @torch.no_grad()
    def score_batch(self, batch):
        """Scores ``(users, items)`` of one batch of the loader :meth:`scoring` prepared: every
        item ranked, the padding item and (``eval_mask_history``) each user's history at ``-inf``."""
        if not self._scoring:
            raise RuntimeError("score_batch scores inside `with trainer.scoring(eval_data):` only")
        return self._full_sort_batch_eval(batch)[1]

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if not eval_data:
            return
        if load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            self.load_weights(checkpoint_file)
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        if isinstance(self.eval_collector, distributed.GatheringCollector):  # DDP: every rank's rows
            self.eval_collector.rows = eval_data.sample_size
        beat = None if show_progress else self._heartbeat("validation" if self._validating else "test", len(eval_data))
        with self.scoring(eval_data):
            self._beat = beat
            return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)

    def _map_reduce(self, result, num_sample):
        # Under DDP the collected rows are gathered before the metrics (distributed.prepare_trainer):
        # every rank already holds the single-process result.
        return result

    @contextmanager
    def _validation(self):
        self._validating = True
        try:
            yield
        finally:
            self._validating = False

    def _eval_history(self, dataset):
        history = getattr(dataset, "eval_history", None)  # None: a split of RecBole's own dataset
        if history is None:
            raise ValueError(
                "eval_mask_history=True needs recbole_basrec's dataset (it knows each user's history); "
                "import recbole_basrec before create_dataset, or set eval_mask_history=False."
            )
        return tuple(torch.from_numpy(a).to(self.device) for a in history)

    def _full_sort_batch_eval(self, batched_data):
        interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
        if self._beat is not None:
            self._beat.tick()
        if self._history is not None:
            # Sparse (row, item) pairs of every user's history; no dense users x items mask.
            user_ptr, items = self._history
            users = interaction[self.config["USER_ID_FIELD"]].to(self.device)
            counts = interaction[HISTORY_LENGTH_FIELD].to(self.device)
            rows = torch.repeat_interleave(torch.arange(len(users), device=self.device), counts)
            offsets = torch.arange(rows.numel(), device=self.device) - torch.repeat_interleave(
                torch.cumsum(counts, 0) - counts, counts
            )
            scores[rows, items[user_ptr[users][rows] + offsets]] = -np.inf
        return interaction, scores, positive_u, positive_i

    # ------------------------------------------------------------------ stages
    def schedule(self):
        """The stages :meth:`fit` runs from the trainer's current state (fresh or resumed), in order:
        a model without stages trains once; a :class:`StagedModel` trains plain in stage 1
        (``stage1_epochs``; none with 0 or ``pretrained_path``, which replaces it) and augmented in
        stage 2 (``epochs``); a resumed run continues the stage it stopped in."""
        run_file, epochs, patience = self.saved_model_file, self.config["epochs"], self.config["stopping_step"]
        if not self.staged:
            return [Stage(NO_STAGES, epochs, None, patience, run_file)]
        resumed = self.start_epoch > 0
        if resumed and self.stage != STAGE_1:
            return [Stage(STAGE_2, epochs, True, patience, run_file)]
        if resumed:  # the checkpoint's best file is stage 1's
            run_file = run_file.replace("-stage1.pth", ".pth")
        pretrained = self.config["pretrained_path"]
        if pretrained and not resumed:
            return [Stage(STAGE_2, epochs, True, patience, run_file, weights=pretrained,
                          line=f"stage 2 starts from {pretrained}")]
        stage1_epochs = self.config["stage1_epochs"]
        if stage1_epochs == 0 and not resumed:
            return [Stage(STAGE_2, epochs, True, patience, run_file)]
        stage1_patience = self.config["stage1_stopping_step"]
        stage1 = Stage(STAGE_1, stage1_epochs, False, stage1_patience, run_file.replace(".pth", "-stage1.pth"),
                       hands_on_best=True, line=None if resumed else (
                           f"Stage 1: plain {backbone_of(self.config['model'])} for up to {stage1_epochs} epochs, "
                           f"early-stopped after {stage1_patience + 1} validations without gain, so that stage 2 "
                           "starts from learned representations (the paper's two-stage training; stage1_epochs=0 "
                           "skips it, pretrained_path replaces it)"))
        # With basrec=False the plain model runs the same two stages: the fair baseline's budget.
        stage2 = Stage(STAGE_2, epochs, True, patience, run_file, line=(
            f"Stage 2: {self._stage2_what()}, from stage 1's best weights {stage1.best_file}, for up to "
            f"{epochs} epochs with a fresh optimizer"))
        return [stage1, stage2]

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        """Run the stages of :meth:`schedule` in turn; returns the last one's best score and result."""
        if self._resumed and self.stage != STAGE_1 and self.start_epoch >= self.epochs:
            # Nothing left to train. RecBole's fit would save the current (last) weights over the
            # best model here, so the test would score the last epoch instead of the best.
            return self.best_valid_score, self.best_valid_result
        self._train_data = train_data
        self._validates = bool(valid_data) and self.eval_step > 0
        if self._pending_generator is not None:
            train_data.generator.set_state(self._pending_generator.cpu())
            self._pending_generator = None
        user_callback = callback_fn

        def callback_fn(epoch, score):  # after every validated epoch
            if user_callback:
                user_callback(epoch, score)
            self._end_epoch(epoch, score)

        result = None
        for index, stage in enumerate(self.schedule()):
            result = self._run_stage(stage, index == 0, train_data, valid_data, verbose, saved, show_progress,
                                     callback_fn)
        if self.train_loss_dict or self._resumed:
            # the last state says the run is over, so resuming it trains nothing more
            self._save_last(max(self.train_loss_dict, default=self.start_epoch - 1), finished=True)
        return result

    def _run_stage(self, stage, first, train_data, valid_data, verbose, saved, show_progress, callback_fn):
        if first:  # the epochs where a fresh or resumed run stands
            self.epochs = self._stage_start + stage.epochs
        else:  # epoch indices count on; early stopping, the best model and the optimizer start afresh
            done = max(self.train_loss_dict) + 1 if self.train_loss_dict else 0
            self.start_epoch, self.epochs, self._stage_start = done, done + stage.epochs, done
            self.cur_step = 0
            self.best_valid_score = -float("inf") if self.valid_metric_bigger else float("inf")
            self.best_valid_result = None
            self.optimizer = self._build_optimizer()
        self.saved_model_file, self.stage, self.stopping_step = stage.best_file, stage.number, stage.stopping_step
        if stage.augment is not None:
            self.model.augment = stage.augment
        if stage.weights:
            self.load_weights(stage.weights)
        if stage.line:
            self.progress_sink(stage.line)
        if stage.weights and stage.epochs == 0:
            return self._evaluate_only(valid_data, saved, show_progress)
        result = super().fit(train_data, valid_data, verbose, saved or stage.hands_on_best, show_progress, callback_fn)
        if stage.hands_on_best:
            written = os.path.isfile(self.saved_model_file)
            if not self.config["single_spec"]:
                written = distributed.broadcast_object(written)  # rank 0 wrote it
            if valid_data and written:
                self.load_weights(self.saved_model_file)
        return result

    def _evaluate_only(self, valid_data, saved, show_progress):
        """``epochs: 0``: score the loaded weights on validation and keep them as the best model,
        so testing afterwards evaluates exactly these weights."""
        self.logger.info(set_color("epochs=0: evaluating the loaded weights, no training", "green"))
        if valid_data:
            with self._validation():
                self.best_valid_score, self.best_valid_result = super()._valid_epoch(valid_data, show_progress)
            self.logger.info(set_color("valid result", "blue") + f": {self.best_valid_result}")
            self.valid_history.append({"stage": self.stage, "epoch": -1, **self.best_valid_result})
        if saved:
            self._save_checkpoint(-1, verbose=False)
        return self.best_valid_score, self.best_valid_result

    def _stage2_what(self):
        from recbole_basrec.model.methods import LABELS

        method = self.model.augmentation
        if method == "none":
            return "plain training continued (augmentation none: the same budget as the augmented run)"
        if method == "basrec":
            return "BASRec"
        return (f"{LABELS[method]} (its paper trains in one stage from random weights: stage1_epochs=0 "
                "does that)")

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self._epoch = epoch_idx  # for the validation history (fit validates after training)
        if self._stage_clock is None or self._stage_clock[1] > epoch_idx or epoch_idx == self._stage_start:
            self._stage_clock = (time.perf_counter(), epoch_idx)
        loss_func = loss_func or self.model.calculate_loss
        if not show_progress:  # RecBole's bar is off: a line every 30 s instead, so a long epoch is never silent
            beat = self._heartbeat(f"epoch {epoch_idx} training", len(train_data))

            def loss_and_beat(interaction, compute=loss_func):
                loss = compute(interaction)
                beat.tick()
                return loss

            loss_func = loss_and_beat
        losses = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
        terms = losses if isinstance(losses, tuple) else (losses,)
        self.epoch_losses[epoch_idx] = tuple(float(t) / max(len(train_data), 1) for t in terms)
        if not (getattr(self, "_validates", False) and (epoch_idx + 1) % self.eval_step == 0):
            self._end_epoch(epoch_idx, None)  # no validation follows this epoch
        return losses

    def _heartbeat(self, what, batches):
        quiet = not self.config["single_spec"] and not distributed.is_main()  # rank 0 speaks for all
        return Heartbeat(lambda line: None if quiet else self.progress_sink(line), self._stage_label() + what, batches,
                         every=HEARTBEAT_S)

    def _stage_label(self):
        """``"stage 1 "`` / ``"stage 2 "`` when there is a stage 1 (trained, or ``pretrained_path``), else ``""``."""
        two_stages = self.stage == STAGE_1 or self._stage_start > 0 or bool(self.config["pretrained_path"])
        return f"stage {self.stage} " if two_stages and self.stage in (STAGE_1, STAGE_2) else ""

    def _end_epoch(self, epoch, score):
        """One progress line, then the ``-last.pth`` checkpoint that ``--resume`` continues from."""
        self.progress_sink(self.progress_line(epoch, score))
        self._save_last(epoch)

    def loss_terms(self, epoch):
        """``{"rec", "ssa", "csa"}`` (a BASRec epoch) or ``{"loss"}``: that epoch's mean per batch."""
        losses = self.epoch_losses.get(epoch, ())
        names = self.model.loss_terms() if len(losses) > 1 and self.staged else ("loss",)
        return dict(zip(names, losses))

    def progress_line(self, epoch, score=None):
        """``stage 2 epoch 12/199: rec 0.1800 ssa 1.9000 csa 2.2000, valid ndcg@10 0.0412 (best 0.0420),
        elapsed 3.1 min, about 45 min left at this pace if no early stop``: RecBole's 0-based epoch
        index and the last one this stage may reach, the mean loss terms, validation, and the time
        left estimated from this stage's pace (early stopping may end it sooner, slower epochs later).
        ``stage 1`` / ``stage 2`` only when there is a stage 1 (trained, or ``pretrained_path``).
        With another ``valid_metric`` its value and best come first, then that epoch's NDCG@10."""
        loss_text = " ".join(f"{n} {v:.4f}" for n, v in self.loss_terms(epoch).items())
        if score is None or score in (float("inf"), float("-inf")):
            valid = "valid -"
        else:
            valid = f"valid {self.valid_metric} {score:.4f} (best {self.best_valid_score:.4f})"
            latest = self.valid_history[-1] if self.valid_history else {}
            if self.valid_metric != "ndcg@10" and "ndcg@10" in latest:
                valid += f", ndcg@10 {latest['ndcg@10']:.4f}"  # the paper's headline metric, whatever selects
        start, first = self._stage_clock or (time.perf_counter(), epoch)
        elapsed = time.perf_counter() - start
        done = epoch - first + 1
        left = max(self.epochs - epoch - 1, 0) * elapsed / max(done, 1)
        return (f"{self._stage_label()}epoch {epoch}/{self.epochs - 1}: {loss_text}, {valid}, "
                f"elapsed {elapsed / 60:.1f} min, about {left / 60:.0f} min left at this pace if no early stop")

    def _check_nan(self, loss):
        if not torch.isfinite(loss):
            good = self.saved_model_file if os.path.isfile(self.saved_model_file) else None
            where = f"the last good checkpoint is {good}" if good else "no checkpoint was saved before it"
            raise ValueError(
                f"Training loss is {loss.item()} at epoch {getattr(self, '_epoch', 0) + 1}, so training stopped; "
                f"{where}. Lower learning_rate (now {self.learning_rate})."
            )

    def _valid_epoch(self, valid_data, show_progress=False):
        epoch = getattr(self, "_epoch", 0) - self._stage_start
        if epoch < self.valid_start_epoch:
            # Not validated yet (the authors' start_valid): the latest weights count as the best
            # so far, so that early stopping and the saved model start at the first validation.
            self.logger.info(f"validation starts at epoch {self.valid_start_epoch} of this stage")
            return (-np.inf if self.valid_metric_bigger else np.inf), {}
        with self._validation(), self._metrics_unrounded() if self.exact_valid_score else nullcontext():
            valid_score, valid_result = super()._valid_epoch(valid_data, show_progress)
        self.valid_history.append({"stage": self.stage, "epoch": getattr(self, "_epoch", -1), **valid_result})
        places = self.config["metric_decimal_place"]
        return valid_score, OrderedDict((key, round(value, places)) for key, value in valid_result.items())

    @contextmanager
    def _metrics_unrounded(self):
        """RecBole rounds every metric to ``metric_decimal_place`` (4) before early stopping compares
        them, so two epochs within 1e-4 tie and the later one counts as an improvement. The authors'
        code compares the unrounded NDCG@20: here the score is computed to 17 decimal places and
        the validation history keeps them; what is shown and returned stays rounded."""
        metrics = list(self.evaluator.metric_class.values())
        places = [metric.decimal_place for metric in metrics]
        for metric in metrics:
            metric.decimal_place = _FULL_PRECISION_PLACES
        try:
            yield
        finally:
            for metric, place in zip(metrics, places):
                metric.decimal_place = place

    def _generate_train_loss_output(self, epoch_idx, s_time, e_time, losses):
        """The log file's epoch line in the console's convention: each loss term's mean per batch
        (RecBole's line gives sums over the epoch's batches)."""
        places = self.config["loss_decimal_place"]
        terms = self.loss_terms(epoch_idx)
        parts = ", ".join(f"{set_color(name, 'blue')}: {value:.{places}f}" for name, value in terms.items())
        return (
            set_color(f"epoch {epoch_idx} training", "green")
            + f" [{set_color('time', 'blue')}: {e_time - s_time:.2f}s, {set_color('mean loss per batch', 'blue')}: "
            + f"{sum(terms.values()):.{places}f}" + (f" ({parts})" if len(terms) > 1 else "") + "]"
        )

    def _add_train_loss_to_tensorboard(self, epoch_idx, losses, tag="Loss/Train"):
        """Each term under its name (``Loss/Train/rec``, ``Loss/Train/ssa``, ...; RecBole's tags are
        ``Loss/Train0``, ...), as the mean per batch the console shows."""
        for name, value in self.loss_terms(epoch_idx).items():
            self.tensorboard.add_scalar(f"{tag}/{name}", value, epoch_idx)
