"""tf.distribute: MirroredStrategy over 2 logical CPUs and a real 2-process MultiWorkerMirroredStrategy.

Both must take the same steps as one device on the same global batch: the loss
noise travels with the examples, per-example losses are divided by the global
batch and gradients are summed over replicas.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ncsn_tf import checkpoints, configs, trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = [
    "model.mlp_hidden=32",
    "model.mlp_layers=2",
    "noise.num_levels=4",
    "training.batch_size=32",
    "training.steps=5",
    "training.checkpoint_every=3",
    "training.ema_rate=0.9",
    "sampling.steps_per_level=2",
    "sampling.num_samples=8",
]
TOLERANCE = 1e-6  # measured: 3e-8 (Mirrored, 2 replicas) and 3e-8 (2 workers) after 5 Adam steps


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    # Two logical CPU devices; must happen before TensorFlow initialises.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from ncsn_tf import configs, trainer

    workdir, overrides = sys.argv[1], sys.argv[2:]
    config = configs.apply_overrides(configs.get_config("toy"), overrides)
    single = trainer.train(config, workdir + "/single", strategy=tf.distribute.get_strategy(), progress=False)
    mirrored_strategy = trainer.select_strategy("mirrored")
    mirrored = trainer.train(config, workdir + "/mirrored", strategy=mirrored_strategy, progress=False)

    def max_diff(a, b):
        return max(float(np.abs(x.numpy() - y.numpy()).max()) for x, y in zip(a.weights, b.weights, strict=True))

    odd = configs.apply_overrides(config, ["training.batch_size=33"])
    try:
        trainer.train(odd, workdir + "/odd", strategy=mirrored_strategy, progress=False)
        odd_error = None
    except trainer.TrainingError as error:
        odd_error = str(error)
    print(json.dumps({
        "replicas": mirrored_strategy.num_replicas_in_sync,
        "steps": [single.step, mirrored.step],
        "losses": [single.loss, mirrored.loss],
        "weights": max_diff(single.model, mirrored.model),
        "ema": max_diff(single.ema_model, mirrored.ema_model),
        "moved": max_diff(single.model, single.ema_model),
        "odd_error": odd_error,
    }))
    """
)


def test_mirrored_on_two_logical_cpus_equals_one_device(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path), *TOY],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["steps"] == [5, 5]
    assert report["losses"][0] == pytest.approx(report["losses"][1], rel=1e-5)
    assert report["weights"] <= TOLERANCE
    assert report["ema"] <= TOLERANCE
    assert report["moved"] > 1e-4  # the runs trained: weights and EMA differ
    assert "does not split evenly over 2 replicas" in report["odd_error"]
    assert checkpoints.load_for_inference(tmp_path / "mirrored")[2] == 5


WORKER_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ncsn_tf import configs, trainer

    workdir, out, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
    config = configs.apply_overrides(configs.get_config("toy"), overrides)
    result = trainer.train(config, workdir, progress=False)
    np.savez(out, step=result.step, *[w.numpy() for w in result.model.weights])
    """
)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
@pytest.mark.multiworker
def test_two_worker_processes_on_loopback_agree_with_each_other_and_one_device(tmp_path):
    workdir = tmp_path / "run"
    worker_tmp = tmp_path / "worker_tmp"  # where the non-chief writes its throwaway checkpoints
    worker_tmp.mkdir()
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    overrides = [*TOY, "training.strategy=multi_worker"]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER_SCRIPT, str(workdir), str(tmp_path / f"worker{index}.npz"), *overrides],
                env=_env(TF_CONFIG=tf_config, TMPDIR=str(worker_tmp)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]

    chief, other = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    assert int(chief["step"]) == int(other["step"]) == 5
    names = [f"arr_{i}" for i in range(len(chief.files) - 1)]  # np.savez names positional arrays arr_0, arr_1, ...
    for name in names:
        np.testing.assert_array_equal(chief[name], other[name])

    # The chief wrote the real workdir; the other worker's temporary checkpoints are gone.
    assert sorted(os.listdir(workdir / "checkpoints")) == ["checkpoint", *sorted(
        f"ckpt-{n}.{ext}" for n in (3, 5) for ext in ("data-00000-of-00001", "index"))]  # fmt: skip
    assert not [p for p in os.listdir(worker_tmp) if p.startswith("ncsn_worker")]
    assert os.path.isfile(workdir / "samples" / "final.png")
    _, loaded, step = checkpoints.load_for_inference(workdir, use_ema=False)
    assert step == 5
    for name, weight in zip(names, loaded.weights, strict=True):
        np.testing.assert_array_equal(chief[name], weight.numpy())

    # And they took the same steps as one device on the same global batch.
    config = configs.apply_overrides(configs.get_config("toy"), [*TOY, "training.strategy=default"])
    single = trainer.train(config, tmp_path / "single", progress=False, write_final_samples=False)
    difference = max(
        float(np.abs(chief[n] - w.numpy()).max()) for n, w in zip(names, single.model.weights, strict=True)
    )
    assert difference <= TOLERANCE
