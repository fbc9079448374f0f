"""Text-classification data for fine-tuning: labelled texts, a built-in task, and CSV files.

The built-in task asks "which standard-library package is this docstring from?": asyncio,
email, importlib, logging, multiprocessing or xml. These six are pure Python, ship with every
CPython >= 3.10 and each have at least 195 distinct docstrings (3.10 to 3.13), so the default
180 per class gives the same balanced task everywhere. Your own task is a CSV file with ``text`` and ``label`` columns.

    dataset = stdlib_classification()      # or load_csv("reviews.csv")
    train, test = train_test_split(dataset, test_fraction=0.2, seed=0)
    train.texts[0], train.labels[0], train.label_names[train.labels[0]]
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import MiB, read_text
from .corpus import python_sources, source_docstrings, stdlib_dir

MAX_CSV_BYTES = 256 * MiB

STDLIB_PACKAGES = ("asyncio", "email", "importlib", "logging", "multiprocessing", "xml")


@dataclass(frozen=True, eq=False, repr=False)
class LabelledTexts:
    """Examples for classification: ``texts[i]`` has class ``labels[i]``, an index into
    ``label_names``."""

    texts: tuple[str, ...]
    labels: np.ndarray  # (N,) int64
    label_names: tuple[str, ...]

    def __post_init__(self):
        # frozen: normalize the fields once, here, so every instance holds the same types
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int64).reshape(-1))
        object.__setattr__(self, "label_names", tuple(self.label_names))
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"LabelledTexts: {len(self.texts)} texts but {len(self.labels)} labels; "
                "expected one label per text"
            )
        outside = sorted(set(self.labels[(self.labels < 0) | (self.labels >= len(self.label_names))].tolist()))
        if outside:
            raise ValueError(
                f"LabelledTexts: labels {outside[:10]} do not index label_names "
                f"(0..{len(self.label_names) - 1})"
            )

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        return f"LabelledTexts({len(self)} examples, {self.num_classes} classes: {', '.join(self.label_names)})"

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def subset(self, indices) -> LabelledTexts:
        """The examples at these indices, in that order, with the same label names."""
        indices = np.asarray(indices, dtype=np.int64)
        return LabelledTexts(
            tuple(self.texts[i] for i in indices), self.labels[indices], self.label_names
        )


def stdlib_classification(
    per_class: int = 180,
    max_chars: int = 512,
    min_chars: int = 20,
    seed: int = 0,
    packages: tuple[str, ...] = STDLIB_PACKAGES,
) -> LabelledTexts:
    """The built-in fine-tuning task: standard-library docstrings labelled by the top-level
    package they come from (labels index the sorted package names).

    per_class: examples per class; every class gets ``min(per_class, smallest class)``, so the
        classes are balanced and always-guessing-one-class scores 1 / num_classes.
    max_chars: docstrings are cut to their first max_chars characters.
    min_chars: shorter docstrings ("Helper.") carry no signal and are left out, as are
        docstrings that occur more than once (they could land in both train and test).
    seed: which docstrings a class keeps when it has more than per_class.
    """
    root = stdlib_dir()
    label_names = tuple(sorted(packages))
    docstrings_of = {}
    for package in label_names:
        if not (root / package).is_dir():
            raise ValueError(
                f"stdlib_classification: package {package!r} is not a folder of {root}; "
                f"expected standard-library packages such as {STDLIB_PACKAGES}"
            )
        docstrings_of[package] = [
            doc for path in python_sources(root / package) for doc in source_docstrings(path)
            if len(doc) >= min_chars
        ]
    occurrences = Counter(doc for docs in docstrings_of.values() for doc in docs)
    unique_of = {
        package: [doc for doc in docs if occurrences[doc] == 1] for package, docs in docstrings_of.items()
    }
    count = min(per_class, *(len(docs) for docs in unique_of.values()))
    if count < 2:
        sizes = {package: len(docs) for package, docs in unique_of.items()}
        raise ValueError(f"stdlib_classification: a class has fewer than 2 usable docstrings: {sizes}")

    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, package in enumerate(label_names):
        chosen = np.sort(rng.permutation(len(unique_of[package]))[:count])  # sorted: source order
        texts += [unique_of[package][i][:max_chars] for i in chosen]
        labels += [label] * count
    return LabelledTexts(tuple(texts), np.array(labels, dtype=np.int64), label_names)


def load_csv(path: str | Path) -> LabelledTexts:
    """Read a UTF-8 CSV file with a header row naming (at least) the columns ``text`` and
    ``label``. Labels are strings; their sorted distinct values become ``label_names``.

    Raises ValueError, naming the file and line, for a missing or non-regular file, missing
    columns, a row with more or fewer fields than the header, an empty text or label, or fewer
    than two distinct labels.
    """
    path = Path(path)
    text = read_text(path, "load_csv", MAX_CSV_BYTES, "a CSV file with columns text,label")  # drops a BOM
    texts, label_strings = [], []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = {"text", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"load_csv: {path} lacks the column(s) {sorted(missing)}; its header is "
                f"{reader.fieldnames}, expected columns text,label"
            )
        for row in reader:
            where = f"load_csv: {path} line {reader.line_num}"
            if None in row:  # DictReader files the fields beyond the header under None
                raise ValueError(f"{where} has {len(reader.fieldnames) + len(row[None])} fields but the header "
                                 f"names {len(reader.fieldnames)}; quote texts that contain commas")
            if row["text"] is None or row["label"] is None:
                raise ValueError(f"{where} has fewer fields than the header names; expected text and label")
            if not row["text"].strip():
                raise ValueError(f"{where} has an empty text")
            if not row["label"].strip():
                raise ValueError(f"{where} has an empty label")
            texts.append(row["text"])
            label_strings.append(row["label"].strip())
    except csv.Error as error:
        raise ValueError(f"load_csv: {path} line {reader.line_num} is not valid CSV ({error})") from None
    label_names = tuple(sorted(set(label_strings)))
    if len(label_names) < 2:
        raise ValueError(
            f"load_csv: {path} has {len(label_names)} distinct label(s) {list(label_names)}; "
            "a classifier needs at least 2 classes"
        )
    index_of = {name: i for i, name in enumerate(label_names)}
    labels = np.array([index_of[name] for name in label_strings], dtype=np.int64)
    return LabelledTexts(tuple(texts), labels, label_names)


def train_test_split(
    dataset: LabelledTexts, test_fraction: float = 0.2, seed: int = 0
) -> tuple[LabelledTexts, LabelledTexts]:
    """Shuffle and split, stratified: each class sends ``round(test_fraction * its size)``
    examples to test, so both halves keep the class balance. The same seed gives the same split."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"train_test_split: test_fraction must be in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    train_indices, test_indices = [], []
    for label in range(dataset.num_classes):
        members = rng.permutation(np.flatnonzero(dataset.labels == label))
        n_test = int(round(len(members) * test_fraction))
        test_indices.append(members[:n_test])
        train_indices.append(members[n_test:])
    # Shuffle across classes too, so a batch taken in order mixes labels.
    train_order = rng.permutation(np.concatenate(train_indices))
    test_order = rng.permutation(np.concatenate(test_indices))
    return dataset.subset(train_order), dataset.subset(test_order)
