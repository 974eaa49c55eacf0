"""Evaluation of trained score models, one job per module (the CLI is `ncsn_tf.evaluate`).

- `generator`: `Generator`, the one interface every other module works on (sample,
  score, ladder, sampler defaults), and `generator_from_model` for in-memory models.
- `loading`: a training workdir, checkpoint or export folder into a `Generator`
  (the only module here that reads an export).
- `draw`: seeded samples in batches, and the sampler settings a run uses.
- `objective`: the held-out denoising score matching loss per noise level.
- `dataset_metrics`: sample quality per kind of data (digits, toy, Inception).
- `report`: the side-by-side table and the JSON files.
- `pipeline`: one model or several, composed from the above.

Figures (sample grids, toy scatter and density pictures) live in `ncsn_tf.figures`.
This package imports nothing at import time, so importing one module stays cheap.
"""
