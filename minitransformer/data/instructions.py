"""Instruction data: prompt/response pairs, the prompt template, and batches whose loss counts
the response tokens only.

A file holds one JSON object per line, ``{"prompt": "...", "response": "..."}`` (other keys are
ignored; blank lines are skipped). Each pair becomes one token sequence:

    Question: {prompt}\\nAnswer: {response}<end>

where <end> is the tokenizer's end-of-sequence token when it has one, else the text "\\n\\n".
The model is trained to continue the prompt part with the response and to stop; the prompt is
given, not predicted, so its positions get the target -100 (``IGNORE_INDEX``), which
cross-entropy skips: no gradient flows from them (Ouyang et al. 2022 and Hugging Face TRL's
completion-only collator train on completions the same way).

The embedded set (``default_instructions``, minitransformer/data/instructions.jsonl) was
written for this package from its own documentation: questions about its API (what a function
computes, its arguments, the shapes it takes and returns) answered from the docstrings, and
questions about the commands, the checkpoint formats and the course answered from the README
and the lessons. It is small (a few hundred pairs) so that ``finetune-lm`` runs offline in
seconds; it teaches a tiny model the question/answer format and some vocabulary, not facts it
could reliably recall.
"""

from __future__ import annotations

import importlib.resources
import inspect
from dataclasses import dataclass

import numpy as np

from ..files import MiB, parse_json, read_text

IGNORE_INDEX = -100  # the target of a position the loss skips (PyTorch's and Hugging Face's value)
PROMPT_TEMPLATE = "Question: {prompt}\nAnswer: "
END_TEXT = "\n\n"  # ends a response when the tokenizer has no end-of-sequence token
MAX_FILE_BYTES = 256 * MiB
DEFAULT_FILE = "instructions.jsonl"


@dataclass(frozen=True)
class InstructionPair:
    prompt: str
    response: str


def format_prompt(prompt: str) -> str:
    """The text the model sees before its answer: ``PROMPT_TEMPLATE`` filled in."""
    return PROMPT_TEMPLATE.format(prompt=prompt)


def parse_instructions(text: str, where: str) -> list[InstructionPair]:
    """The pairs of a JSONL text; a bad line is a ValueError naming ``where`` and the line."""
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        what = f"{where} line {number}"
        record = parse_json(line, what)
        if not isinstance(record, dict):
            raise ValueError(f"{what}: expected a JSON object with \"prompt\" and \"response\", got "
                             f"a {type(record).__name__}")
        for key in ("prompt", "response"):
            if key not in record:
                raise ValueError(f"{what}: missing {key!r}; expected {{\"prompt\": ..., \"response\": ...}}")
            if not isinstance(record[key], str):
                raise ValueError(f"{what}: {key!r} must be a string, got {type(record[key]).__name__}")
        if not record["response"].strip():
            raise ValueError(f"{what}: the response is empty; there would be nothing to learn from it")
        pairs.append(InstructionPair(record["prompt"], record["response"]))
    if not pairs:
        raise ValueError(f"{where}: no prompt/response pairs; expected one JSON object per line")
    return pairs


def load_instructions(path) -> list[InstructionPair]:
    """The prompt/response pairs of a JSONL file (see the module docstring)."""
    return parse_instructions(read_text(path, "instruction data", MAX_FILE_BYTES), f"instruction data {path}")


def default_instructions() -> list[InstructionPair]:
    """The embedded instruction set: questions and answers about this package's API."""
    resource = importlib.resources.files(__package__).joinpath(DEFAULT_FILE)
    return parse_instructions(resource.read_text(encoding="utf-8"), f"the embedded {DEFAULT_FILE}")


def encode_text(tokenizer, text: str) -> list[int]:
    """The ids of ``text`` alone: without the begin/end-of-sequence tokens a Hugging Face
    tokenizer adds around a whole input (``add_special_tokens=False``), which must not appear
    between a prompt and its response."""
    if "add_special_tokens" in inspect.signature(tokenizer.encode).parameters:
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(text)


def encode_pair(tokenizer, pair: InstructionPair, end_ids: list[int],
                max_length: int) -> tuple[list[int], int] | None:
    """(token ids of prompt + response + end, how many of them are the prompt), cut to
    ``max_length`` tokens from the right; None when no response token would be left. The
    prompt is encoded as a whole input (a Hugging Face tokenizer may put its BOS token first),
    the response as a continuation."""
    prompt_ids = tokenizer.encode(format_prompt(pair.prompt))
    ids = (prompt_ids + encode_text(tokenizer, pair.response) + list(end_ids))[:max_length]
    if len(ids) <= len(prompt_ids):
        return None
    return ids, len(prompt_ids)


def instruction_batch(examples: list[tuple[list[int], int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), both (B, T) int64, T the longest example's length minus one.

    inputs[b, t] = ids[t] and targets[b, t] = ids[t + 1] (predict the next token), except that
    a target inside the prompt, or in the padding after the end, is ``IGNORE_INDEX``: the loss
    counts exactly the response tokens and the end token."""
    width = max(len(ids) for ids, _ in examples) - 1
    inputs = np.full((len(examples), width), pad_id, dtype=np.int64)
    targets = np.full((len(examples), width), IGNORE_INDEX, dtype=np.int64)
    for row, (ids, prompt_length) in enumerate(examples):
        inputs[row, :len(ids) - 1] = ids[:-1]
        targets[row, prompt_length - 1:len(ids) - 1] = ids[prompt_length:]  # the tokens after the prompt
    return inputs, targets
