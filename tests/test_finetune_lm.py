"""finetune-lm (minitransformer/finetune_lm.py, adapters.py, data/instructions.py): the loss
counts response tokens only, bad JSONL lines fail in one line naming the line, and a tiny run
writes only adapter weights, resumes to the same adapters, merges, and samples."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.adapters import load_adapted
from minitransformer.data.instructions import (IGNORE_INDEX, InstructionPair, default_instructions, encode_pair,
                                               format_prompt, instruction_batch, parse_instructions)
from minitransformer.finetune_lm import FinetuneLMConfig, finetune_lm, response_loss
from minitransformer.generate import generate_text
from minitransformer.safetensors import load_file
from minitransformer.train import TrainConfig, load_run, train
from tests.test_runs import assert_one_line_error, cli

PAIRS = [{"prompt": f"what is {word}?", "response": f"{word} is a {kind}."}
         for word, kind in [("cat", "pet"), ("dog", "pet"), ("oak", "tree"), ("elm", "tree"), ("rose", "flower"),
                            ("tulip", "flower"), ("trout", "fish"), ("carp", "fish"), ("crow", "bird"),
                            ("wren", "bird"), ("ant", "bug"), ("bee", "bug")]]
TEXT = "".join(f"Question: {p['prompt']}\nAnswer: {p['response']}\n\n" for p in PAIRS) * 8
QUIET = open(os.devnull, "w")


class CharLevel:
    """A character tokenizer over a fixed alphabet, for data-layer tests."""

    def __init__(self, alphabet: str = "abcdefghijklmnopqrstuvwxyz ?.:\nQA"):
        self.alphabet = alphabet

    def encode(self, text: str) -> list[int]:
        return [self.alphabet.index(c) for c in text]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("finetune_lm")
    (folder / "corpus.txt").write_text(TEXT, encoding="utf-8")
    return train(TrainConfig(data=str(folder / "corpus.txt"), out_dir=str(folder / "runs"), name="base", batch_size=4,
                             block_size=40, n_layer=1, n_head=2, n_embd=16, max_iters=20, eval_interval=20,
                             eval_iters=1, sample_tokens=1, warmup_iters=0), out=QUIET, results=QUIET)


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS), encoding="utf-8")
    return path


def tiny_config(base_run: Path, pairs_file: Path, out_dir: Path, **overrides) -> FinetuneLMConfig:
    values = dict(from_run=str(base_run), data=str(pairs_file), out_dir=str(out_dir), name="ft", lora_rank=2,
                  epochs=2, batch_size=4, held_out=2, sample_tokens=8, learning_rate=1e-2)
    return FinetuneLMConfig(**{**values, **overrides})


# --- loss masking ---------------------------------------------------------------------------------

@given(prompt=st.text("abc xyz", min_size=0, max_size=12), response=st.text("abc xyz.", min_size=1, max_size=12))
def test_targets_are_the_response_and_end_tokens_only(prompt, response):
    tokenizer, end = CharLevel(), [CharLevel().encode("\n")[0]]
    ids, prompt_length = encode_pair(tokenizer, InstructionPair(prompt, response), end, max_length=1000)
    assert ids == tokenizer.encode(format_prompt(prompt) + response) + end
    assert prompt_length == len(format_prompt(prompt))
    inputs, targets = instruction_batch([(ids, prompt_length), ([1, 2, 3], 1)], pad_id=0)
    kept = targets[0][targets[0] != IGNORE_INDEX]
    assert kept.tolist() == tokenizer.encode(response) + end  # what the loss sees: response + end, in order
    assert inputs[0, :len(ids) - 1].tolist() == ids[:-1]
    assert targets[1].tolist()[:2] == [2, 3] and set(targets[1].tolist()[2:]) <= {IGNORE_INDEX}  # padding ignored


def test_cut_pairs_keep_the_prompt_and_lose_the_response_end():
    tokenizer, end = CharLevel(), [0]
    prompt_length = len(format_prompt("ab"))
    ids, kept = encode_pair(tokenizer, InstructionPair("ab", "cdefgh"), end, max_length=prompt_length + 3)
    assert kept == prompt_length and ids[prompt_length:] == tokenizer.encode("cde")
    assert encode_pair(tokenizer, InstructionPair("ab", "cd"), end, max_length=prompt_length) is None


def test_prompt_tokens_carry_no_gradient():
    mt.manual_seed(0)
    model = nn.GPT(nn.GPTConfig(block_size=32, vocab_size=40, n_layer=1, n_head=2, n_embd=8))
    tokenizer = CharLevel()
    examples = [encode_pair(tokenizer, InstructionPair("ab", "cat"), [30], 33),
                encode_pair(tokenizer, InstructionPair("x", "dog."), [30], 33)]
    inputs, targets = instruction_batch(examples)
    logits = model.lm_head(model.hidden_states(inputs)).retain_grad()  # (B, T, V)
    loss = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
    loss.backward()
    masked = targets == IGNORE_INDEX
    assert masked.any() and (~masked).any()
    assert not logits.grad[masked].any()  # exactly zero: prompt (and padding) positions teach nothing
    assert np.abs(logits.grad[~masked]).sum(axis=-1).min() > 0
    np.testing.assert_allclose(response_loss(model, inputs, targets).item(), loss.item(), rtol=1e-6)

    # whatever targets the prompt positions would have had, the loss is the same
    unmasked = np.where(masked, np.random.default_rng(0).integers(0, 40, targets.shape), targets)
    _, full_loss = model(inputs, unmasked)  # GPT's own loss counts every position
    assert full_loss.item() != pytest.approx(loss.item())
    remasked = np.where(masked, IGNORE_INDEX, unmasked)
    assert response_loss(model, inputs, remasked).item() == loss.item()


# --- instruction files ----------------------------------------------------------------------------

@pytest.mark.parametrize("line, fragment", [
    ("{not json", "line 2: not valid JSON"),
    ("[1, 2]", "line 2: expected a JSON object"),
    ('{"prompt": "a"}', "line 2: missing 'response'"),
    ('{"prompt": "a", "response": 3}', "line 2: 'response' must be a string"),
    ('{"prompt": "a", "response": "  "}', "line 2: the response is empty"),
])
def test_bad_lines_name_the_line(line, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_instructions('{"prompt": "q", "response": "r"}\n' + line + "\n", "pairs.jsonl")


def test_the_cli_reports_a_bad_line_in_one_line(tmp_path, base_run):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "response": "r"}\n\n{"prompt": "q" "response": "r"}\n', encoding="utf-8")
    result = cli("finetune-lm", "--from-run", base_run, "--data", bad, "--out-dir", tmp_path / "runs")
    assert_one_line_error(result, f"instruction data {bad} line 3", "not valid JSON")
    assert not (tmp_path / "runs").exists()  # nothing written before the data was checked


def test_the_embedded_set_is_small_and_well_formed():
    pairs = default_instructions()
    assert 200 <= len(pairs) and len({p.prompt for p in pairs}) == len(pairs)
    path = Path(mt.__file__).parent / "data" / "instructions.jsonl"
    assert path.stat().st_size < 100_000


# --- the command ----------------------------------------------------------------------------------

def test_finetune_lm_end_to_end_writes_only_adapters_and_learns(tmp_path, base_run, pairs_file):
    run_dir = finetune_lm(tiny_config(base_run, pairs_file, tmp_path, merge=True, epochs=4), out=QUIET,
                          results=QUIET)
    adapter = load_file(run_dir / "adapter_model.safetensors")
    assert set(adapter) == {"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
                            "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"}
    assert adapter["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].shape == (2, 16)
    adapter_config = json.loads((run_dir / "adapter_config.json").read_text())
    assert (adapter_config["peft_type"], adapter_config["r"], adapter_config["target_modules"]) == ("LORA", 2, ["c_attn"])
    comparison = json.loads((run_dir / "comparison.json").read_text())
    assert comparison["after"]["held_out_loss"] < comparison["before"]["held_out_loss"]

    # the adapters reload onto the base to the same model, and the merged weights equal it too
    adapted, tokenizer, _ = load_adapted(run_dir)
    base, _, _ = load_run(base_run)
    ids = np.array([tokenizer.encode(format_prompt("what is a cat?"))])
    expected = adapted.lm_head(adapted.hidden_states(ids)).numpy()
    assert not np.allclose(base.lm_head(base.hidden_states(ids)).numpy(), expected)
    base.load_state_dict(load_file(run_dir / "merged_model.safetensors"))
    np.testing.assert_allclose(base.lm_head(base.hidden_states(ids)).numpy(), expected, rtol=1e-4, atol=1e-5)

    text = generate_text(run_dir, "what is a cat?", max_new_tokens=5, temperature=0, out=QUIET)
    assert text.startswith(format_prompt("what is a cat?")) and len(text) == len(format_prompt("what is a cat?")) + 5


def test_resume_ends_with_the_adapters_of_an_uninterrupted_run(tmp_path, base_run, pairs_file):
    whole = finetune_lm(tiny_config(base_run, pairs_file, tmp_path, name="whole", lora_dropout=0.1), out=QUIET,
                        results=QUIET)
    config = tiny_config(base_run, pairs_file, tmp_path, name="parts", lora_dropout=0.1)
    parts = finetune_lm(config, stop_after=3, out=QUIET, results=QUIET)
    assert not (parts / "comparison.json").exists() and (parts / "adapter_model.safetensors").is_file()
    result = cli("finetune-lm", "--resume", parts)
    assert result.returncode == 0, result.stderr
    for key, value in load_file(whole / "adapter_model.safetensors").items():
        np.testing.assert_array_equal(load_file(parts / "adapter_model.safetensors")[key], value, err_msg=key)
    steps = [r["iter"] for r in map(json.loads, (parts / "log.jsonl").read_text().splitlines()) if r["kind"] == "step"]
    assert steps == list(range(1, len(steps) + 1))  # each step logged once
    assert_one_line_error(cli("finetune-lm", "--resume", parts, "--lora-rank", "4"), "cannot change ['lora_rank']")


def test_without_a_starting_point_it_says_how_to_get_one(tmp_path):
    assert_one_line_error(cli("finetune-lm", "--out-dir", tmp_path), "no model to adapt", "train")


def test_a_hugging_face_model_gets_q_and_v_adapters_and_its_end_token(tmp_path, pairs_file):
    from tests.tiny_pretrained import write_tiny_chat_model

    folder = write_tiny_chat_model(tmp_path / "tiny-llama")
    result = cli("finetune-lm", "--pretrained", folder, "--data", pairs_file, "--out-dir", tmp_path / "runs",
                 "--name", "hf", "--epochs", "1", "--batch-size", "4", "--held-out", "2", "--sample-tokens", "4")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "hf"
    info = json.loads((run_dir / "config.json").read_text())
    assert info["adapted_layers"] == [f"model.layers.{i}.self_attn.{m}_proj" for i in (0, 1) for m in "qv"]
    assert info["end_ids"] == [258]  # config.json's eos_token_id ends each response, not "\n\n"
    adapted, tokenizer, _ = load_adapted(run_dir)
    ids = tokenizer.encode(format_prompt("what is a cat?"))
    assert len(nn.lora_layers(adapted)) == 4 and 258 not in ids[:-1]
    text = generate_text(run_dir, "what is a cat?", max_new_tokens=3, temperature=0, out=QUIET)
    assert text.startswith(format_prompt("what is a cat?"))
