"""The training loop of both GSAD stages and of distillation: :class:`Trainer` sets a run up (models,
data, run folder), then steps, logs, validates and saves.

The loss maths live in :mod:`gsad.losses.objectives`; the run folder's format in
:mod:`gsad.training.run_dir`; the data order and seeds in :mod:`gsad.training.order`; the EMA in
:mod:`gsad.training.ema`. This module only runs them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from gsad.checkpoints import LATEST_FILE, load_checkpoint, model_path, resolve_checkpoint, save_checkpoint
from gsad.config import from_dict
from gsad.data import PairedDataset, SyntheticDataset, find_pairs
from gsad.data.synthesize import named_ranges
from gsad.diffusion.schedules import training_schedule
from gsad.enhance.starts import start_estimate
from gsad.errors import CheckpointError, ConfigError, DataError, InputError, ModelOutputError
from gsad.files import os_reason, remove_stale_temporaries, write_text_output
from gsad.losses.objectives import gsad_objective, stage1_objective
from gsad.network.inference_net import PRECISIONS, InferenceNet
from gsad.network.unet import UNet
from gsad.runtime.distributed import Context, cleanup, setup, wrap_model
from gsad.training.config import TrainConfig
from gsad.training.distill import distill_objective
from gsad.training.ema import EMA
from gsad.training.order import EpochItems, StepSampler, collate, step_seed
from gsad.training.run_dir import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LOG_FILE,
    STATE_FORMAT,
    UNCERTAINTY_FILE,
    check_fresh_run_dir,
    default_run_dir,
    finite,
    mark_run_dir,
    newest_intact_state,
    read_log,
    write_state,
)

log = logging.getLogger(__name__)

__all__ = ["Trainer", "train"]

LOSS_NAMES = {
    "uncertainty": ("loss",),
    "gsad": ("loss", "loss_pix", "loss_structure"),
    "distill": ("loss", "loss_distill", "loss_gt"),
}


def _load_images(pairs: list, count: int | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from gsad.imaging.io import read_image

    images = []
    for pair in sorted(pairs, key=lambda p: p.name)[:count]:
        low, high = read_image(pair.low), read_image(pair.high)
        if low.shape != high.shape:
            raise DataError(f"{pair.low} and {pair.high} differ in size")
        images.append((pair.name, low, high))
    return images


def _seed_weights(seed: int) -> None:
    """Seed the initial weights of a new network or head (inside train()'s forked RNG scope, so the
    caller's RNG is untouched)."""
    torch.manual_seed(int(np.random.SeedSequence([seed]).generate_state(1, dtype=np.uint64)[0]))


def _without_uncertainty_head(model: UNet) -> UNet:
    """A new U-Net with ``model``'s weights and architecture but no uncertainty head (stage 2 takes P
    from its frozen copy; a distilled student needs none)."""
    copy = UNet(dataclasses.replace(model.config, uncertainty_head=False))
    copy.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("uncertainty_head.")})
    return copy


class _LogWindow:
    """Loss sums and the step rate since the last log.csv row."""

    def __init__(self, size: int, device: torch.device) -> None:
        self.sums = torch.zeros(size, device=device)
        self.count, self.tick = 0, time.perf_counter()

    def add(self, losses: torch.Tensor) -> None:
        self.sums += losses
        self.count += 1

    def take(self, ctx: Context) -> tuple[list[float], float]:
        """(mean of each loss over the window and all ranks, steps per second); starts a new window."""
        means = (ctx.mean(self.sums) / self.count).tolist()
        rate = self.count / max(time.perf_counter() - self.tick, 1e-9)
        self.sums.zero_()
        self.count, self.tick = 0, time.perf_counter()
        return means, rate


