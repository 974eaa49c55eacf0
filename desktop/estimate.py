"""How long a run will take: measured seconds per network call, per model and batch size. No Qt.

A run's time is (network calls of the run) x (seconds per call). The seconds
per call are measured: by a two-call probe when a model is opened, and on
every run (the run's time divided by its calls), remembered per model (path,
runtime, device) and batch size. For a batch size not measured yet the nearest
measured one is scaled in proportion to the batch (a call's work grows with the
number of images), so that estimate is marked as rough.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from export_format import safe_json

MAX_MODELS = 32  # remembered models (oldest forgotten first)
MAX_BATCHES_PER_MODEL = 16
MAX_TIMINGS_CHARS = 64 * 1024  # the remembered timings as JSON in the settings file
SMOOTHING = 0.5  # weight of a new measurement against the remembered one (runs vary on a shared machine)


@dataclass(frozen=True)
class Estimate:
    """A predicted run time.

    Attributes:
        seconds: predicted seconds for the whole run.
        measured: True when this exact batch size was measured for this model,
            False when scaled from another batch size.
    """

    seconds: float
    measured: bool


class CallTimes:
    """Seconds per network call, per model key and batch size (most recently used models kept)."""

    def __init__(self) -> None:
        self._times: dict[str, dict[int, float]] = {}

    def record(self, key: str, batch: int, calls: int, seconds: float) -> None:
        """Remember a measurement: `calls` network calls on `batch` images took `seconds`."""
        if calls < 1 or batch < 1 or not (math.isfinite(seconds) and seconds > 0):
            return
        per_call = seconds / calls
        times = self._times.pop(key, {})
        old = times.pop(batch, None)
        times[batch] = per_call if old is None else SMOOTHING * per_call + (1 - SMOOTHING) * old
        while len(times) > MAX_BATCHES_PER_MODEL:
            del times[next(iter(times))]
        self._times[key] = times  # most recent last
        while len(self._times) > MAX_MODELS:
            del self._times[next(iter(self._times))]

    def seconds_per_call(self, key: str, batch: int) -> tuple[float, bool] | None:
        """(seconds per call, measured for this batch) or None when the model was never measured."""
        times = self._times.get(key)
        if not times:
            return None
        if batch in times:
            return times[batch], True
        nearest = min(times, key=lambda b: (abs(math.log(b / batch)), b))
        return times[nearest] * batch / nearest, False

    def estimate(self, key: str, batch: int, calls: int) -> Estimate | None:
        """The predicted time of a run of `calls` network calls on `batch` images, if anything is known."""
        known = self.seconds_per_call(key, batch)
        if known is None:
            return None
        per_call, measured = known
        return Estimate(per_call * calls, measured)

    def to_json(self) -> str:
        return json.dumps({key: {str(b): t for b, t in times.items()} for key, times in self._times.items()})

    @classmethod
    def from_json(cls, text: str) -> CallTimes:
        """Timings written by `to_json`; anything malformed is skipped (it is only an estimate)."""
        times = cls()
        try:
            data = safe_json.loads(text, source="remembered timings", max_bytes=MAX_TIMINGS_CHARS, max_depth=4)
        except ValueError:
            return times
        if not isinstance(data, dict):
            return times
        for key, batches in list(data.items())[-MAX_MODELS:]:
            if not isinstance(key, str) or not isinstance(batches, dict):
                continue
            clean = {}
            for batch, seconds in list(batches.items())[-MAX_BATCHES_PER_MODEL:]:
                if (
                    isinstance(batch, str)
                    and batch.isdigit()
                    and 1 <= int(batch) <= 1_000_000
                    and isinstance(seconds, (int, float))
                    and not isinstance(seconds, bool)
                    and math.isfinite(seconds)
                    and seconds > 0
                ):
                    clean[int(batch)] = float(seconds)
            if clean:
                times._times[key] = clean
        return times


def format_duration(seconds: float) -> str:
    """A short human duration: "0.04 s", "0.4 s", "2.5 s", "12 s", "3 min 05 s", "2 h 10 min"."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 1:
        return f"{seconds:.1g} s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{round(seconds)} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
