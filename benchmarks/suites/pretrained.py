"""Suite ``pretrained``: loading Hugging Face checkpoints, and generating with one.

1. Load time and peak memory. A random-weight Llama-style checkpoint is written at a real
   model's shape (SmolLM2-135M's and SmolLM2-360M's) in float32 and bf16, and each is loaded
   in a fresh subprocess: baseline = the RSS after the imports and a tiny model's forward; then
   ``hf_decoders.load_model`` (timed) and one forward over 8 tokens (which reads every weight);
   peak_rss_delta = the RSS high-water mark - baseline, reported as a multiple of the float32
   weight bytes. A float32 file is memory-mapped, not copied, so the ratio should stay near 1
   (the mapped pages count in the RSS once read); a bf16 file is widened a tensor at a time.
2. Generation: tokens per second of greedy decoding with the KV cache on SmolLM2-135M's shape
   (random weights), minitransformer beside transformers + PyTorch on the same checkpoint, the
   two alternating in one process with the same threads.

    python -m benchmarks pretrained [--threads 2]
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..harness import print_table, time_alternating

# SmolLM2's shapes (their config.json files), and a tiny one for --quick
SHAPES = {
    "SmolLM2-135M": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152),
    "SmolLM2-360M": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                         num_key_value_heads=5, vocab_size=49152),
    "tiny": dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
}


def hf_config(shape: dict) -> dict:
    return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 8192,
            "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": True, "hidden_act": "silu",
            "bos_token_id": 0, "eos_token_id": 0, **shape}


def llama_shapes(shape: dict) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a tied Llama checkpoint in Hugging Face's names."""
    C, H, V = shape["hidden_size"], shape["intermediate_size"], shape["vocab_size"]
    hs = C // shape["num_attention_heads"]
    kv = shape["num_key_value_heads"] * hs
    shapes = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,)}
    for i in range(shape["num_hidden_layers"]):
        layer = f"model.layers.{i}."
        shapes.update({layer + "input_layernorm.weight": (C,), layer + "post_attention_layernorm.weight": (C,),
                       layer + "self_attn.q_proj.weight": (C, C), layer + "self_attn.k_proj.weight": (kv, C),
                       layer + "self_attn.v_proj.weight": (kv, C), layer + "self_attn.o_proj.weight": (C, C),
                       layer + "mlp.gate_proj.weight": (H, C), layer + "mlp.up_proj.weight": (H, C),
                       layer + "mlp.down_proj.weight": (C, H)})
    return shapes