class Trainer:
    """One training run (see :func:`train`); built on every rank of a torchrun job."""

    def __init__(self, config: TrainConfig, ctx: Context, resume: bool) -> None:
        self.ctx = ctx
        self.device = ctx.device
        self.stage = config.stage
        out = config.out or ctx.broadcast(default_run_dir(config.stage) if ctx.is_main else None)
        self.config = config = dataclasses.replace(config, out=str(out))
        self.run_dir = Path(out)
        self.ckpt_dir = self.run_dir / CHECKPOINT_DIR
        self.loss_names = LOSS_NAMES[config.stage]
        #: Columns of log.csv (the loss columns depend on the stage).
        self.log_header = ["step", *self.loss_names, "lr", "steps_per_s", "val_psnr"]
        self.schedule = training_schedule()

        # 1. Checks that need no model: run directory, data, validation data.
        if config.stage == "gsad" and config.init is None and not resume:
            raise ConfigError(
                "init: stage gsad starts from a stage-1 (uncertainty) model; give --init RUN_OR_CHECKPOINT"
            )
        self._check_distill_options()
        if not resume:  # a missing --init or --uncertainty fails before any data is read
            for name in (config.init, config.uncertainty):
                if name is not None:
                    resolve_checkpoint(model_path(name))
        if config.teacher is not None:
            resolve_checkpoint(model_path(config.teacher))
        self.resume_state = self._check_run_dir(resume)
        self.dataset = self._dataset()
        self.val_images = self._val_images()

        # 2. Models (stage 1: fresh or --init; stage 2: from --init, plus the frozen copy; distill:
        # the frozen teacher, and the student from --init, a network config or the teacher).
        self.frozen: UNet | None = None
        self.teacher: InferenceNet | None = None
        model = self._build_models(resume)
        stride = model.config.stride
        if config.crop % stride:
            raise ConfigError(f"crop: {config.crop} is not a multiple of the network's stride {stride}")
        self.model = model.to(self.device).train()
        self.ema = EMA(self.model, config.ema_decay, config.ema_start)
        self.net = wrap_model(self.model, ctx)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        use_fp16 = config.amp == "fp16"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_fp16)
        self.autocast_dtype = PRECISIONS.get(config.amp)  # None for "off"
        self.step = 0
        if self.resume_state is not None:
            self._load_state(*self.resume_state)

    # -- setup -------------------------------------------------------------------------

    def _check_run_dir(self, resume: bool) -> tuple[Path, dict[str, Any]] | None:
        """The state to resume from; for a fresh run, check that ``out`` may be (re)used."""
        run = self.run_dir
        if resume:
            found = newest_intact_state(run, warn=self.ctx.is_main)
            if found is None:
                raise CheckpointError(
                    f"{run}: no saved training state to resume ({CHECKPOINT_DIR}/step_*.state.pt); "
                    "run the same command without --resume to start it afresh in this folder"
                )
            if (run / LATEST_FILE).exists():
                resolve_checkpoint(run)  # an unreadable 'latest' is the user's to look at, not to overwrite
            return found
        # A marked folder without a saved step: a run that stopped before its first checkpoint; its
        # files are ours to redo. Any other folder holding files is refused (run_dir.check_fresh_run_dir).
        if check_fresh_run_dir(run) and self.ctx.is_main:
            log.warning("%s: holds no saved training state yet; starting the run afresh in it", run)
        return None

    def _dataset(self) -> PairedDataset | SyntheticDataset:
        c = self.config
        if c.data is None:
            raise ConfigError("data: no training data given (use --data DIR)")
        root = Path(c.data)
        if not root.is_dir():
            raise DataError(f"{root}: no such data folder")
        common = {"crop": c.crop, "flip": c.flip, "seed": c.seed, "cache": c.cache, "min_scale": c.min_scale}
        if c.synthetic:
            dataset: PairedDataset | SyntheticDataset = SyntheticDataset(root, ranges=named_ranges(c.ranges), **common)
        else:
            dataset = PairedDataset(find_pairs(root, c.layout, "train"), **common)
        dataset[0]  # fail early (one line) on unreadable or too small images, not in a worker
        return dataset

    def _val_images(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        c = self.config
        if c.val_data is None:
            return []
        root = Path(c.val_data)
        if not root.is_dir():
            raise DataError(f"{root}: no such validation folder")
        pairs = find_pairs(root, "auto", "test")  # checked on every rank; images read by rank 0 only
        return _load_images(pairs, c.val_count) if self.ctx.is_main else []

    def _check_distill_options(self) -> None:
        c = self.config
        if c.stage != "distill":
            if c.teacher is not None:
                raise ConfigError(f"teacher: only stage distill learns from a teacher (this is stage {c.stage})")
            return
        if c.teacher is None:
            raise ConfigError("teacher: stage distill learns from a trained model; give --teacher CHECKPOINT "
                              "(a .safetensors file, run folder, reference .pth, or default for the bundled model)")
        if c.init is not None and c.network is not None:
            raise ConfigError("network: the student of --init has that model's architecture; give either --init "
                              "or a network section, not both")

    def _build_models(self, resume: bool) -> UNet:
        c = self.config
        if self.stage == "distill":
            teacher, self.teacher_sampler, _ = load_checkpoint(model_path(c.teacher))
            self.teacher = InferenceNet(teacher.to(self.device).eval().requires_grad_(False))
        if self.stage == "gsad":
            if resume:
                source = self.run_dir / UNCERTAINTY_FILE
                frozen, _, _ = load_checkpoint(source)
            else:
                source = resolve_checkpoint(model_path(c.uncertainty or c.init))
                frozen, _, _ = load_checkpoint(source)
            if frozen.uncertainty_head is None:
                flag = "--uncertainty" if c.uncertainty is not None else "--init"
                raise CheckpointError(
                    f"{source}: has no uncertainty head; stage gsad needs a stage-1 (uncertainty) model "
                    f"as {flag}" + ("" if c.uncertainty is not None else
                                    " (to continue from a stage-2 model, give the stage-1 model as --uncertainty)")
                )
            self.frozen = frozen.to(self.device).eval().requires_grad_(False)
            self.frozen_source = source
            # The stage-2 network needs no uncertainty head: P comes from the frozen copy.
            if resume or c.uncertainty is None:
                return _without_uncertainty_head(frozen)
            return self._stage2_start(frozen)
        if resume and (self.run_dir / LATEST_FILE).exists():
            # The architecture of the run's own checkpoints; the weights come from the state.
            # (Without 'latest', a kill came before the first weights: build it as at the start.)
            model, _, _ = load_checkpoint(self.run_dir)
            return model.train()
        if self.stage == "distill":
            return self._student().train()
        if c.init is not None:
            source = resolve_checkpoint(model_path(c.init))
            model, _, _ = load_checkpoint(source)
            if model.uncertainty_head is None:
                # A stage-2 model: its U-Net, with a fresh (seeded) uncertainty head.
                _seed_weights(c.seed)
                headed = UNet(dataclasses.replace(model.config, uncertainty_head=True))
                missing, unexpected = headed.load_state_dict(model.state_dict(), strict=False)
                if unexpected or any(not k.startswith("uncertainty_head.") for k in missing):
                    raise CheckpointError(f"{source}: its weights do not fit a U-Net with an uncertainty head")
                log.info("%s has no uncertainty head: starting stage 1 from its U-Net with a new head", source)
                return headed.train()
            return model.train()
        _seed_weights(c.seed)
        return UNet(c.network_config())

    def _stage2_start(self, frozen: UNet) -> UNet:
        """Stage 2 with its own ``uncertainty`` model: the network starts from ``init``'s weights
        (a stage-1 or stage-2 model), which must have the frozen model's architecture."""
        source = resolve_checkpoint(model_path(self.config.init))
        start, _, _ = load_checkpoint(source)
        start = _without_uncertainty_head(start)
        if start.config != dataclasses.replace(frozen.config, uncertainty_head=False):
            raise CheckpointError(
                f"{source}: its network differs from the uncertainty model {self.frozen_source}'s; "
                "stage gsad continues a model of the same architecture"
            )
        return start

    def _student(self) -> UNet:
        """The distilled student at the start: the --init model, a fresh network of the config's
        ``network`` section, or a copy of the teacher; without an uncertainty head (unused here)."""
        c = self.config
        if c.init is not None:
            model, _, _ = load_checkpoint(model_path(c.init))
        elif c.network is not None:
            _seed_weights(c.seed)
            model = UNet(c.network_config())
        else:
            model = self.teacher.unet
        return _without_uncertainty_head(model)

    def _load_state(self, path: Path, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointError(f"{path}: training state does not fit this run ({first})") from None
        self.step = int(state["step"])
        self.resumed_config = state.get("config", self.config.to_dict())
        log.info("resuming %s from step %d", self.run_dir, self.step)

    # -- files (rank 0) ----------------------------------------------------------------

    def _write_start_files(self) -> None:
        import yaml

        mark_run_dir(self.run_dir)  # first: the folder is gsad's from here on
        self._remove_stale_temporaries()
        write_text_output(self.run_dir / CONFIG_FILE, yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        # A fresh run (re)writes the frozen model: a folder being reused may hold another --init's.
        if self.frozen is not None and (self.resume_state is None or not (self.run_dir / UNCERTAINTY_FILE).exists()):
            save_checkpoint(
                self.run_dir / UNCERTAINTY_FILE, self.frozen, self.config.sampler, {"source": str(self.frozen_source)}
            )
        rows = self._logged_rows() if self.resume_state is not None else []
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.log_header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)  # a resumed run drops the rows logged after its state was saved
        write_text_output(self.run_dir / LOG_FILE, buffer.getvalue())

    def _logged_rows(self) -> list[dict[str, str]]:
        """The log.csv rows of a resumed run up to its state's step."""
        rows = []
        for number, row in enumerate(read_log(self.run_dir), start=2):
            step = (row.get("step") or "").strip()
            if not step.isdigit():
                raise CheckpointError(f"{self.run_dir / LOG_FILE}: line {number}: the step {step!r} is not a whole "
                                      "number (not a gsad log); repair or remove the line")
            if int(step) <= self.step:
                rows.append(row)
        return rows

    def _remove_stale_temporaries(self) -> None:
        """Remove the temporaries of gsad's own run files that a killed run left behind."""
        names = "|".join(re.escape(n) for n in (CONFIG_FILE, LOG_FILE, LATEST_FILE, UNCERTAINTY_FILE))
        removed = remove_stale_temporaries(self.run_dir, names)
        removed += remove_stale_temporaries(self.ckpt_dir, r"step_[0-9]+\.(?:state\.pt|safetensors)")
        for path in removed:
            log.info("removed %s, left by a killed run", path)

    def _repair_resumed_step(self) -> None:
        """Write the weights and ``latest`` of the resumed state's step when a kill came before them."""
        name = f"step_{self.step:07d}"
        weights = self.ckpt_dir / f"{name}.safetensors"
        if not weights.is_file():
            log.warning("%s: missing (the run was stopped while saving); writing it from %s.state.pt", weights, name)
            self._save_weights(name, self.resumed_config)
        if (self.run_dir / LATEST_FILE).exists() and resolve_checkpoint(self.run_dir) == weights:
            return
        write_text_output(self.run_dir / LATEST_FILE, f"{CHECKPOINT_DIR}/{name}.safetensors\n")

    def _append_log(self, row: dict[str, Any]) -> None:
        path = self.run_dir / LOG_FILE
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self.log_header, lineterminator="\n").writerow(row)
        size = path.stat().st_size if path.exists() else 0
        try:
            with open(path, "ab") as fh:
                fh.write(buffer.getvalue().encode("utf-8"))
        except OSError as exc:
            try:  # a full disk: leave the log as it was, without half a row
                os.truncate(path, size)
            except OSError:
                pass
            raise InputError(f"{path}: cannot write ({os_reason(exc)})") from None

    def _save(self) -> None:
        name = f"step_{self.step:07d}"
        state = {
            "format": STATE_FORMAT,
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "config": self.config.to_dict(),
            # The data position is the step: global batch s holds stream items s*B .. s*B+B-1.
            "data_position": self.step * self.config.batch_size,
            "world_size": self.ctx.world_size,
        }
        # State, weights, latest: a kill between them is repaired on --resume (_repair_resumed_step).
        write_state(self.ckpt_dir / f"{name}.state.pt", state)
        self._save_weights(name, self.config.to_dict())
        write_text_output(self.run_dir / LATEST_FILE, f"{CHECKPOINT_DIR}/{name}.safetensors\n")
        # Prune older states only: a newer one is an unreadable file skipped on resume, replaced
        # when this run reaches its step, and must not push the good states out.
        older = [p for p in sorted(self.ckpt_dir.glob("step_*.state.pt")) if p.name <= f"{name}.state.pt"]
        for old in older[: -self.config.keep_states]:
            old.unlink()

    def _save_weights(self, name: str, config: dict[str, Any]) -> None:
        notes = {"stage": self.stage, "step": self.step, "config": config}
        save_checkpoint(self.ckpt_dir / f"{name}.safetensors", self.ema.model, self.config.sampler, notes)

    def validate(self) -> float:
        """Mean PSNR (8-bit) of the EMA model's enhancements of the validation pairs."""
        from gsad.enhance.enhancer import Enhancer
        from gsad.evaluation.metrics import psnr

        enhancer = Enhancer.from_model(self.ema.model, self.config.sampler, device=self.device, precision="fp32")
        scores = [psnr(enhancer.enhance(low), high) for _, low, high in self.val_images]
        return float(np.mean(scores))

    # -- loop --------------------------------------------------------------------------

    def _objective(self, low: torch.Tensor, high: torch.Tensor, generator: torch.Generator):
        c = self.config
        if self.stage == "distill":
            return distill_objective(
                self.net, self.teacher, low, high, c.sampler, self.teacher_sampler, generator,
                stride=self.model.config.stride, loss=c.distill_loss, gt_weight=c.gt_weight,
            )
        # Warm-start training noises some samples from the start estimate of each crop: the
        # validation sampler's warm start (exposure, soft-exposure or learned-exposure), exposure when it is noise.
        kind = c.sampler.start if c.sampler.start != "noise" else "exposure"
        start = start_estimate(low, kind, 1).to(low.device) if c.warm_start > 0 else None
        options = {"weighting": c.loss_weighting, "start": start, "warm_start": c.warm_start}
        if self.stage == "uncertainty":
            return stage1_objective(self.net, low, high, self.schedule, generator, **options)
        return gsad_objective(
            self.net, self.frozen, low, high, self.schedule, generator,
            structure_weight=c.structure_weight, num_clusters=c.num_clusters, patch_size=c.patch_size, **options,
        )

    def _autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _loader(self) -> DataLoader:
        """Batches of this rank from the current step to ``max_steps`` (:class:`StepSampler`)."""
        c, ctx = self.config, self.ctx
        sampler = StepSampler(len(self.dataset), c.batch_size, c.seed, self.step, c.max_steps, ctx)
        return DataLoader(
            EpochItems(self.dataset), batch_size=c.batch_size // ctx.world_size, sampler=sampler,
            num_workers=c.num_workers, pin_memory=self.device.type == "cuda", collate_fn=collate,
        )

    def _train_step(self, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One optimisation step on ``batch``; returns the step's logs (detached scalars)."""
        if "error" in batch:
            raise batch["error"]
        # 1. the step's own seeds (noise with seed + rank; see the module docstring)
        seed = step_seed(self.config.seed + self.ctx.rank, self.step)
        generator.manual_seed(seed)
        torch.manual_seed(seed)
        # 2. data [0, 1] -> network range [-1, 1]
        low = batch["low"].to(self.device, non_blocking=True) * 2.0 - 1.0
        high = batch["high"].to(self.device, non_blocking=True) * 2.0 - 1.0
        # 3. loss, update, EMA
        with self._autocast():
            loss, logs = self._objective(low, high, generator)
        self._check_loss(loss)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        self.ema.update(self.model, self.step)
        return logs

    def _check_loss(self, loss: torch.Tensor) -> None:
        """Stop a diverged run: a loss that is not finite on any rank ends the run on every rank, before
        the update, with one line naming the step and the newest good state."""
        ok = bool(torch.isfinite(loss.detach()).all())
        if not self.ctx.all_ok(ok):
            what = f"the loss is {loss.item():g}" if not ok else "the loss is not finite on another process"
            raise self._diverged(self.step + 1, what)

    def _check_weights(self) -> None:
        """Non-finite weights (model or EMA) are never validated or saved. The ranks' weights are equal
        (DDP), so every rank comes to the same answer."""
        if not (finite(self.model.state_dict()) and finite(self.ema.state_dict())):
            raise self._diverged(self.step, "the weights are not finite")

    def _diverged(self, step: int, what: str) -> ModelOutputError:
        try:
            found = newest_intact_state(self.run_dir, warn=False)
        except CheckpointError:
            found = None
        if found is None:
            newest = "no state was saved before it"
        else:
            newest = f"the newest good state is {found[0]} (step {found[1]['step']}), where --resume continues"
        return ModelOutputError(f"{self.run_dir}: training diverged at step {step} ({what}); nothing of it was "
                                f"saved; {newest}; a smaller --lr may help")

    def _after_step(self, logs: dict[str, torch.Tensor], window: _LogWindow, bar: Any) -> None:
        """4. progress bar, log.csv row (means over the steps since the last row), validation, checkpoint."""
        c, ctx = self.config, self.ctx
        window.add(torch.stack([logs[k] for k in self.loss_names]))
        if self.step % max(1, min(10, c.log_every)) == 0:
            bar.set_postfix({k: f"{logs[k].item():.4g}" for k in self.loss_names}, refresh=False)
        bar.update(1)
        last = self.step == c.max_steps
        do_val = bool(self.val_images or c.val_data) and (self.step % c.val_every == 0 or last)
        save = self.step % c.checkpoint_every == 0 or last
        if do_val or save:
            self._check_weights()
        if self.step % c.log_every == 0 or last or do_val:
            means, rate = window.take(ctx)
            row: dict[str, Any] = {"step": self.step, "lr": c.lr, "steps_per_s": f"{rate:.4g}"}
            row.update({k: f"{v:.6g}" for k, v in zip(self.loss_names, means)})
            if ctx.is_main:
                if do_val:
                    row["val_psnr"] = f"{self.validate():.4f}"
                    bar.write(f"step {self.step}: val PSNR {row['val_psnr']} dB")
                self._append_log(row)
        if ctx.is_main and save:
            self._save()

    def run(self, callback: Callable[[int, dict[str, torch.Tensor]], None] | None = None) -> Path:
        """Train from the current step to ``max_steps``; ``callback(step, logs)`` after every step."""
        c, ctx = self.config, self.ctx
        if ctx.is_main:
            self._write_start_files()
            if self.resume_state is not None:
                self._repair_resumed_step()
        ctx.barrier()
        if self.step >= c.max_steps:
            log.info("%s: already at step %d of %d", self.run_dir, self.step, c.max_steps)
            return self.run_dir

        from tqdm import tqdm

        if ctx.is_main and self.step:
            tqdm.write(f"resuming {self.run_dir} at step {self.step}")
        generator = torch.Generator()
        window = _LogWindow(len(self.loss_names), self.device)
        bar = tqdm(total=c.max_steps, initial=self.step, desc=self.stage, unit="step", dynamic_ncols=True,
                   disable=not ctx.is_main)
        with bar:
            for batch in self._loader():
                logs = self._train_step(batch, generator)
                self._after_step(logs, window, bar)
                if callback is not None:
                    callback(self.step, logs)
        ctx.barrier()
        return self.run_dir


def train(
    config: TrainConfig,
    resume: bool = False,
    callback: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
) -> Path:
    """Train one stage as configured; returns the run directory.

    Under ``torchrun`` every process calls this; the process group is set up and torn
    down here. ``resume`` continues ``config.out`` from its newest state file.
    ``callback(step, logs)`` runs after every step (on every rank).

    Raises:
        ConfigError, DataError, CheckpointError: bad options, data or checkpoints.
    """
    config = from_dict(TrainConfig, config.to_dict(), "config")  # revalidate (e.g. after replace())
    ctx = setup(config.device)
    try:
        devices = [ctx.device.index or 0] if ctx.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            trainer = Trainer(config, ctx, resume)
            return trainer.run(callback)
    finally:
        cleanup(ctx)
