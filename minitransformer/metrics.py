"""Classification metrics: accuracy, per-class and macro precision / recall / F1, the
confusion matrix and its picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"confusion_matrix: {labels.shape[0]} labels but {predictions.shape[0]} predictions")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def classification_report(labels, predictions, num_classes: int) -> dict:
    """accuracy; for each class precision = TP / (TP + FP), recall = TP / (TP + FN),
    F1 = 2 P R / (P + R) (0 where undefined); and their unweighted (macro) means."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    true_positives = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros(num_classes), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(num_classes), where=denominator > 0)
    return {
        "accuracy": float(true_positives.sum() / max(matrix.sum(), 1)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "confusion_matrix": matrix.tolist(),
    }


def plot_confusion_matrix(matrix, label_names, path: str | Path, title: str = "confusion matrix") -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend switch, no window

    matrix = np.asarray(matrix)
    # at least 3.6 inches wide: room for a title line even with two classes
    fig = Figure(figsize=(max(3.6, 1.0 + 0.8 * len(label_names)), 0.8 + 0.7 * len(label_names)))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for (row, col), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=color)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
