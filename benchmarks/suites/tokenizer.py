"""Suite ``tokenizer``: how long BPE training and encoding take, next to Hugging Face tokenizers.

The text is the first 130 KB of the standard library's docstrings (the default training data);
training learns a byte-level BPE of 500 tokens from it. Rows:
    train, first call      ByteBPETokenizer.train in a process that has not built its Unicode
                           tables yet (unicode_regex.py builds them once, about 0.1 s idle)
    train                  ByteBPETokenizer.train, tables built (the median of several runs)
    train (tokenizers)     the library's BpeTrainer, GPT-2's byte-level pre-tokenizer, same
                           text and size, timed alternately with ours (Rust, several threads)
    encode ...             the 130 KB encoded by ByteBPETokenizer, by the tokenizer.json reader
                           (HuggingFaceTokenizer) and by the library, all with the trained
                           merges, each call on a fresh tokenizer (no cached words)
Wall times of the rows are measured alternately (harness.time_alternating). On a shared machine
wall time grows with the load, so the rows of minitransformer (one thread) also give their CPU
time (``cpu_ms``, time.process_time: what the run takes on an idle core). The library's rows
have none: it trains on several threads, whose CPU times add up.
"""

from __future__ import annotations

import json
import statistics
import time

from ..harness import print_table, time_alternating

TEXT_BYTES = 130_000
VOCAB_SIZE = 500


def _gpt2_tokenizer_json(tokenizer) -> dict:
    """The trained ByteBPETokenizer as a GPT-2-style tokenizer.json (byte-level, no prefix space)."""
    from minitransformer.data.bpe import bytes_to_unicode

    byte_char = bytes_to_unicode()
    as_text = ["".join(byte_char[b] for b in tokenizer.token_bytes(i)) for i in range(tokenizer.vocab_size)]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
            "pre_tokenizer": byte_level, "post_processor": byte_level, "decoder": byte_level,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False, "vocab": {token: i for i, token in enumerate(as_text)},
                      "merges": [[as_text[a], as_text[b]] for a, b in tokenizer.merges]}}


def _cpu_seconds(function) -> float:
    start = time.process_time()
    function()
    return time.process_time() - start


def _clear_unicode_tables() -> None:
    from minitransformer.data import unicode_regex

    for cached in (unicode_regex._category_runs, unicode_regex.property_ranges,
                   unicode_regex.translate, unicode_regex.compile_pattern):
        cached.cache_clear()


def run(quick: bool) -> dict:
    from minitransformer import data
    from minitransformer.data import ByteBPETokenizer, HuggingFaceTokenizer

    size, vocab_size, rounds = (20_000, 300, 2) if quick else (TEXT_BYTES, VOCAB_SIZE, 7)
    text = data.stdlib_docstrings().encode("utf-8")[:size].decode("utf-8", errors="ignore")
    megabytes = len(text.encode("utf-8")) / 1e6

    _clear_unicode_tables()
    start, start_cpu = time.perf_counter(), time.process_time()
    trained = ByteBPETokenizer.train(text, vocab_size)
    first_call_s, first_call_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    config = _gpt2_tokenizer_json(trained)

    train_candidates = {"train": lambda: ByteBPETokenizer.train(text, vocab_size)}
    encode_candidates = {
        "encode (ByteBPETokenizer)": lambda: ByteBPETokenizer(trained.merges).encode(text),
        "encode (tokenizer.json reader)": lambda: HuggingFaceTokenizer(config).encode(text),
    }
    same_ids = None
    try:
        import tokenizers
    except ImportError:
        tokenizers = None
        print("tokenizers is not installed: the library's rows stay empty")
    if tokenizers is not None:
        def library_train():
            tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
            tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
            trainer = tokenizers.trainers.BpeTrainer(
                vocab_size=vocab_size, show_progress=False,
                initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
            tokenizer.train_from_iterator([text], trainer)
        serialized = json.dumps(config)
        train_candidates["train (tokenizers)"] = library_train
        encode_candidates["encode (tokenizers)"] = lambda: tokenizers.Tokenizer.from_str(serialized).encode(text)
        library = tokenizers.Tokenizer.from_str(serialized)
        # the reader and the library read the same file: their ids must agree
        same_ids = library.encode(text).ids == HuggingFaceTokenizer(config).encode(text)
        print(f"the tokenizer.json reader and the library give the same ids: {same_ids}")

    timings = {**time_alternating(train_candidates, rounds, settle_s=0.0),
               **time_alternating(encode_candidates, rounds, settle_s=0.0)}
    rows = [{"name": "train, first call", "median_ms": first_call_s * 1e3, "cpu_ms": first_call_cpu_s * 1e3}]
    for name, timing in timings.items():
        rows.append({"name": name, **timing})
        if "tokenizers)" not in name:
            candidate = {**train_candidates, **encode_candidates}[name]
            rows[-1]["cpu_ms"] = statistics.median(_cpu_seconds(candidate) for _ in range(rounds)) * 1e3
    for row in rows:
        if row["name"].startswith("encode"):
            row["mb_per_s"] = megabytes / (row["median_ms"] / 1e3)  # wall time
    print_table(f"BPE on {megabytes * 1e3:.0f} KB of docstrings, {vocab_size} tokens (median of {rounds})",
                rows, [("name", "what"), ("median_ms", "median ms"), ("p25_ms", "p25"), ("p75_ms", "p75"),
                       ("cpu_ms", "CPU ms"), ("mb_per_s", "MB/s")])
    return {"text_bytes": len(text.encode("utf-8")), "vocab_size": vocab_size, "rounds": rounds,
            "tokenizers": getattr(tokenizers, "__version__", None), "same_ids": same_ids, "rows": rows}
