"""evaluation.report: the side-by-side table (paired differences by hand) and the JSON writer."""

import json

import numpy as np

from ncsn_tf.evaluation.report import comparison_table, headline, write_json


def _result(model: str, sigmas=(2.0, 1.0), total: float = 1.0) -> dict:
    return {
        "model": model,
        "step": 7,
        "sigmas": list(sigmas),
        "metrics": {"mode_weights": [0.25, 0.75], "mmd2": 0.01},
        "held_out_loss": {"total": total},
    }


def test_one_model_table_has_headline_and_per_level_rows():
    table = comparison_table([_result("runs/a")], [np.array([[1.0, 3.0], [0.5, 0.5]])])
    lines = table.splitlines()
    assert lines[0].split() == ["runs/a"]
    assert lines[1].split() == ["step", "7"]
    assert "mode weight (-5,-5)  0.25" in table
    assert lines[-2].split() == ["loss", "@", "sigma=2", "2"] and lines[-1].split() == ["loss", "@", "sigma=1", "0.5"]
    assert "diff" not in table and "[1]" not in table


def test_paired_difference_and_its_standard_error():
    first = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])  # [L, N]
    second = first + np.array([[0.2, 0.4, 0.2, 0.4], [0.0, 0.0, 0.0, 0.0]])  # per-example totals +0.1, +0.2, ...
    table = comparison_table([_result("a"), _result("b")], [first, second])
    differences = np.array([0.1, 0.2, 0.1, 0.2])
    error = differences.std(ddof=1) / np.sqrt(4)
    assert "loss diff [2] - [1]" in table and f"{differences.mean():+.4g} +- {error:.2g}" in table
    assert table.splitlines()[-2:] == ["[1] a", "[2] b"]  # the legend


def test_different_ladders_are_not_compared_level_by_level():
    table = comparison_table([_result("a"), _result("b", sigmas=(3.0, 1.0))], [np.ones((2, 4)), np.ones((2, 4))])
    assert table.startswith("note: the models use different sigma ladders")
    assert "loss @" not in table and "loss diff" not in table


def test_headline_rows_per_kind_of_result():
    digits = {
        "step": 3,
        "metrics": {
            "samples": {
                "frechet_distance": 1.5, "frechet_distance_matched": 1.7, "matched_count": 360,
                "confident_share": 0.8, "mean_entropy": 0.3, "min_class_share": 0.05, "max_class_share": 0.15,
            }
        },
        "sampler": {"seconds": 2.0},
        "held_out_loss": {"total": 0.9},
    }  # fmt: skip
    assert list(headline(digits)) == [
        "step", "classifier FD", "classifier FD (n=360)", "confident share (>0.9)", "mean entropy",
        "min class share", "max class share", "sampling seconds", "held-out DSM loss",
    ]  # fmt: skip
    loss_only = {"step": None, "held_out_loss": {"total": 0.5}}
    assert headline(loss_only) == {"step": None, "held-out DSM loss": 0.5}


def test_write_json_round_trips_and_creates_folders(tmp_path):
    path = write_json({"a": [1, 2.5], "b": None}, tmp_path / "deep" / "er" / "x.json")
    assert json.loads(path.read_text()) == {"a": [1, 2.5], "b": None}
    assert path.read_text().endswith("}\n")
