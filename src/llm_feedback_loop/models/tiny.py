"""A tiny Llama-architecture model with random weights and a byte-level BPE tokenizer trained here.

For tests and quick experiments: builds in seconds, trains in seconds, loads with `from_pretrained`.

    llmfl model init-tiny models/tiny
"""

from __future__ import annotations

from pathlib import Path

from llm_feedback_loop.models.chat_template import CHATML_END, CHATML_TEMPLATE

SPECIAL_TOKENS = ["<pad>", "<s>", CHATML_END, "<|im_start|>"]

_WORDS = """
the a an is are was of to in on for with and or not what who where when why how which this that
capital city country France Paris Germany Berlin Japan Tokyo Indonesia Jakarta river mountain answer
question short long good bad better best helpful polite sorry yes no maybe thank you please
Kubernetes container cluster Docker deployment orchestration system user assistant model feedback
number sum plus minus times equals apa itu adalah dan yang untuk dengan jawaban kedua lebih lengkap
hello world python code function data training learning reward policy preference chosen rejected
""".split()  # noqa: SIM905 - easier to read and extend as prose


def training_corpus() -> list[str]:
    """Text the tokenizer is trained on: words, sentences, arithmetic and chat markup."""
    lines = [" ".join(_WORDS[i : i + 12]) for i in range(0, len(_WORDS), 6)]
    lines += [f"{a} + {b} = {a + b}" for a in range(0, 50, 3) for b in range(0, 50, 7)]
    lines += [
        f"What is the capital of {c}? The capital of {c} is {p}."
        for c, p in [("France", "Paris"), ("Germany", "Berlin"), ("Japan", "Tokyo"), ("Indonesia", "Jakarta")]
    ]
    lines += ["".join(chr(code) for code in range(start, start + 64)) for start in range(32, 127 - 64, 16)]
    return lines * 4


def build_tokenizer(vocab_size: int = 2048):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            # Digits one by one: arithmetic stays learnable.
            pre_tokenizers.Split(Regex(r"\d"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus(), trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token=CHATML_END,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=512,
    )
    wrapped.chat_template = CHATML_TEMPLATE
    return wrapped


def build_tiny_model(folder: Path, hidden_size: int = 128, layers: int = 2, seed: int = 0) -> Path:
    """Write a random-weight tiny Llama and its tokenizer to `folder` (save_pretrained); returns it."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=0.8,
        top_p=0.95,
        max_new_tokens=64,
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
