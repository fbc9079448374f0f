"""``python -m minitransformer <command>`` (also the ``minitransformer`` console script).

    train      train a character-level (or BPE) GPT; default: the standard library's docstrings
    generate   sample text from a trained run
    finetune   fine-tune a text classifier (from a trained run, or from scratch)
    predict    classify texts with a fine-tuned run
    embed      sentence embeddings from a pretrained encoder (all-MiniLM-L6-v2)
    assignments  release student copies of a course assignment, grade submissions

Flags of train and finetune are generated from their config dataclasses (TrainConfig,
FinetuneConfig), so each option is written once. Errors print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

from .assignments import command as assignments_command
from .finetune import FinetuneConfig, finetune, predict
from .generate import generate_text
from .train import RESUMABLE_OVERRIDES, TrainConfig, train


def _field_type(hint):
    """The Python type of a config field's annotation, unwrapping ``X | None``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def add_config_flags(parser: argparse.ArgumentParser, config_class) -> None:
    """One --flag per dataclass field; defaults are left out (SUPPRESS) so that only the
    flags actually given override a --config file or a resumed run."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        kind = _field_type(hints[field.name])
        default = field.default
        help_text = f"{field.metadata.get('help', '')} (default: {default})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, choices=field.metadata.get("choices"),
                                help=help_text, metavar=field.name.upper())


def _given(args: argparse.Namespace, config_class) -> dict:
    names = {f.name for f in dataclasses.fields(config_class)}
    return {name: value for name, value in vars(args).items() if name in names}


def _read_config_file(path: str | None) -> dict:
    if path is None:
        return {}
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"--config: {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"--config: {path} is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"--config: {path} must hold a JSON object of option names to values")
    return {key.replace("-", "_"): value for key, value in values.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minitransformer", description="Train, sample and fine-tune small transformers.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    train_parser = commands.add_parser("train", help="train a GPT language model")
    train_parser.add_argument("--config", help="JSON file of option values (flags given here win)")
    train_parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run "
                              f"(only {', '.join(RESUMABLE_OVERRIDES)} may change)")
    add_config_flags(train_parser, TrainConfig)

    generate_parser = commands.add_parser("generate", help="sample text from a trained run")
    generate_parser.add_argument("--run", required=True, help="run directory made by train")
    generate_parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    generate_parser.add_argument("--max-new-tokens", type=int, default=300)
    generate_parser.add_argument("--temperature", type=float, default=0.8)
    generate_parser.add_argument("--top-k", type=int, default=None)
    generate_parser.add_argument("--seed", type=int, default=None)
    generate_parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")

    finetune_parser = commands.add_parser("finetune", help="fine-tune a text classifier")
    finetune_parser.add_argument("--config", help="JSON file of option values (flags given here win)")
    add_config_flags(finetune_parser, FinetuneConfig)

    predict_parser = commands.add_parser("predict", help="classify texts with a fine-tuned run")
    predict_parser.add_argument("--run", required=True, help="run directory made by finetune")
    predict_parser.add_argument("texts", nargs="+", help="texts to classify")
    predict_parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")

    embed_parser = commands.add_parser("embed", help="sentence embeddings and their cosine similarities")
    embed_parser.add_argument("texts", nargs="+", help="sentences to embed")
    embed_parser.add_argument("--pretrained", default="minilm", help="'minilm' or a folder of Hugging Face BERT files")
    embed_parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")

    assignments_command.add_parser(commands)
    return parser


def embed(texts: list[str], pretrained: str, device: str) -> None:
    """Print each embedding's norm and the cosine-similarity matrix."""
    from .pretrained import load_pretrained

    vectors = load_pretrained(pretrained).to(device).sentence_embeddings(texts)  # (N, C)
    norms = (vectors * vectors).sum(axis=1) ** 0.5
    cosine = (vectors @ vectors.T) / (norms[:, None] * norms[None, :])
    print(f"{len(texts)} embeddings of dimension {vectors.shape[1]}")
    for i, (text, norm) in enumerate(zip(texts, norms)):
        print(f"[{i}] norm {norm:.4f}  {text}")
    print("cosine similarity:")
    print("     " + " ".join(f"[{j}]".rjust(7) for j in range(len(texts))))
    for i, row in enumerate(cosine):
        print(f"[{i}]  " + " ".join(f"{value:7.4f}" for value in row))


def run_command(args: argparse.Namespace) -> None:
    if args.command == "train":
        given = _given(args, TrainConfig)
        if args.resume:
            train(resume=args.resume, overrides=given, out=sys.stderr)
        else:
            train(TrainConfig.from_dict({**_read_config_file(args.config), **given}), out=sys.stderr)
    elif args.command == "generate":
        text = generate_text(args.run, args.prompt, args.max_new_tokens, args.temperature, args.top_k,
                             args.seed, args.device, out=sys.stderr)
        print(text)
    elif args.command == "finetune":
        values = {**_read_config_file(args.config), **_given(args, FinetuneConfig)}
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(FinetuneConfig)})
        if unknown:
            raise ValueError(f"finetune: unknown config keys {unknown}")
        finetune(FinetuneConfig(**values), out=sys.stderr)
    elif args.command == "embed":
        embed(args.texts, args.pretrained, args.device)
    elif args.command == "predict":
        for text, (label, probability) in zip(args.texts, predict(args.run, args.texts, args.device)):
            print(f"{label}\t{probability:.3f}\t{text}")
    elif args.command == "assignments":
        assignments_command.run(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run_command(args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as error:
        print(f"minitransformer {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0
