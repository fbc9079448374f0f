"""Chat templates: a conversation (a list of {"role", "content"} messages) as the one string a
chat model was trained to continue.

Every chat model marks turns its own way, and its tokenizer_config.json (or chat_template.jinja)
says how, as a Jinja template. Two formats cover most small open models:

    ChatML (Qwen, SmolLM2):   <|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n
    Llama 3:                  <|begin_of_text|><|start_header_id|>user<|end_header_id|>\\n\\nHi<|eot_id|>
                              <|start_header_id|>assistant<|end_header_id|>\\n\\n

``ChatTemplate`` renders the template with jinja2 when it is installed (the [chat] extra), in
Jinja's immutable sandbox with the helpers templates expect (``raise_exception``,
``strftime_now``, a ``tojson`` that leaves non-ASCII alone), as ``transformers``'
``apply_chat_template`` does: a template from the hub is untrusted code, and the sandbox keeps
it from reaching Python's internals. Without jinja2 a ChatML or Llama 3 template is rendered by
the readable formatters below, which write the same markers (and ChatML's default system
prompt, read from the template); ``engine`` says which was used.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

CHATML_DEFAULT_SYSTEM = re.compile(r"<\|im_start\|>system(?:\\n|\n)([^{}'\"<]*)<\|im_end\|>")
ROLES = ("system", "user", "assistant")


def _jinja_template(source: str):
    """The template compiled in jinja2's immutable sandbox, or None without jinja2 >= 3.1.6
    (earlier versions have known sandbox escapes)."""
    try:
        import jinja2
        import jinja2.ext
        import jinja2.sandbox
    except ImportError:
        return None
    if tuple(int(part) for part in re.findall(r"\d+", jinja2.__version__)[:3]) < (3, 1, 6):
        return None

    def raise_exception(message):
        raise ValueError(f"chat template: {message}")

    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                               extensions=[jinja2.ext.loopcontrols])
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return environment.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise ValueError(f"chat template: not valid Jinja ({error.message}, line {error.lineno})") from None


def chatml(messages: list[dict], add_generation_prompt: bool, default_system: str | None = None) -> str:
    """<|im_start|>ROLE\\nCONTENT<|im_end|>\\n per message, then the assistant's header."""
    if default_system and (not messages or messages[0]["role"] != "system"):
        messages = [{"role": "system", "content": default_system}, *messages]
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def llama3(messages: list[dict], add_generation_prompt: bool, bos_token: str = "<|begin_of_text|>") -> str:
    """BOS, then <|start_header_id|>ROLE<|end_header_id|>\\n\\nCONTENT<|eot_id|> per message (the
    content stripped, as Meta's template does), then the assistant's header."""
    header = "<|start_header_id|>{}<|end_header_id|>\n\n"
    text = bos_token + "".join(header.format(m["role"]) + m["content"].strip() + "<|eot_id|>" for m in messages)
    return text + (header.format("assistant") if add_generation_prompt else "")


class ChatTemplate:
    """A model's chat template: ``render(messages)`` gives the text to tokenize (with
    ``add_special_tokens=False``: the template writes BOS itself where the model wants one)."""

    def __init__(self, source: str, special_tokens: dict[str, str] | None = None):
        if not isinstance(source, str) or not source.strip():
            raise ValueError("chat template: expected the template's text, got an empty one")
        self.source = source
        self.special_tokens = dict(special_tokens or {})  # bos_token, eos_token... as the template names them
        self._jinja = _jinja_template(source)
        if self._jinja is not None:
            self.engine = "jinja2"
        elif "<|im_start|>" in source:
            self.engine = "built-in ChatML"
        elif "<|start_header_id|>" in source:
            self.engine = "built-in Llama 3"
        else:
            raise ValueError("chat template: this model's template is neither ChatML nor Llama 3, so it needs "
                             "jinja2 >= 3.1.6 (pip install 'jinja2>=3.1.6')")

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The conversation as text; with ``add_generation_prompt`` it ends where the assistant's
        answer begins."""
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(
                    message.get("content"), str):
                raise ValueError(f"chat template: message {i} must be {{'role': one of {ROLES}, 'content': str}}, "
                                 f"got {message!r}")
        if self._jinja is not None:
            import jinja2

            try:
                return self._jinja.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                          **self.special_tokens)
            except jinja2.TemplateError as error:  # the sandbox's SecurityError among them
                raise ValueError(f"chat template: {type(error).__name__}: {error}") from None
        if self.engine == "built-in ChatML":
            default = CHATML_DEFAULT_SYSTEM.search(self.source)
            return chatml(messages, add_generation_prompt, default and default.group(1))
        return llama3(messages, add_generation_prompt, self.special_tokens.get("bos_token", "<|begin_of_text|>"))

    def end_of_turn_markers(self) -> list[str]:
        """The special tokens that close a turn in this template (generation stops at them)."""
        return [marker for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", "</s>") if marker in self.source]
