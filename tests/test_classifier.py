"""The digits classifier: accurate on held-out digits, not fooled by non-digits, reproducible."""

import numpy as np
import pytest

from ncsn_tf import classifier as digits_classifier
from ncsn_tf import metrics
from ncsn_tf.data import digits_arrays

# Fresh draws for the "not fooled" tests: seeds far from the training negatives' (TRAIN_SEED + 1000..1002).
TEST_NEGATIVES_SEED = 777_000
NEGATIVES_PER_TEST = 1000
# The bar: a logistic regression gave > 0.9 to 17-34% of such inputs, an RBF SVM to
# under 0.5%. 1% of 1,000 draws separates the two by a wide margin (the binomial standard
# error at 0.5% is 0.22%), and "almost none" is what a confidence-based metric needs.
MAX_FOOLED_SHARE = 0.01


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return digits_classifier.load_digits_classifier(cache_dir=tmp_path_factory.mktemp("cache"))


def test_accuracy_on_held_out_digits_is_at_least_95_percent(classifier):
    test_images, test_labels = digits_arrays("test")
    accuracy = float(np.mean(classifier.predict(test_images) == test_labels))
    print(f"digits classifier held-out accuracy: {accuracy:.4f} on {len(test_labels)} images")
    assert accuracy == pytest.approx(classifier.test_accuracy)
    assert accuracy >= 0.95


@pytest.mark.parametrize("family", ["noise", "blobs", "shuffled"])
def test_not_fooled_by_non_digits(classifier, family):
    test_images, _ = digits_arrays("test")  # shuffle digits the classifier never saw
    negatives = digits_classifier.negative_families(NEGATIVES_PER_TEST, TEST_NEGATIVES_SEED, test_images)[family]
    share = metrics.confident_share(classifier.probabilities(negatives), digits_classifier.CONFIDENCE_THRESHOLD)
    print(f"{family}: {share:.2%} of {NEGATIVES_PER_TEST} get confidence > 0.9")
    assert share <= MAX_FOOLED_SHARE


def test_reference_rows_separate_real_digits_from_a_fitted_gaussian(classifier, tmp_path):
    # A family the classifier never saw in training: samples of a Gaussian fitted to the pixels.
    reference = digits_classifier.digits_reference_statistics(classifier, cache_dir=tmp_path)
    rows = digits_classifier.digits_reference_rows(classifier, reference, gaussian_count=1000, seed=3)
    real, gaussian = rows["held_out_real"], rows["gaussian_fit"]
    print({name: {k: v for k, v in row.items() if k != "class_shares"} for name, row in rows.items()})
    assert real["confident_share"] > 0.7
    assert gaussian["confident_share"] < 0.5 * real["confident_share"]
    assert gaussian["frechet_distance_matched"] > 10 * real["frechet_distance"]
    assert gaussian["mean_entropy"] > real["mean_entropy"]
    # held-out digits are balanced (stratified split): every class 8-12%
    assert 0.08 <= real["min_class_share"] and real["max_class_share"] <= 0.12


def test_training_split_against_its_own_statistics_is_exactly_the_floor_zero(classifier, tmp_path):
    train_images, _ = digits_arrays("train")
    reference = digits_classifier.digits_reference_statistics(classifier, cache_dir=tmp_path)
    quality = digits_classifier.digits_quality(classifier, train_images, reference)
    assert quality["frechet_distance"] < 1e-9
    assert sum(quality["class_shares"]) == pytest.approx(1.0)
    assert list(tmp_path.glob("stats_digits_train_1437_digits_classifier-v1-logp.npz"))


def test_outputs_shapes_and_ranges(classifier):
    images = digits_classifier.smooth_blobs(5, seed=1)
    probabilities = classifier.probabilities(images)
    features = classifier.features(images)
    everything = classifier.all_probabilities(images)  # 10 digits, then "not a digit"
    assert probabilities.shape == (5, 10) and features.shape == (5, 11) and everything.shape == (5, 11)
    assert np.all(probabilities >= 0) and np.all(probabilities.sum(axis=1) <= 1 + 1e-9)
    np.testing.assert_allclose(everything.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_array_equal(everything[:, :10], probabilities)
    np.testing.assert_array_equal(features, digits_classifier.log_probability_features(everything))
    np.testing.assert_allclose(np.exp(features[:, :10]), probabilities, rtol=1e-6, atol=1e-7)
    assert classifier.all_probabilities(np.zeros((0, 8, 8, 1))).shape == (0, 11)
    with pytest.raises(digits_classifier.ClassifierError, match=r"\[N, 8, 8, 1\]"):
        classifier.probabilities(np.zeros((2, 28, 28, 1)))


def test_training_is_reproducible_and_cached(classifier, tmp_path):
    retrained = digits_classifier.train_digits_classifier()
    images = digits_classifier.uniform_noise(50, seed=9)
    np.testing.assert_allclose(retrained.probabilities(images), classifier.probabilities(images), rtol=0, atol=1e-12)
    first = digits_classifier.load_digits_classifier(cache_dir=tmp_path)
    cached = list(tmp_path.glob("digits_classifier_v1_seed0_sklearn*.pkl"))
    assert len(cached) == 1
    second = digits_classifier.load_digits_classifier(cache_dir=tmp_path)  # read back from the file
    np.testing.assert_array_equal(first.probabilities(images), second.probabilities(images))
    assert second.test_accuracy == first.test_accuracy
