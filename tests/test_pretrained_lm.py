"""pretrained.load_lm on tiny random chat models in the Hugging Face layout: model, tokenizer,
chat template and stop tokens together; ``generate --pretrained`` streams the model's greedy
continuation and stops at the end-of-text token; a hub name goes through the downloader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minitransformer import nn
from minitransformer.cli import main
from minitransformer.pretrained import load_lm
from tests.tiny_pretrained import LLAMA_CONFIG, VOCAB, write_tiny_chat_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny_chat_model(tmp_path_factory.mktemp("lm"))


def test_load_lm_returns_model_tokenizer_config_and_template(folder):
    lm = load_lm(folder)
    assert isinstance(lm.model, nn.Llama) and not lm.model.training
    assert lm.config is lm.model.config and lm.config.vocab_size == VOCAB and lm.config.tie_word_embeddings
    assert lm.tokenizer.decode(lm.tokenizer.encode("héllo, world")) == "héllo, world"
    assert lm.chat_template is not None and lm.chat_template.engine == "jinja2"
    assert lm.stop_token_ids == [258, 257]  # config.json's eos_token_id, then tokenizer_config's eos_token
    ids = lm.encode_chat([{"role": "user", "content": "Hi"}])
    assert lm.tokenizer.decode(ids) == ("<|im_start|>system\nYou are a tiny test model.<|im_end|>\n"
                                        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    logits, loss = lm.model(np.array([ids]))
    assert logits.shape == (1, 1, VOCAB) and loss is None


def test_load_lm_options(folder):
    lm = load_lm(folder, dtype=np.float16, block_size=64)
    assert lm.config.block_size == 64 and lm.model.lm_head.weight.dtype == np.float16
    with pytest.raises(ValueError, match="block_size 1000 exceeds the checkpoint's 256 positions"):
        load_lm(folder, block_size=1000)
    with pytest.raises(FileNotFoundError, match="no such folder, and not a hub name"):
        load_lm(folder / "not" / "there")


def test_generate_pretrained_streams_the_greedy_continuation(folder, capsys):
    lm = load_lm(folder)
    prompt = "Once upon"
    expected = lm.model.generate(np.array([lm.tokenizer.encode(prompt)]), 8, temperature=0).numpy()[0]
    new_ids = list(expected[len(lm.tokenizer.encode(prompt)):])
    if any(i in lm.stop_token_ids for i in new_ids):
        new_ids = new_ids[:min(new_ids.index(i) for i in lm.stop_token_ids if i in new_ids)]
    assert main(["generate", "--pretrained", str(folder), "--prompt", prompt, "--temperature", "0",
                 "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out == prompt + lm.tokenizer.decode(new_ids) + "\n"


def test_generate_stops_at_the_end_of_text_token(tmp_path, capsys):
    folder = write_tiny_chat_model(tmp_path)
    lm = load_lm(folder)
    first = int(lm.model.generate(np.array([lm.tokenizer.encode("x")]), 1, temperature=0).numpy()[0, -1])
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "eos_token_id": first}))  # its first token ends it
    assert main(["generate", "--pretrained", str(folder), "--prompt", "x", "--temperature", "0"]) == 0
    assert capsys.readouterr().out == "x\n"


def test_generate_needs_a_run_or_a_pretrained_model(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--prompt", "x"])
    assert "one of the arguments --run --pretrained is required" in capsys.readouterr().err


def test_an_unsupported_checkpoint_is_one_line_on_the_command_line(tmp_path, capsys):
    folder = write_tiny_chat_model(tmp_path)
    (folder / "config.json").write_text(json.dumps({**LLAMA_CONFIG, "rope_scaling": {"type": "dynamic", "factor": 2}}))
    assert main(["generate", "--pretrained", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rope_scaling.rope_type = 'dynamic' is not supported" in err
