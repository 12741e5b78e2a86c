"""Training, shared by every lab.

- `loop`: `fit(model, loaders, recipe, callbacks=...)`, the one training loop, and `evaluate`;
- `recipe`: `Recipe` (optimiser, schedule, epochs, batch, accumulation, early stop) and
  `build_optimizer`, its one optimiser and schedule;
- `steps`: what a batch is scored by (`Task`), a training step, mixed precision, and the errors
  that name a remedy (a non-finite loss, out of memory);
- `callbacks`: the state callbacks see and the pieces labs use: progress bars, checkpoints with
  an exact resume, the best epoch's weights;
- `runs`: a run's identity (its settings and their digest); `checkpoint`: atomic files and RNG
  state; `distributed`: DDP under torchrun; `loaders`: seeded data loaders;
- `memory`: the memory of a training step; `metrics`: accuracy; `model_utils`: a model's mode
  and device.
"""
