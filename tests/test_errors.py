"""Bad inputs fail early, in words: every error names the op, what it got and what it expected
(STYLE.md point 11)."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F


def t(*shape, dtype=np.float32):
    return mt.tensor(np.ones(shape), dtype=dtype)


def ids(*values):
    return np.array(values, dtype=np.int64)


def backward_twice():
    y = (mt.tensor([1.0, 2.0], requires_grad=True) * 2).sum()
    y.backward()
    y.backward()


def log_of_negative_under_anomaly_detection():
    with mt.detect_anomaly():
        mt.tensor([2.0, -1.0]).log()


CASES = {
    "matmul shapes": (lambda: t(12, 64, 128) @ t(64, 384), ValueError,
                      r"matmul: shapes \(12, 64, 128\) and \(64, 384\) don't align: last dim of a \(128\) "
                      r"!= second-to-last dim of b \(64\)"),
    "matmul batch dims": (lambda: t(2, 3, 4) @ t(3, 4, 5), ValueError,
                          r"matmul: batch dimensions of \(2, 3, 4\) and \(3, 4, 5\) don't broadcast"),
    "matmul 0-d": (lambda: t() @ t(3), ValueError, r"matmul: operands must have at least 1 dimension"),
    "add broadcasting": (lambda: t(2, 3) + t(2, 4), ValueError,
                         r"add: shapes \(2, 3\) and \(2, 4\) don't broadcast"),
    "mul broadcasting": (lambda: t(5) * t(3, 4), ValueError, r"mul: shapes \(5,\) and \(3, 4\) don't broadcast"),
    "linear weight": (lambda: F.linear(t(2, 3), t(4, 5)), ValueError,
                      r"linear: input shape \(2, 3\) float32 and weight shape \(4, 5\) float32 don't fit: "
                      r"expected weight \(out_features, in_features\)"),
    "linear bias": (lambda: F.linear(t(2, 3), t(4, 3), t(3)), ValueError,
                    r"linear: bias shape \(3,\) float32 doesn't fit weight .* expected shape \(4,\)"),
    "layer_norm weight": (lambda: F.layer_norm(t(2, 3), t(4)), ValueError,
                          r"layer_norm: weight is shape \(4,\) float32; expected shape \(3,\)"),
    "attention shapes": (lambda: F.scaled_dot_product_attention(t(2, 3, 4), t(2, 3, 5), t(2, 3, 4)), ValueError,
                         r"scaled_dot_product_attention: shapes q \(2, 3, 4\), k \(2, 3, 5\), v \(2, 3, 4\) "
                         r"don't fit"),
    "attention ranks": (lambda: F.scaled_dot_product_attention(t(3, 4), t(1, 3, 4), t(1, 3, 4)), ValueError,
                        r"scaled_dot_product_attention: q, k, v must have the same rank >= 2"),
    "attention mask": (lambda: F.scaled_dot_product_attention(t(2, 3, 4), t(2, 3, 4), t(2, 3, 4),
                                                              mask=np.ones((4, 4), bool)), ValueError,
                       r"scaled_dot_product_attention: mask shape \(4, 4\) bool doesn't broadcast to the "
                       r"scores' shape \(2, 3, 3\)"),
    "cross_entropy float targets": (lambda: F.cross_entropy(t(2, 3), np.array([0.0, 1.0])), TypeError,
                                    r"cross_entropy: targets must hold integer indices, got shape \(2,\) float64"),
    "cross_entropy target range": (lambda: F.cross_entropy(t(2, 3), ids(0, 3)), ValueError,
                                   r"cross_entropy: targets must lie in \[0, 3\), got \[3\]"),
    "cross_entropy shapes": (lambda: F.cross_entropy(t(2, 4, 3), ids(0, 1)), ValueError,
                             r"cross_entropy: logits shape \(2, 4, 3\) float32 and targets shape \(2,\) int64 "
                             r"don't fit"),
    "cross_entropy reduction": (lambda: F.cross_entropy(t(2, 3), ids(0, 1), reduction="avg"), ValueError,
                                r"cross_entropy: reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"),
    "embedding float ids": (lambda: F.embedding(np.array([0.0, 1.0]), t(3, 2)), TypeError,
                            r"embedding: ids must hold integer indices, got shape \(2,\) float64"),
    "embedding id range": (lambda: F.embedding(ids(0, 5, -1), t(3, 2)), ValueError,
                           r"embedding: ids must lie in \[0, 3\), got \[-1, 5\]"),
    "embedding table": (lambda: F.embedding(ids(0), t(3)), ValueError,
                        r"embedding: weight must be \(num_embeddings, dim\), got shape \(3,\) float32"),
    "axis out of range": (lambda: t(2, 3).sum(axis=2), ValueError,
                          r"sum: axis 2 is out of range for a tensor with 2 dimensions; expected -2 <= axis < 2"),
    "repeated axis": (lambda: t(2, 3).max(axis=(1, -1)), ValueError, r"max: axis \(1, -1\) repeats an axis"),
    "tuple axis to softmax": (lambda: F.softmax(t(2, 3), axis=(0, 1)), TypeError,
                              r"softmax: axis must be a single int, got \(0, 1\)"),
    "backward on non-scalar": (lambda: (mt.tensor([1.0, 2.0], requires_grad=True) * 2).backward(), ValueError,
                               r"backward: called without a gradient on a tensor of shape \(2,\); expected a "
                               r"scalar"),
    "backward twice": (backward_twice, RuntimeError,
                       r"backward: the graph through .* was already freed by an earlier backward\(\); pass "
                       r"retain_graph=True"),
    "backward without graph": (lambda: t(1).sum().backward(), RuntimeError,
                               r"backward: this tensor does not require grad and has no graph"),
    "log of negative under detect_anomaly": (log_of_negative_under_anomaly_detection, ValueError,
                                             r"Log: produced NaN or infinity in its output \(inputs: shape \(2,\) "
                                             r"float32\)"),
    "reshape size": (lambda: t(2, 3).reshape(4, 2), ValueError,
                     r"reshape: cannot reshape shape \(2, 3\) float32 \(6 elements\) into \(4, 2\)"),
    "transpose axis out of range": (lambda: t(2, 3).transpose(0, 5), ValueError,
                                    r"transpose: axis 5 is out of range for a tensor with 2 dimensions"),
    "transpose not a permutation": (lambda: t(2, 3, 4).transpose(0, 1), ValueError,
                                    r"transpose: axes \(0, 1\) are not a permutation of the 3 axes"),
    "getitem out of bounds": (lambda: t(2, 3)[5], IndexError,
                              r"getitem: index 5 is invalid for shape \(2, 3\) float32"),
    "getitem float index": (lambda: t(2, 3)[np.array([0.5])], TypeError,
                            r"getitem: array indices must be integers or booleans, got shape \(1,\) float64"),
    "concat shapes": (lambda: mt.concat([t(2, 3), t(3, 4)], axis=0), ValueError,
                      r"concat: shapes \(2, 3\), \(3, 4\) must match in every axis except axis 0"),
    "concat 0-d": (lambda: mt.concat([t(), t()]), ValueError,
                   r"concat: shapes \(\), \(\) must all have the same number of dimensions, at least 1"),
    "stack shapes": (lambda: mt.stack([t(2), t(3)]), ValueError,
                     r"stack: all tensors must have one shape, got \[\(2,\), \(3,\)\]"),
    "split sections": (lambda: t(5).split(2), ValueError,
                       r"split: axis 0 of length 5 cannot be split into 2 equal parts"),
    "broadcast_to": (lambda: t(3).broadcast_to((2, 4)), ValueError,
                     r"broadcast_to: cannot broadcast shape \(3,\) float32 to shape \(2, 4\)"),
    "requires_grad on int": (lambda: mt.tensor([1, 2], requires_grad=True), TypeError,
                             r"Tensor: only floating-point tensors can require grad, got dtype int64"),
    "softmax of ints": (lambda: F.softmax(mt.tensor([1, 2])), TypeError,
                        r"softmax: input must be floating point, got shape \(2,\) int64"),
    "dropout of ints": (lambda: F.dropout(mt.tensor([1, 2]), p=0.5), TypeError,
                        r"dropout: input must be floating point, got shape \(2,\) int64"),
    "op on an ndarray": (lambda: F.sigmoid(np.ones(2)), TypeError,
                         r"Sigmoid: inputs must be tensors, got ndarray"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error_names_op_got_and_expected(name):
    make_error, error_type, message = CASES[name]
    with pytest.raises(error_type, match=message):
        make_error()
