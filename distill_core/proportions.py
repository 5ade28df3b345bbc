"""The Wilson score interval of a proportion: the one formula behind the agreement intervals
(``agreement.wilson_interval``) and the corpus-share intervals (``estimate``)."""

from __future__ import annotations

import numpy as np


def wilson_bounds(p, n: float, z: float):
    """The Wilson score interval of proportions ``p`` on ``n`` trials at normal quantile ``z``,
    vectorised over ``p``."""
    p = np.asarray(p, dtype=float)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(np.maximum(p * (1 - p), 0.0) / n + z * z / (4 * n * n))
    return np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)
