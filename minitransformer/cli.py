"""``python -m minitransformer <command>`` (also the ``minitransformer`` console script).

    train      train a character-level (or BPE) GPT or Llama-style model; default: the standard
               library's docstrings
    pretrain-bert  pretrain a BERT-style encoder by masked-LM and next-sentence prediction
    generate   sample text from a trained run or a pretrained model, streamed as it comes
    chat       chat with a pretrained model (Hugging Face folder or hub name)
    finetune   fine-tune a text classifier (from MiniLM or a trained run) and compare it with one
               trained from random weights
    predict    classify texts with a fine-tuned run
    finetune-lm  instruction-tune a language model with LoRA adapters (saves only the adapters)
    embed      sentence embeddings from a pretrained encoder (all-MiniLM-L6-v2)
    assignments  release student copies of a course assignment, grade submissions

Flags of train and finetune are generated from their config dataclasses (TrainConfig,
FinetuneConfig), so each option is written once. nanoGPT's spellings of a flag work too:
``--max_iters 10`` and ``--max_iters=10`` mean ``--max-iters 10``. Results (final losses,
samples, tables) go to stdout, progress to stderr. Errors print one line on stderr and exit 1;
a mistyped flag is reported under the usage of the command it was given to.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

from . import finetune_lm
from . import chat_command
from .assignments import command as assignments_command
from .distributed import error_prefix
from .files import read_json
from .finetune import FinetuneConfig, finetune, predict
from .generate import stream_text
from .nn import SamplingSettings
from . import pretrain_command
from .runs import check_fields, field_type
from .train import RESUMABLE_OVERRIDES, TrainConfig, train


def with_default(help_text: str, default) -> str:
    """``help_text`` ending in "(default: X)", once: unless it already says what its default is,
    or there is none to say (None: the option is off unless given)."""
    if default is None or default is argparse.SUPPRESS or "(default" in help_text:
        return help_text
    return f"{help_text} (default: {default})"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, every option's default written once after its description."""

    def _get_help_string(self, action):
        if action.option_strings and action.nargs != 0:  # an option taking a value
            return with_default(action.help or "", action.default)
        return action.help


class CommandParser(argparse.ArgumentParser):
    """A (sub)command's parser: arguments it does not know are an error under its own usage
    (argparse would hand them up to ``minitransformer``'s and report them there)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def nanogpt_spellings(argv: list[str]) -> list[str]:
    """nanoGPT's flag names (``--max_iters``, ``--max_iters=10``) as this CLI's (``--max-iters``):
    the name part of every ``--option`` (up to an ``=``) with ``_`` read as ``-``. Arguments after
    a bare ``--`` are left alone."""
    spelled = []
    for index, argument in enumerate(argv):
        if argument == "--":
            return spelled + argv[index:]
        if argument.startswith("--"):
            name, equals, value = argument.partition("=")
            argument = name.replace("_", "-") + equals + value
        spelled.append(argument)
    return spelled


def add_config_flags(parser: argparse.ArgumentParser, config_class) -> None:
    """One --flag per dataclass field; defaults are left out (SUPPRESS) so that only the
    flags actually given override a --config file or a resumed run, and written into the help
    text instead."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        kind, _ = field_type(hints[field.name])
        help_text = with_default(field.metadata.get("help", ""), field.default)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        else:
            choices = field.metadata.get("choices")
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, choices=choices, help=help_text,
                                metavar=None if choices else field.name.upper())


def _given(args: argparse.Namespace, config_class) -> dict:
    names = {f.name for f in dataclasses.fields(config_class)}
    return {name: value for name, value in vars(args).items() if name in names}


