"""``python -m minitransformer pretrain-bert``: BERT pretraining (MLM and NSP) into a run directory.

A command of its own rather than ``train --objective mlm``: it builds another model (an
encoder with two heads), from other examples (sentence pairs with masked tokens), writes
another demo (fill the mask, not samples) and another kind of run ("mlm", which ``finetune
--from-run`` reads as a BERT); ``train``'s --arch, --tokenizer and --bias would mean nothing
here. The flags it shares with ``train`` have the same names.
"""

from __future__ import annotations

import argparse

from .pretrain import RESUMABLE_OVERRIDES, PretrainConfig, pretrain


def add_parser(commands) -> None:
    """Add ``pretrain-bert`` to the CLI's subparsers."""
    from .cli import add_config_flags  # the CLI's flag builder; cli imports this module

    parser = commands.add_parser(
        "pretrain-bert", help="pretrain a BERT-style encoder by masked-LM and next-sentence prediction",
        description="Pretrain a BERT-style encoder as document 001 describes: masked language modelling (15%% of "
                    "the tokens chosen; 80%% [MASK], 10%% random, 10%% kept) and next-sentence prediction, into "
                    "OUT_DIR/NAME/ (config, vocab.txt, checkpoint, log.jsonl, loss.png, fill_mask.txt). "
                    "`finetune --from-run OUT_DIR/NAME` fine-tunes it. Ctrl-C writes a checkpoint; --resume "
                    "continues from it.")
    parser.add_argument("--config", metavar="FILE", help="JSON file of option values (flags given here win)")
    resumable = ", ".join("--" + name.replace("_", "-") for name in RESUMABLE_OVERRIDES)
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help=f"continue a run from its last checkpoint (only {resumable} may change)")
    add_config_flags(parser, PretrainConfig)


def run(args: argparse.Namespace) -> None:
    from .cli import run_or_resume

    run_or_resume("pretrain-bert", args, PretrainConfig, RESUMABLE_OVERRIDES, pretrain)
