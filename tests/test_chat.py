"""chat.py and the ``chat`` command on a tiny random chat model: the KV cache kept across turns
gives the logits of reading the whole conversation again; /reset; Ctrl-C stops one answer."""

from __future__ import annotations

import io

import numpy as np
import pytest

from minitransformer.chat import ChatSession, shared_prefix_length
from minitransformer.chat_command import chat_loop
from minitransformer.cli import main
from minitransformer.nn import SamplingSettings
from minitransformer.pretrained import load_lm
from tests.tiny_pretrained import full_logits, write_tiny_chat_model

GREEDY = SamplingSettings(temperature=0)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_lm(write_tiny_chat_model(tmp_path_factory.mktemp("chat")))


def test_the_cache_kept_across_turns_gives_the_logits_of_recomputing(lm):
    session = ChatSession(lm, GREEDY, max_new_tokens=12)
    first = "".join(session.reply("Hello there"))
    assert session.reused_tokens == 0 and first == session.messages[-1]["content"]
    for text in ("How are you?", "Tell me more."):
        "".join(session.reply(text))
        prompt = lm.encode_chat(session.messages[:-1])
        assert session.reused_tokens > 20  # the earlier turns came from the cache
        assert session.cached_ids[:len(prompt)] == prompt
        np.testing.assert_allclose(session.prompt_logits, full_logits(lm, prompt), rtol=1e-4, atol=1e-4)
    assert session.cache.length == len(session.cached_ids)


def test_reset_starts_a_new_conversation(lm):
    session = ChatSession(lm, GREEDY, max_new_tokens=8)
    first = "".join(session.reply("Hi"))
    "".join(session.reply("Again"))
    session.reset()
    assert session.messages == [] and session.cache.length == 0
    assert "".join(session.reply("Hi")) == first


def test_ctrl_c_stops_the_answer_only(lm, monkeypatch):
    session = ChatSession(lm, GREEDY, max_new_tokens=10)
    real_read, calls = session._read, []

    def interrupted_read(ids):
        calls.append(ids)
        if len(calls) == 4:  # the third token of the first answer
            raise KeyboardInterrupt
        return real_read(ids)

    monkeypatch.setattr(session, "_read", interrupted_read)
    out, err = io.StringIO(), io.StringIO()
    chat_loop(session, iter(["first question\n", "second question\n"]), out, err)
    assert err.getvalue().count("[stopped]") == 1
    assert [m["role"] for m in session.messages] == ["user", "assistant", "user", "assistant"]
    assert len(out.getvalue().splitlines()) == 2
    assert session.cache.length == len(session.cached_ids)  # the interrupted step left nothing behind
    prompt = lm.encode_chat(session.messages[:-1])
    np.testing.assert_allclose(session.prompt_logits, full_logits(lm, prompt), rtol=1e-4, atol=1e-4)


def test_chat_command_with_scripted_input(lm, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello\n\n/reset\nHello\n/exit\nnever read\n"))
    assert main(["chat", "--pretrained", str(lm.directory), "--temperature", "0", "--max-new-tokens", "6"]) == 0
    captured = capsys.readouterr()
    answers = captured.out.split("\n")[:-1]
    assert len(answers) == 2 and answers[0] == answers[1]  # the same answer after /reset
    assert "(new conversation)" in captured.err


def test_a_base_model_without_a_template_cannot_chat(tmp_path, capsys, monkeypatch):
    folder = write_tiny_chat_model(tmp_path / "base", chat_template=None)
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello\n"))
    assert main(["chat", "--pretrained", str(folder)]) == 1
    assert "has no chat template" in capsys.readouterr().err


def test_shared_prefix_length():
    assert shared_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert shared_prefix_length([], [1]) == 0 and shared_prefix_length([1, 2], [1, 2]) == 2


def test_a_conversation_longer_than_the_context_asks_for_reset(tmp_path):
    short = load_lm(write_tiny_chat_model(tmp_path), block_size=60)
    session = ChatSession(short, GREEDY, max_new_tokens=4)
    out, err = io.StringIO(), io.StringIO()
    chat_loop(session, iter(["x" * 80 + "\n", "/reset\n", "hi\n"]), out, err)
    assert "more than the model's context of 60; /reset to start a new one" in err.getvalue()
    assert session.messages[0]["content"] == "hi" and session.cache.length == len(session.cached_ids) > 0
