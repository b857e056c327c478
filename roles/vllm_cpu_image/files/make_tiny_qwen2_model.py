#!/usr/bin/env python3
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate a tiny Qwen2-architecture model locally: no model hub, no download.

Runs inside the vllm-cpu image (torch, transformers and tokenizers come from there):

    python make_tiny_qwen2_model.py --output /models/tiny-qwen2 [--hidden-size 256 ...]

- weights: random, from a fixed seed (the model talks nonsense; it exists so vLLM has
  something real to load, schedule and stream);
- tokenizer: byte-level BPE trained here with `tokenizers` on the Python standard
  library's own source files (always present where Python is), plus a Qwen-style
  <|im_start|>/<|im_end|> chat template;
- saved with save_pretrained (safetensors).

Idempotent: the output holds a marker file whose `marker` is a hash of this script and
the parameters. When it matches, nothing is written and the last line printed is
`unchanged <marker>`; otherwise the model is rebuilt in a temporary folder, swapped in,
and the last line is `generated <marker>`. The caller decides "changed" from that line.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import time

MARKER_FILE = ".homelab-tiny-model.json"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2-style ChatML template; add_generation_prompt opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", required=True, help="model folder to create, e.g. /models/tiny-qwen2")
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--intermediate-size", type=int, default=512)
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--num-kv-heads", type=int, default=2)
    p.add_argument("--vocab-size", type=int, default=3072)
    p.add_argument("--max-position-embeddings", type=int, default=4096)
    p.add_argument("--corpus-bytes", type=int, default=600_000,
                   help="how much standard-library source text trains the tokenizer")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--seed", type=int, default=20260101)
    p.add_argument("--force", action="store_true", help="rebuild even when the marker matches")
    args = p.parse_args(argv)
    if args.hidden_size % args.num_heads:
        p.error(f"--hidden-size {args.hidden_size} is not divisible by --num-heads {args.num_heads}")
    if args.num_heads % args.num_kv_heads:
        p.error(f"--num-heads {args.num_heads} is not divisible by --num-kv-heads {args.num_kv_heads}")
    if args.vocab_size <= 256 + len(SPECIAL_TOKENS):
        p.error(f"--vocab-size {args.vocab_size} leaves no room above the 256 byte tokens")
    return args


def params_of(args: argparse.Namespace) -> dict:
    return {k: v for k, v in sorted(vars(args).items()) if k not in ("output", "force")}


def marker_of(params: dict) -> str:
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(sys.version.split()[0].encode())  # the corpus is this Python's standard library
    return h.hexdigest()


def read_marker(output: str) -> str | None:
    try:
        with open(os.path.join(output, MARKER_FILE), encoding="utf-8") as f:
            return json.load(f).get("marker")
    except (OSError, ValueError):
        return None


def corpus_files(limit_bytes: int) -> list[str]:
    """Standard-library .py files in a stable order, up to limit_bytes in total."""
    stdlib = sysconfig.get_paths()["stdlib"]
    files, total = [], 0
    for path in sorted(glob.glob(os.path.join(stdlib, "*.py"))):
        files.append(path)
        total += os.path.getsize(path)
        if total >= limit_bytes:
            break
    if not files:
        raise SystemExit(f"no Python source files under {stdlib} to train the tokenizer on")
    return files


def build_tokenizer(args: argparse.Namespace):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train(corpus_files(args.corpus_bytes), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=args.max_position_embeddings,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(args: argparse.Namespace, tokenizer):
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(args.seed)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.num_layers,
        num_attention_heads=args.num_heads,
        num_key_value_heads=args.num_kv_heads,
        max_position_embeddings=args.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=pad,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    model = Qwen2ForCausalLM(config).to(getattr(torch, args.dtype))
    model.generation_config = GenerationConfig(bos_token_id=pad, eos_token_id=eos, pad_token_id=pad)
    return model


def generate(args: argparse.Namespace, marker: str) -> None:
    output = os.path.abspath(args.output)
    parent = os.path.dirname(output)
    os.makedirs(parent, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise SystemExit(f"{parent} is not writable for uid {os.getuid()}: give the volume to that user "
                         f"(e.g. docker run --rm -u 0 -v <volume>:/models <image> chown {os.getuid()} /models)")
    tmp = os.path.join(parent, f".{os.path.basename(output)}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.monotonic()
    tokenizer = build_tokenizer(args)
    model = build_model(args, tokenizer)
    tokenizer.save_pretrained(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    info = {
        "marker": marker,
        "params": params_of(args),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.monotonic() - started, 1),
    }
    with open(os.path.join(tmp, MARKER_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    # safetensors writes its file 0600; the server may run as another user than the generator.
    os.chmod(tmp, 0o755)
    for name in os.listdir(tmp):
        os.chmod(os.path.join(tmp, name), 0o644)
    shutil.rmtree(output, ignore_errors=True)
    os.rename(tmp, output)
    print(json.dumps(info, sort_keys=True))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    marker = marker_of(params_of(args))
    if not args.force and read_marker(args.output) == marker:
        print(f"unchanged {marker}")
        return 0
    generate(args, marker)
    print(f"generated {marker}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
