"""The 'cuda' device end to end: models and optimizers moved there, a GPT and a BERT training
step equal to the same step on the CPU, checkpoints saved from the device and loaded on the
host, mixed-device errors, and the command line with --device cuda.

Marked ``gpu``: they run on a real GPU with CuPy, and in CI on the emulated device
(MINITRANSFORMER_EMULATE_CUDA=1, minitransformer/testing/fake_cupy.py), whose arrays refuse
every implicit copy to the host as CuPy's do.
"""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import backend, checkpoint, nn, optim

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not backend.cupy_available(),
                                                  reason="no CuPy or no CUDA GPU on this machine")]

TINY_GPT = dict(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
TINY_BERT = dict(vocab_size=13, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=32, max_position_embeddings=8, hidden_dropout_prob=0.0,
                 attention_probs_dropout_prob=0.0)


def on_device(array) -> bool:
    return backend.device_of(array) == "cuda"


def gpt_batch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 11, (3, 8)), rng.integers(0, 11, (3, 8))


def gpt_steps(device: str, steps: int = 2, clip: bool = True):
    """A tiny GPT's loss and weights after ``steps`` AdamW steps on ``device``."""
    mt.manual_seed(0)
    model = nn.GPT(nn.GPTConfig(**TINY_GPT)).to(device)
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    x, y = (backend.to_device(a, device) for a in gpt_batch())
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        if clip:
            optim.clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return model, opt, losses


def test_gpt_training_steps_on_the_device_equal_the_cpu():
    cpu_model, _, cpu_losses = gpt_steps("cpu")
    gpu_model, gpu_opt, gpu_losses = gpt_steps("cuda")
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-4)
    for (name, cpu), (_, gpu) in zip(cpu_model.state_dict().items(), gpu_model.state_dict().items()):
        assert on_device(gpu), name
        np.testing.assert_allclose(backend.to_numpy(gpu), cpu, rtol=1e-3, atol=1e-5, err_msg=name)
    assert all(on_device(s["exp_avg"]) and on_device(s["exp_avg_sq"]) for s in gpu_opt.state.values())
    assert gpu_losses[1] < gpu_losses[0]


def test_gpt_generates_on_the_device():
    model, _, _ = gpt_steps("cuda", steps=1)
    prompt = backend.to_device(np.array([[1, 2, 3]]), "cuda")
    mt.manual_seed(0)
    out = model.generate(prompt, 6, temperature=0.8, top_k=4)
    assert on_device(out.data if isinstance(out, mt.Tensor) else out)
    assert tuple(out.shape) == (1, 9)


def bert_step(device: str):
    mt.manual_seed(0)
    model = nn.BertForSequenceClassification(nn.BertConfig(**TINY_BERT), num_labels=3).to(device)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 13, (4, 6))
    mask = np.ones((4, 6), dtype=np.int64)
    mask[1, 4:] = 0  # padding
    labels = np.array([0, 2, 1, 2])
    logits, loss = model(*(backend.to_device(a, device) for a in (ids, mask, labels)))
    loss.backward()
    opt.step()
    embeddings = model.bert.sentence_embeddings(backend.to_device(ids, device))  # default mask
    return loss.item(), logits.numpy(), embeddings.numpy(), model


def test_bert_training_step_on_the_device_equals_the_cpu():
    cpu_loss, cpu_logits, cpu_embeddings, _ = bert_step("cpu")
    gpu_loss, gpu_logits, gpu_embeddings, gpu_model = bert_step("cuda")
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-5)
    np.testing.assert_allclose(gpu_logits, cpu_logits, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gpu_embeddings, cpu_embeddings, rtol=1e-4, atol=1e-6)
    assert all(on_device(p.data) for p in gpu_model.parameters())


