"""Running an export through `export_format.load`: cancelling calls in onnxruntime.

A cancel can land between a chunked run's stop check and its next endpoint call; the
ONNX runner remembers it and stops that call, and `clear_interrupt()` (which the app's
worker calls before each new run) forgets a cancel no call has consumed.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import export_format
from export_format import RunInterrupted


def test_an_interrupt_while_nothing_runs_stops_the_next_call_once(toy_export_dir):
    sampler = export_format.load(toy_export_dir, "onnxruntime")
    expected = sampler.sample([3, 4], steps_per_level=2)  # [2, 2]
    sampler.interrupt()  # nothing runs: remembered
    with pytest.raises(RunInterrupted, match="cancelled"):
        sampler.sample([3, 4], steps_per_level=2)
    np.testing.assert_array_equal(sampler.sample([3, 4], steps_per_level=2), expected)  # consumed once
    sampler.interrupt()
    sampler.clear_interrupt()  # a new run starts clean
    np.testing.assert_array_equal(sampler.sample([3, 4], steps_per_level=2), expected)


def test_an_interrupt_during_a_long_call_stops_it(toy_export_dir):
    sampler = export_format.load(toy_export_dir, "onnxruntime")
    sampler.sample([0], steps_per_level=1)  # sessions warm
    failure: list[BaseException] = []

    def run() -> None:
        try:
            sampler.sample(np.arange(256), steps_per_level=100_000)  # hours if not stopped
        except BaseException as error:  # noqa: BLE001 (the test inspects it)
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    sampler.interrupt()
    thread.join(timeout=120)
    assert not thread.is_alive() and len(failure) == 1 and isinstance(failure[0], RunInterrupted), failure
    sampler.sample([0], steps_per_level=1)  # the sampler still works


def test_tensorflow_runs_ignore_interrupts_between_calls(toy_export_dir):
    sampler = export_format.load(toy_export_dir, "tensorflow")
    sampler.interrupt()  # TensorFlow cannot stop a call; nothing is remembered either
    assert sampler.sample([1], steps_per_level=1).shape == (1, 2)
