"""Tests for minitransformer/data/classification.py: the built-in task, CSV files, splitting."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minitransformer.data.classification import (
    STDLIB_PACKAGES, LabelledTexts, load_csv, stdlib_classification, train_test_split,
)


@pytest.fixture(scope="module")
def dataset() -> LabelledTexts:
    return stdlib_classification()


def test_the_builtin_task_has_six_balanced_package_classes(dataset):
    assert dataset.label_names == tuple(sorted(STDLIB_PACKAGES))
    assert dataset.num_classes == 6 >= 5
    assert Counter(dataset.labels.tolist()) == {label: 180 for label in range(6)}
    assert dataset.labels.dtype == np.int64


def test_the_builtin_task_is_deterministic_truncated_and_free_of_duplicates(dataset):
    again = stdlib_classification()
    assert again.texts == dataset.texts and (again.labels == dataset.labels).all()
    assert stdlib_classification(seed=1).texts != dataset.texts
    assert all(20 <= len(text) <= 512 for text in dataset.texts)
    assert len(set(dataset.texts)) == len(dataset)


def test_the_builtin_task_options_change_size_and_length():
    small = stdlib_classification(per_class=10, max_chars=40, packages=("json", "email"))
    assert small.label_names == ("email", "json") and len(small) == 20
    assert max(len(text) for text in small.texts) <= 40


def test_an_unknown_package_is_an_error():
    with pytest.raises(ValueError, match=r"stdlib_classification: package 'no_such_package' is not a folder of"):
        stdlib_classification(packages=("email", "no_such_package"))


@given(st.floats(0.05, 0.95), st.integers(0, 2**32 - 1))
def test_train_test_split_is_a_stratified_partition(fraction, seed):
    labels = np.repeat(np.arange(3), [10, 20, 30])
    data = LabelledTexts(tuple(f"text {i}" for i in range(60)), labels, ("a", "b", "c"))
    train, test = train_test_split(data, fraction, seed)
    assert sorted(train.texts + test.texts) == sorted(data.texts)
    for label, size in enumerate([10, 20, 30]):
        assert (test.labels == label).sum() == round(size * fraction)
    for part in (train, test):  # each text keeps its label
        assert all(data.labels[int(text.split()[1])] == label for text, label in zip(part.texts, part.labels))
    again_train, _ = train_test_split(data, fraction, seed)
    assert again_train.texts == train.texts


def test_train_test_split_rejects_a_fraction_outside_zero_one(dataset):
    with pytest.raises(ValueError, match=r"train_test_split: test_fraction must be in \(0, 1\), got 1.5"):
        train_test_split(dataset, 1.5)


def test_labelled_texts_check_their_fields():
    with pytest.raises(ValueError, match="LabelledTexts: 2 texts but 1 labels"):
        LabelledTexts(("a", "b"), [0], ("x", "y"))
    with pytest.raises(ValueError, match=r"LabelledTexts: labels \[2\] do not index label_names \(0..1\)"):
        LabelledTexts(("a", "b"), [0, 2], ("x", "y"))
    assert repr(LabelledTexts(("a",), [0], ("x",))) == "LabelledTexts(1 examples, 1 classes: x)"


# load_csv: a user's own task.

def write_csv(tmp_path, text: str):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_maps_sorted_label_strings_to_indices(tmp_path):
    path = write_csv(tmp_path, '\ufefftext,label,extra\n"Great, really",pos,1\n"Two\nlines",neg,2\nmeh,neg,3\n')
    data = load_csv(path)
    assert data.texts == ("Great, really", "Two\nlines", "meh")
    assert data.label_names == ("neg", "pos")
    assert data.labels.tolist() == [1, 0, 0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sentence,label\nhi,a\nho,b\n", r"load_csv: .*data\.csv lacks the column\(s\) \['text'\]; its header is \['sentence', 'label'\]"),
        ("", r"load_csv: .*lacks the column\(s\) \['label', 'text'\]; its header is None"),
        ("text,label\nhi,a\nho,a\n", r"load_csv: .*has 1 distinct label\(s\) \['a'\]; a classifier needs at least 2 classes"),
        ("text,label\nhi,a\n,b\n", r"load_csv: .*data\.csv line 3 has an empty text"),
    ],
)
def test_load_csv_rejects_files_it_cannot_use(tmp_path, content, message):
    with pytest.raises(ValueError, match=message):
        load_csv(write_csv(tmp_path, content))


def test_load_csv_rejects_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"load_csv: .*missing\.csv does not exist; expected a CSV file with columns text,label"):
        load_csv(tmp_path / "missing.csv")