def test_checkpoint_saved_from_the_device_loads_on_the_host_and_back(tmp_path):
    model, opt, _ = gpt_steps("cuda", steps=2)
    checkpoint.save(tmp_path / "ck", model, opt, extra={"iter": 2})
    host_model = nn.GPT(nn.GPTConfig(**TINY_GPT))
    host_opt = optim.AdamW(host_model.parameters(), lr=1e-2)
    assert checkpoint.load(tmp_path / "ck", host_model, host_opt) == {"iter": 2}
    for (name, gpu), (_, cpu) in zip(model.state_dict().items(), host_model.state_dict().items()):
        assert type(cpu) is np.ndarray, name
        np.testing.assert_array_equal(cpu, backend.to_numpy(gpu), err_msg=name)
    assert all(type(s["exp_avg"]) is np.ndarray for s in host_opt.state.values())
    # and back onto the device: the same next step from both copies
    device_model = nn.GPT(nn.GPTConfig(**TINY_GPT)).to("cuda")
    device_opt = optim.AdamW(device_model.parameters(), lr=1e-2)
    checkpoint.load(tmp_path / "ck", device_model, device_opt)
    assert all(on_device(s["exp_avg"]) for s in device_opt.state.values())
    x, y = gpt_batch()
    losses = []
    for m, o, device in ((host_model, host_opt, "cpu"), (device_model, device_opt, "cuda")):
        _, loss = m(backend.to_device(x, device), backend.to_device(y, device))
        loss.backward()
        o.step()
        losses.append(loss.item())
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    np.testing.assert_allclose(backend.to_numpy(device_model.lm_head.weight.data),
                               host_model.lm_head.weight.data, rtol=1e-4, atol=1e-6)


def test_optimizer_follows_its_model_to_another_device():
    model, opt, _ = gpt_steps("cuda", steps=1)
    model.to("cpu")
    opt.to("cpu")
    assert all(type(s["exp_avg"]) is np.ndarray for s in opt.state.values())
    x, y = gpt_batch()
    _, loss = model(x, y)
    loss.backward()
    opt.step()  # on the host now
    assert all(type(p.data) is np.ndarray for p in model.parameters())
    with pytest.raises(ValueError, match="AdamW.to: unknown device 'tpu'"):
        opt.to("tpu")


def test_a_model_moved_without_its_optimizer_is_a_clear_error():
    model, opt, _ = gpt_steps("cuda", steps=1)
    model.to("cpu")
    x, y = gpt_batch()
    _, loss = model(x, y)
    loss.backward()
    with pytest.raises(RuntimeError, match=r"AdamW.step: .*'cpu'.*'cuda'.*\.to\('cpu'\)"):
        opt.step()


def test_mixed_devices_are_an_error_naming_the_op():
    a = mt.randn(2, 3, device="cuda", requires_grad=True)
    b = mt.randn(2, 3)
    for combine in (lambda: a + b, lambda: a @ b.T, lambda: mt.concat([a, b])):
        with pytest.raises(TypeError, match="on different devices"):
            combine()
    model = nn.GPT(nn.GPTConfig(**TINY_GPT))  # on the host
    ids = backend.to_device(gpt_batch()[0], "cuda")
    with pytest.raises(TypeError, match="on different devices"):
        model(ids)


def test_device_arrays_never_reach_numpy_implicitly():
    """The emulated device's guarantee, checked where it holds: np.asarray of a device array
    raises (it would be a silent copy on the real CuPy, or a NumPy error)."""
    x = mt.randn(3, device="cuda")
    with pytest.raises(TypeError):
        np.asarray(x.data)
    assert type(x.numpy()) is np.ndarray and x.to("cpu").device == "cpu"
    np.testing.assert_array_equal(x.numpy(), backend.to_numpy(x.data))


def test_train_generate_finetune_and_predict_on_the_device(tmp_path, capsys):
    from minitransformer.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat. the dog sat on the log.\n" * 30, encoding="utf-8")
    tiny = ["--batch-size", "2", "--block-size", "8", "--n-layer", "1", "--n-head", "2",
            "--n-embd", "8", "--eval-interval", "2", "--eval-iters", "1", "--log-interval", "1",
            "--sample-tokens", "5", "--warmup-iters", "1", "--max-iters", "2", "--device", "cuda"]
    assert main(["train", "--data", str(corpus), "--out-dir", str(tmp_path), "--name", "g", *tiny]) == 0
    assert main(["generate", "--run", str(tmp_path / "g"), "--prompt", "the", "--max-new-tokens", "5",
                 "--device", "cuda"]) == 0
    csv = tmp_path / "reviews.csv"
    rows = ["text,label"] + [f"good fun {i},pos" if i % 2 else f"bad dull {i},neg" for i in range(24)]
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["finetune", "--csv", str(csv), "--out-dir", str(tmp_path), "--name", "f",
                 "--device", "cuda", "--epochs", "1", "--batch-size", "8", "--n-layer", "1",
                 "--n-head", "2", "--n-embd", "8", "--max-tokens", "8"]) == 0
    assert main(["predict", "--run", str(tmp_path / "f"), "--device", "cuda", "good fun"]) == 0
    assert "good fun" in capsys.readouterr().out
