"""Bounds of the export contract that the graphs, the Python API and the app share (defined once).

The in-graph samplers count loop iterations and noise steps in int32, so a run's
levels x network calls per level must stay below 2^31: past it the counters would
wrap and a graph would silently return its input. The Python API rejects larger
settings with a one-line error; the graphs also clamp (a graph cannot raise).

The manifest bounds reject values no export of ours can have (a manifest is
untrusted data: `image_shape` [1e6, 1e6, 1] would ask a reader for terabytes);
docs/export.md states them.
"""

from __future__ import annotations

INT32_MAX = 2**31 - 1
SEED_MIN, SEED_MAX = -(2**31), 2**31 - 1  # seeds [B] int32; the app draws them from [0, SEED_MAX]
MAX_LOOP_ITERATIONS = INT32_MAX  # levels x iterations per level of one in-graph run (int32 counters)

# Manifest bounds (docs/export.md, "Bounds").
MAX_IMAGE_SIDE = 4096  # H and W of one image
MAX_CHANNELS = 4  # C of one image (our datasets: 1 or 3)
MAX_POINT_DIMENSIONS = 4096  # D of a point model's [D] examples (the toy: 2)
MAX_VALUES_PER_EXAMPLE = 2**24  # H x W x C: 64 MiB of float32 per image
MAX_LEVELS = 10_000  # noise levels L (the paper: 10)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # a manifest is a few kB (the training config included)


def max_steps_per_level(num_levels: int, iterations_per_step: int = 1) -> int:
    """The largest per-level step count whose run fits the int32 counters (>= 1 for any sane ladder)."""
    if num_levels < 1 or iterations_per_step < 1:
        raise ValueError(f"need num_levels >= 1 and iterations_per_step >= 1, got {num_levels}, {iterations_per_step}")
    return max(1, MAX_LOOP_ITERATIONS // (num_levels * iterations_per_step) - 1)  # -1: room for a final step
