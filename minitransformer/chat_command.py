"""``python -m minitransformer chat --pretrained NAME_OR_DIR``: talk with a pretrained chat model.

Lines typed (or piped) in are the user's messages; the answer streams to stdout. ``/reset``
starts a new conversation, ``/exit`` (or end of input) leaves. Ctrl-C while an answer is being
written stops that answer only; the conversation goes on.
"""

from __future__ import annotations

import argparse
import sys

from .chat import ChatSession
from .nn import SamplingSettings


def add_parser(commands) -> None:
    """Add the ``chat`` subcommand to the CLI's subparsers."""
    parser = commands.add_parser(
        "chat", help="chat with a pretrained model (Hugging Face folder or hub name)",
        description="Chat with a pretrained chat model: its chat template formats the conversation and its "
                    "key/value cache is kept across turns. Type /reset to start again, /exit to leave; "
                    "Ctrl-C stops the current answer only.")
    parser.add_argument("--pretrained", required=True, metavar="NAME_OR_DIR",
                        help="a folder of Hugging Face model files, or a hub name such as "
                             "HuggingFaceTB/SmolLM2-135M-Instruct (downloaded once into the cache)")
    parser.add_argument("--system", default=None, metavar="TEXT", help="a system message that opens the conversation")
    parser.add_argument("--max-new-tokens", type=int, default=512, metavar="N", help="longest answer, in tokens")
    parser.add_argument("--temperature", type=float, default=0.7, metavar="T", help="0 is greedy")
    parser.add_argument("--top-k", type=int, default=None, metavar="K", help="sample among the K likeliest tokens")
    parser.add_argument("--top-p", type=float, default=0.9, metavar="P", help="nucleus sampling")
    parser.add_argument("--min-p", type=float, default=None, metavar="P", help="min-p sampling (default: off)")
    parser.add_argument("--repetition-penalty", type=float, default=1.0, metavar="R", help="above 1 discourages repeats")
    parser.add_argument("--seed", type=int, default=None, help="random seed, for reproducible answers")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="the weights' type in memory")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs")


def chat_loop(session: ChatSession, lines, out, err, interactive: bool = False) -> None:
    """Answer each line of ``lines`` in turn; /reset, /exit and Ctrl-C as the module says."""
    while True:
        if interactive:
            print("you> ", end="", file=err, flush=True)
        try:
            line = next(lines, None)
        except KeyboardInterrupt:  # Ctrl-C at the prompt leaves
            print(file=err)
            return
        if line is None or line.strip() in ("/exit", "/quit"):
            return
        text = line.rstrip("\n")
        if text.strip() == "/reset":
            session.reset()
            print("(new conversation)", file=err, flush=True)
            continue
        if not text.strip():
            continue
        try:
            for piece in session.reply(text):
                out.write(piece)
                out.flush()
        except KeyboardInterrupt:
            print(" [stopped]", file=err, flush=True)
        except ValueError as error:  # e.g. the conversation outgrew the context: /reset goes on
            print(f"\nchat: {error}", file=err, flush=True)
        out.write("\n")
        out.flush()


def run(args: argparse.Namespace) -> None:
    from .pretrained import load_lm

    lm = load_lm(args.pretrained, dtype=args.dtype, device=args.device, out=sys.stderr)
    settings = SamplingSettings(args.temperature, args.top_k, args.top_p, args.min_p, args.repetition_penalty)
    session = ChatSession(lm, settings, args.max_new_tokens, args.seed, args.system)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {lm.directory} (chat template: {lm.chat_template.engine}); /reset, /exit, "
              "Ctrl-C stops an answer", file=sys.stderr)
    chat_loop(session, iter(sys.stdin.readline, ""), sys.stdout, sys.stderr, interactive)
