"""Speed of the training path, measured side by side in one process (`python -m src.bench`),
and the GPU acceptance check (`python -m src.bench --suite gpu`, gpu.py).

What is measured (speed.py; PreResNet32, CIFAR-shaped synthetic images, batch 128 unless
--batch; each contender timed by torch.utils.benchmark.Timer: warmed up, on the process's
threads, the device synchronised, the mean of --rounds runs):

* overhead_ratio: ms/step of src.engine.loop.fit as training runs it (loader augmentations,
  scale-invariance metrics every 10 steps with one tracked tensor, the end-of-epoch checks)
  over ms/step of a bare PyTorch loop (plain SGD on one fixed, pre-made batch). fit evaluates
  at the end of the epoch: the test set is one image and BN recalibration is off, so that
  evaluation stays out of the ratio.
* overhead_ratio_all_sets: overhead_ratio with every invariant set's own metrics
  (trainer.track_params=all, the rotational equilibrium's records).
* loader_speedup: images/s of TensorLoader (on-device pad-crop, flip, normalise) over
  torchvision's usual path (PIL image per item, RandomCrop, RandomHorizontalFlip, ToTensor,
  Normalize, DataLoader with W workers, batches moved to the device), one epoch of the same
  images each.
* the fast mode built up one switch at a time (`switches`): fp32 eager (the run of
  overhead_ratio), + channels_last, + bf16 (only where the device computes it natively, unless
  --bf16 on), + torch.compile; each rung's images/s and its gain over the rung before. The
  last rung is the fast mode (trainer=fast), fast_speedup its gain over fp32 eager; the time of
  a CIFAR-10 epoch (50,000 images) is extrapolated from the time per step. compile_s: the
  compiled rung's first step (compilation included: a cold cache costs most of it);
  recompiles: graphs compiled after it (0 when nothing recompiles). With --compile-modes each
  mode is one more compiled contender.
* resolution_speedup: ms/step of fit on 3x32x32 images (the run of overhead_ratio) over
  ms/step on 3x8x8 images, the embedded digits' own size (the PreResNets' stages then run at
  8, 4 and 2 pixels instead of 32, 16 and 8).
* mini: the miniature's update (budget=mini's batch of 32, fp32, 8x more updates a timed run):
  ms/update at 8x8 and 16x16 (a figure that needs spatial extent pays cost_16px_over_8px), and
  at 8x8 with torch.compile alone (compile_speedup_8px; not with --no-compile); the bare loop
  at 8x8 against 5 copies of the model updated as one through torch.func's vmap, each on its
  own batch (stacking_speedup_8px: what training a curve's 5 seeds together would gain).

Timings depend on what else the machine runs: compare numbers from one run, not across runs.
"""
