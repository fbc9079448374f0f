"""Errata, document 002 sections 3 and 4.2: the GRU is called "an improved RNN that adds more
parameters and control gates", and the code examples set a GRU(64) beside an LSTM(64). The GRU
has three blocks of weights where the plain RNN (F13) has one, but one block fewer than the LSTM
(three quarters of its parameters) and two gates to its three. Taught in
lessons/14_convolution_and_recurrence.md, and in lessons/21_the_documents_pipelines.md, where
both of the document's classifiers are trained.
"""

from __future__ import annotations

import pytest

from minitransformer import nn

INPUT, HIDDEN = 32, 64


def _lstm_parameters(input_size: int, hidden_size: int) -> int:
    """Input, forget and output gates and the candidate: 4 blocks of W_ih, W_hh, b_ih, b_hh."""
    return 4 * (hidden_size * (input_size + hidden_size) + 2 * hidden_size)


def test_errata_gru_has_three_times_the_rnns_parameters_and_three_quarters_of_the_lstms():
    rnn = nn.RNNCell(INPUT, HIDDEN).num_parameters()
    gru = nn.GRUCell(INPUT, HIDDEN).num_parameters()
    assert rnn == HIDDEN * (INPUT + HIDDEN) + 2 * HIDDEN == 6272
    assert gru == 3 * rnn == 18816
    assert 4 * gru == 3 * _lstm_parameters(INPUT, HIDDEN) == 3 * 25088


def test_errata_the_frameworks_lstm_and_gru_have_four_and_three_blocks():
    """The layers document 002's classifiers use, LSTM(64) and GRU(64), on 32-wide embeddings."""
    assert nn.LSTMCell(INPUT, HIDDEN).num_parameters() == _lstm_parameters(INPUT, HIDDEN) == 25088
    assert nn.LSTM(INPUT, HIDDEN).num_parameters() == 25088
    assert nn.GRU(INPUT, HIDDEN).num_parameters() == nn.GRUCell(INPUT, HIDDEN).num_parameters() == 18816
    assert nn.GRU(INPUT, HIDDEN).num_parameters() < nn.LSTM(INPUT, HIDDEN).num_parameters()


def test_errata_gru_and_lstm_counts_match_pytorch():
    torch = pytest.importorskip("torch", reason="the PyTorch cross-check needs the crosscheck extra")
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(torch.nn.GRUCell(INPUT, HIDDEN)) == nn.GRUCell(INPUT, HIDDEN).num_parameters()
    assert count(torch.nn.RNNCell(INPUT, HIDDEN)) == nn.RNNCell(INPUT, HIDDEN).num_parameters()
    assert count(torch.nn.LSTMCell(INPUT, HIDDEN)) == _lstm_parameters(INPUT, HIDDEN)
    assert count(torch.nn.LSTM(INPUT, HIDDEN)) == nn.LSTM(INPUT, HIDDEN).num_parameters()
    assert count(torch.nn.GRU(INPUT, HIDDEN)) == nn.GRU(INPUT, HIDDEN).num_parameters()