def write_checkpoint(folder: Path, shape: dict, dtype: str) -> int:
    """A random-weight checkpoint (N(0, 0.02), norm gains 1) in ``folder``, written one tensor
    at a time (the header first: every size is known from the shapes); its parameter count.
    bf16 values are the top 16 bits of the float32 ones."""
    shapes = llama_shapes(shape)
    itemsize, code = (2, "BF16") if dtype == "bf16" else (4, "F32")
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, tensor_shape in shapes.items():
        size = math.prod(tensor_shape) * itemsize
        header[name] = {"dtype": code, "shape": list(tensor_shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(folder / "model.safetensors", "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for name, tensor_shape in shapes.items():
            values = np.ones(tensor_shape, np.float32) if name.endswith("norm.weight") else (
                rng.standard_normal(tensor_shape, dtype=np.float32) * np.float32(0.02))
            f.write(((values.view(np.uint32) >> 16).astype("<u2") if dtype == "bf16" else values).tobytes())
    (folder / "config.json").write_text(json.dumps(hf_config(shape)))
    return sum(math.prod(s) for s in shapes.values())


# --- 1. loading, in a fresh process ----------------------------------------------------------------

def _rss() -> tuple[int, int]:
    status = Path("/proc/self/status").read_text()
    values = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in status.splitlines()
              if line.startswith(("VmRSS", "VmHWM"))}
    return values["VmRSS"], values["VmHWM"]


def measure_load(folder: str) -> dict:
    """Run in a fresh process: the load time and the memory the loaded model holds."""
    import minitransformer as mt
    from minitransformer import hf_decoders, nn

    with mt.no_grad():  # warm-up: one-time set-up (kernels, thread pools) belongs in the baseline
        nn.Llama(nn.LlamaConfig(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=8))(np.zeros((1, 4), int))
    baseline = _rss()[0]
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    start = time.perf_counter()
    model = hf_decoders.load_model(folder)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    with mt.no_grad():
        model(np.arange(8)[None])
    forward_s = time.perf_counter() - start
    rss, peak = _rss()
    return {"load_s": load_s, "first_forward_s": forward_s, "peak_rss_delta": peak - baseline,
            "rss_delta_after": rss - baseline}


def load_row(name: str, shape: dict, dtype: str, workdir: Path) -> dict:
    folder = workdir / f"{name}-{dtype}"
    parameters = write_checkpoint(folder, shape, dtype)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.suites.pretrained", str(folder)],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"loading {folder} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    fp32_bytes = 4 * parameters
    return {"model": name, "stored": dtype, "parameters": parameters, "file_mb": (folder / "model.safetensors")
            .stat().st_size / 1e6, "fp32_weight_mb": fp32_bytes / 1e6, **result,
            "peak_rss_mb": result["peak_rss_delta"] / 1e6, "peak_over_fp32_weights": result["peak_rss_delta"] / fp32_bytes}


# --- 2. generation beside transformers ---------------------------------------------------------------

def generation_row(name: str, shape: dict, workdir: Path, torch, prompt_tokens: int, new_tokens: int,
                   rounds: int) -> dict:
    from minitransformer import hf_decoders

    folder = workdir / f"{name}-float32"
    if not (folder / "model.safetensors").is_file():
        write_checkpoint(folder, shape, "float32")
    ours = hf_decoders.load_model(folder, block_size=prompt_tokens + new_tokens)
    prompt = np.random.default_rng(1).integers(0, shape["vocab_size"], (1, prompt_tokens))
    outputs, candidates = {}, {}

    def minitransformer_generate():
        outputs["minitransformer"] = ours.generate(prompt, new_tokens, temperature=0).numpy()[0, prompt_tokens:]
    candidates["minitransformer"] = minitransformer_generate
    row = {"model": name, "parameters": ours.num_parameters(), "prompt_tokens": prompt_tokens,
           "new_tokens": new_tokens}
    try:
        import transformers
    except ImportError:
        transformers = None
    if torch is not None and transformers is not None:
        theirs = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        prompt_tensor = torch.tensor(prompt)

        def transformers_generate():
            with torch.no_grad():
                out = theirs.generate(prompt_tensor, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                      do_sample=False, pad_token_id=0)
            outputs["transformers"] = out.numpy()[0, prompt_tokens:]
        candidates["transformers"] = transformers_generate
    timings = time_alternating(candidates, rounds=rounds, warmup=1)
    for framework, timing in timings.items():
        row[f"{framework}_tokens_per_s"] = new_tokens / (timing["median_ms"] / 1e3)
    if "transformers" in timings:
        row["ratio_to_transformers"] = row["minitransformer_tokens_per_s"] / row["transformers_tokens_per_s"]
        row["same_tokens"] = int((outputs["minitransformer"] == outputs["transformers"]).sum())
    row["timings"] = timings
    return row


def run(quick: bool, torch=None) -> dict:
    load_sizes = {"tiny": SHAPES["tiny"]} if quick else {k: SHAPES[k] for k in ("SmolLM2-135M", "SmolLM2-360M")}
    with tempfile.TemporaryDirectory(prefix="mt-pretrained-bench-") as workdir:
        workdir = Path(workdir)
        loads = [load_row(name, shape, dtype, workdir) for name, shape in load_sizes.items()
                 for dtype in ("float32", "bf16")]
        print_table("load_model: time and peak memory (fresh process; peak RSS over the fp32 weight bytes)", loads, [
            ("model", "model"), ("stored", "file dtype"), ("parameters", "parameters"), ("file_mb", "file MB"),
            ("load_s", "load s"), ("first_forward_s", "1st forward s"), ("peak_rss_mb", "peak RSS MB"),
            ("peak_over_fp32_weights", "peak / fp32 weights")])
        name = "tiny" if quick else "SmolLM2-135M"
        prompt_tokens, new_tokens, rounds = (8, 8, 1) if quick else (32, 32, 3)
        generation = [generation_row(name, SHAPES[name], workdir, torch, prompt_tokens, new_tokens, rounds)]
        print_table("greedy generation with the KV cache, batch 1: new tokens per second", generation, [
            ("model", "model"), ("prompt_tokens", "prompt"), ("new_tokens", "new"),
            ("minitransformer_tokens_per_s", "minitransformer tok/s"),
            ("transformers_tokens_per_s", "transformers tok/s"), ("ratio_to_transformers", "ratio"),
            ("same_tokens", "same tokens")])
    return {"shapes": SHAPES, "load": loads, "generation": generation}


if __name__ == "__main__":
    print(json.dumps(measure_load(sys.argv[1])))
