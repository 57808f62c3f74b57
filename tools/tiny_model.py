"""Make a tiny local chat model that the vLLM engine loads, with nothing downloaded.

Tests and the offline demo need a real model for the real engine. This writes a byte-level BPE
tokenizer trained on CLEVR-style text, a Qwen2-style chat template and a 2-layer Qwen2 with
random weights (head size 64, which vLLM's CPU attention supports). Its text is random; guided
decoding can still make it follow an answer format. With ``head="reward"`` the same model gets a
one-label sequence-classification head instead (``Qwen2ForSequenceClassification``), which vLLM's
pooling runner serves as a reward model (``classify``) or a process reward model (``token_classify``).

    python -m tools.tiny_model PATH [--head reward]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Literal

from tracemill.problems.clevr_questions import procedural_problems

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Like DeepSeek-R1 and Qwen: whole tokens, but not special, so decoded text keeps them.
THINK_TOKENS = ["<think>", "</think>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _corpus() -> list[str]:
    rows = procedural_problems(0, 0, 200)
    extra = [
        "Let me count the objects one by one. The answer is: 3",
        "**The answer is: **7",
        "We compute step by step and put the final answer within \\boxed{42}.",
        "Answer: B",
    ]
    return [r["description"] + r["question"] for r in rows] + extra


def make_tiny_model(
    path: str | Path, *, vocab_size: int = 1024, seed: int = 0, head: Literal["lm", "reward"] = "lm"
) -> Path:
    """Write the tokenizer and model to ``path`` (created) and return it; same seed, same weights.

    ``head="reward"`` writes a reward model: the same body with a one-label classification head.
    """
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, Qwen2ForSequenceClassification

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        torch_dtype="float32",
    )
    if head == "lm":
        model = Qwen2ForCausalLM(config)
    else:  # a reward head: one score per sequence, read at its last token (needs the pad token to find it)
        config.num_labels, config.pad_token_id = 1, fast.pad_token_id
        model = Qwen2ForSequenceClassification(config)
    model.save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": fast.bos_token_id, "eos_token_id": fast.eos_token_id})
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Make the tiny local model for vLLM on the CPU.")
    parser.add_argument("path", help="folder to write the model to")
    parser.add_argument(
        "--head", choices=["lm", "reward"], default="lm", help="lm: a chat model; reward: a reward model"
    )
    args = parser.parse_args()
    print(make_tiny_model(args.path, head=args.head))


if __name__ == "__main__":
    main()
