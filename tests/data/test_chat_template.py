"""data/chat_template.py: the built-in ChatML and Llama 3 formatters write what the models' own
Jinja templates write; jinja2 runs templates in its sandbox; bad messages are named."""

from __future__ import annotations

import pytest

from minitransformer.data import chat_template
from minitransformer.data.chat_template import ChatTemplate

pytest.importorskip("jinja2", minversion="3.1.6")

# SmolLM2-Instruct's template (a default system prompt when there is none)
SMOLLM2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
           "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
           "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
           "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# Meta-Llama-3-8B-Instruct's template
LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
          "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
          "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
          "{{ content }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
CONVERSATIONS = [
    [{"role": "user", "content": "Hi!"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " What is 2+2? "},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}],
]


@pytest.mark.parametrize("source, engine", [(SMOLLM2, "built-in ChatML"), (LLAMA3, "built-in Llama 3")])
@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_built_in_formatters_write_what_the_jinja_template_writes(monkeypatch, source, engine, messages,
                                                                  add_generation_prompt):
    special = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
    with_jinja = ChatTemplate(source, special)
    assert with_jinja.engine == "jinja2"
    monkeypatch.setattr(chat_template, "_jinja_template", lambda source: None)  # as if jinja2 were missing
    built_in = ChatTemplate(source, special)
    assert built_in.engine == engine
    assert built_in.render(messages, add_generation_prompt) == with_jinja.render(messages, add_generation_prompt)


def test_chatml_reads_the_default_system_prompt_from_the_template(monkeypatch):
    monkeypatch.setattr(chat_template, "_jinja_template", lambda source: None)
    text = ChatTemplate(SMOLLM2).render([{"role": "user", "content": "Hi"}])
    assert text == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                    "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_an_unknown_format_without_jinja_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(chat_template, "_jinja_template", lambda source: None)
    with pytest.raises(ValueError, match="neither ChatML nor Llama 3, so it needs jinja2"):
        ChatTemplate("[INST] {{ messages[0]['content'] }} [/INST]")


def test_templates_run_in_the_sandbox():
    with pytest.raises(ValueError, match="chat template: SecurityError"):
        ChatTemplate("{{ messages.append({'role': 'user'}) }}").render([])  # immutable: no mutation
    with pytest.raises(ValueError, match="chat template: only user and assistant"):
        ChatTemplate("{{ raise_exception('only user and assistant') }}").render([])
    with pytest.raises(ValueError, match="not valid Jinja"):
        ChatTemplate("{% for %}")


def test_bad_messages_are_named():
    with pytest.raises(ValueError, match="message 1 must be"):
        ChatTemplate(SMOLLM2).render([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])
