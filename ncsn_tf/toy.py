"""The paper's 2-D toy experiment (Song & Ermon 2019, Section 3.2, Figure 3): its constants, once.

Data: 0.2 N((-5, -5), I) + 0.8 N((5, 5), I). Chains start uniformly on [-8, 8]^2.
Plain Langevin: step 0.1 for 1000 steps. Annealed Langevin: sigma geometric
20 -> 1 over 10 levels, 100 steps per level, alpha_i = 0.1 sigma_i^2 / sigma_L^2,
the paper's step convention x += (alpha / 2) s + sqrt(alpha) z.

Pure constants (no TensorFlow): `configs.toy()`, the data pipeline, the exact
score model, the exporter and the experiments all read them from here.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = np.array([0.2, 0.8], dtype=np.float64)  # mixture weights, sum to 1
MEANS = np.array([[-5.0, -5.0], [5.0, 5.0]], dtype=np.float64)  # [2 components, 2 dims]
STD = 1.0  # each component has covariance STD^2 * I
START_RANGE = (-8.0, 8.0)  # chains start uniformly on [low, high)^2
SIGMA_MAX, SIGMA_MIN, NUM_LEVELS = 20.0, 1.0, 10  # the annealed ladder
STEPS_PER_LEVEL = 100  # T
EPSILON = 0.1  # alpha_i = 0.1 * sigma_i^2 / sigma_L^2
CONVENTION = "paper"  # x += (alpha / 2) s + sqrt(alpha) z, as printed
NUM_CHAINS = 1280  # chains in Figure 3
LANGEVIN_STEP = 0.1  # plain Langevin: alpha = 0.1 ...
LANGEVIN_STEPS = 1000  # ... for 1000 steps