def _config_from_file_and_flags(command: str, config_class, path: str | None, given: dict):
    """The config of ``--config FILE`` (a JSON object of option names, with - or _) overridden
    by the flags given; the file's values are type-checked with the file named in the error."""
    values = {}
    if path is not None:
        loaded = read_json(path, f"{command} --config", max_bytes=1 << 20)
        if not isinstance(loaded, dict):
            raise ValueError(f"{command} --config: {path} must hold a JSON object of option names to values")
        values = check_fields(config_class, {key.replace("-", "_"): value for key, value in loaded.items()},
                              f"{command} --config {path}")
    return config_class(**{**values, **given})


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="minitransformer", description="Train, sample and fine-tune small transformers.",
                           epilog="`minitransformer COMMAND --help` describes each command's options.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command", parser_class=CommandParser)

    train_parser = commands.add_parser(
        "train", help="train a GPT (or Llama-style) language model",
        description="Train a GPT (or, with --arch llama, a Llama-style) language model into OUT_DIR/NAME/ (config, tokenizer, checkpoint, log.jsonl, "
                    "loss.png, samples.txt). Flags are nanoGPT's config names; its spellings --max_iters 10 and "
                    "--max_iters=10 work too. Ctrl-C writes a checkpoint; --resume continues from it.")
    train_parser.add_argument("--config", metavar="FILE", help="JSON file of option values (flags given here win)")
    resumable = ", ".join("--" + name.replace("_", "-") for name in RESUMABLE_OVERRIDES)
    train_parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint, from "
                              f"any directory (only {resumable} may change; a larger --max-iters continues at "
                              "--min-lr after the run's own decay, unless --lr-decay-iters is given)")
    add_config_flags(train_parser, TrainConfig)

    generate_parser = commands.add_parser("generate", help="sample text from a trained run or a pretrained model",
                                          description="Continue a prompt with text sampled from a trained run "
                                                      "or a pretrained model; the text goes to stdout.")
    model_source = generate_parser.add_mutually_exclusive_group(required=True)
    model_source.add_argument("--run", metavar="RUN_DIR", help="run directory made by train or finetune-lm")
    model_source.add_argument("--pretrained", metavar="NAME_OR_DIR",
                              help="a folder of Hugging Face model files (GPT-2, Llama, Qwen, Mistral, SmolLM2) "
                                   "or a hub name such as gpt2, downloaded once into the cache")
    generate_parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    generate_parser.add_argument("--max-new-tokens", type=int, default=300, metavar="N", help="tokens to sample")
    generate_parser.add_argument("--temperature", type=float, default=0.8, metavar="T",
                                 help="divides the logits: below 1 sharper, above 1 more random, 0 greedy "
                                      "(default: 0.8)")
    generate_parser.add_argument("--top-k", type=int, default=None, metavar="K",
                                 help="sample among the K likeliest tokens only (default: all of them)")
    generate_parser.add_argument("--top-p", type=float, default=None, metavar="P",
                                 help="nucleus: sample among the likeliest tokens whose probabilities add up "
                                      "to P (default: off)")
    generate_parser.add_argument("--min-p", type=float, default=None, metavar="P",
                                 help="sample among tokens at least P times as likely as the likeliest "
                                      "(default: off)")
    generate_parser.add_argument("--repetition-penalty", type=float, default=1.0, metavar="R",
                                 help="above 1 makes tokens already in the text less likely (default: 1, off)")
    generate_parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                                 help="end the text before TEXT; may be given several times")
    generate_parser.add_argument("--seed", type=int, default=None,
                                 help="random seed, for reproducible samples (default: a fresh one each time)")
    generate_parser.add_argument("--no-cache", dest="use_cache", action="store_false",
                                 help="recompute the whole context for every token (slower, the same text)")
    generate_parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs")

    finetune_parser = commands.add_parser(
        "finetune", help="fine-tune a text classifier",
        description="Fine-tune a text classifier from a pretrained starting point and compare it with a model "
                    "trained from random weights on the same data. Without --pretrained, --from-run or "
                    "--from-scratch it starts from the best one available: MiniLM when its weights are "
                    "installed, else the newest `train` run in --out-dir.")
    finetune_parser.add_argument("--config", metavar="FILE", help="JSON file of option values (flags given here win)")
    add_config_flags(finetune_parser, FinetuneConfig)

    predict_parser = commands.add_parser("predict", help="classify texts with a fine-tuned run",
                                         description="Print label, probability and text, one line per text.")
    predict_parser.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory made by finetune")
    predict_parser.add_argument("texts", nargs="+", help="texts to classify")
    predict_parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs")

    embed_parser = commands.add_parser("embed", help="sentence embeddings and their cosine similarities",
                                       description="Print each sentence embedding's norm and the matrix of "
                                                   "their cosine similarities.")
    embed_parser.add_argument("texts", nargs="+", help="sentences to embed")
    embed_parser.add_argument("--pretrained", default="minilm", metavar="NAME_OR_DIR",
                              help="'minilm' or a folder of Hugging Face BERT files")
    embed_parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs")

    pretrain_command.add_parser(commands)
    finetune_lm.add_parser(commands)
    assignments_command.add_parser(commands)
    chat_command.add_parser(commands)
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


def run_or_resume(command: str, args: argparse.Namespace, config_class, resumable, entry) -> None:
    """A run command (train, pretrain-bert, finetune-lm): ``--resume DIR`` continues a run with
    the flags given as overrides (only ``resumable`` ones), else a new run starts from
    ``--config FILE`` and the flags. ``entry`` is the command's function, e.g. ``train``."""
    given = _given(args, config_class)
    if args.resume:
        if args.config:
            raise ValueError(f"{command}: --resume continues a run with its own config; give flags "
                             f"({', '.join(resumable)}) instead of --config")
        entry(resume=args.resume, overrides=given, out=sys.stderr, results=sys.stdout)
    else:
        entry(_config_from_file_and_flags(command, config_class, args.config, given), out=sys.stderr,
              results=sys.stdout)


def run_command(args: argparse.Namespace) -> None:
    if args.command == "train":
        run_or_resume("train", args, TrainConfig, RESUMABLE_OVERRIDES, train)
    elif args.command == "generate":
        settings = SamplingSettings(args.temperature, args.top_k, args.top_p, args.min_p, args.repetition_penalty)
        for piece in stream_text(args.run or args.pretrained, args.prompt, args.max_new_tokens, settings,
                                 tuple(args.stop), args.seed, args.device, args.use_cache, out=sys.stderr,
                                 pretrained=args.pretrained is not None):
            sys.stdout.write(piece)
            sys.stdout.flush()  # each piece as soon as it is sampled
        print()
    elif args.command == "finetune":
        config = _config_from_file_and_flags("finetune", FinetuneConfig, args.config, _given(args, FinetuneConfig))
        finetune(config, out=sys.stderr, results=sys.stdout)
    elif args.command == "embed":
        embed(args.texts, args.pretrained, args.device)
    elif args.command == "predict":
        for text, (label, probability) in zip(args.texts, predict(args.run, args.texts, args.device, out=sys.stderr)):
            print(f"{label}\t{probability:.3f}\t{text}")
    elif args.command == "pretrain-bert":
        pretrain_command.run(args)
    elif args.command == "finetune-lm":
        finetune_lm.run(args)
    elif args.command == "assignments":
        assignments_command.run(args)
    elif args.command == "chat":
        chat_command.run(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(nanogpt_spellings(sys.argv[1:] if argv is None else list(argv)))
    try:
        run_command(args)
    except (ValueError, TypeError, OSError, RuntimeError) as error:
        print(f"minitransformer {args.command}: error: {error_prefix()}{_one_line(error, args.command)}",
              file=sys.stderr)
        return 1
    except MemoryError:
        print(f"minitransformer {args.command}: error: out of memory; use a smaller model, batch or data",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C in train, or one in generate, predict, finetune
        print(f"minitransformer {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


def _one_line(error: BaseException, command: str) -> str:
    """The error's message on one line, without a repeated "train: " prefix."""
    text = str(error) if not isinstance(error, OSError) or not error.filename else (
        f"{error.filename}: {error.strerror}")
    text = " ".join(text.split()) or type(error).__name__
    return text.removeprefix(f"{command}: ")
