"""Write a random bf16 model with Qwen2.5-7B's shapes (real Qwen2 tokenizer) and an r=16 LoRA on all linear layers.

Usage: python make_model.py BASE_DIR ADAPTER_DIR [--layers N] [--hidden H] [--intermediate I] [--vocab V]
Weights are drawn on the GPU when there is one, written shard by shard with safetensors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base", type=Path)
    ap.add_argument("adapter", type=Path)
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--hidden", type=int, default=3584)
    ap.add_argument("--intermediate", type=int, default=18944)
    ap.add_argument("--heads", type=int, default=28)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=152064)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--shard-bytes", type=int, default=4 << 30)
    ap.add_argument("--tied", action="store_true", help="tie lm_head to the embeddings (Qwen2.5-0.5B style)")
    args = ap.parse_args()
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2Config

    from tests.helpers.tiny import qwen2_tokenizer

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=dev).manual_seed(0)
    h, inter, head_dim = args.hidden, args.intermediate, args.hidden // args.heads
    kv = args.kv_heads * head_dim
    cfg = Qwen2Config(vocab_size=args.vocab, hidden_size=h, intermediate_size=inter, num_hidden_layers=args.layers,
                      num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, max_position_embeddings=32768,
                      rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=args.tied, bos_token_id=151643,
                      eos_token_id=151645, torch_dtype="bfloat16")
    cfg.architectures = ["Qwen2ForCausalLM"]
    args.base.mkdir(parents=True, exist_ok=True)
    cfg.save_pretrained(args.base)
    qwen2_tokenizer().save_pretrained(args.base)

    def rand(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen, device=dev) * std).to(torch.bfloat16).cpu()

    linear = {"self_attn.q_proj": (h, h), "self_attn.k_proj": (kv, h), "self_attn.v_proj": (kv, h),
              "self_attn.o_proj": (h, h), "mlp.gate_proj": (inter, h), "mlp.up_proj": (inter, h),
              "mlp.down_proj": (h, inter)}
    tensors: list[tuple[str, object]] = [("model.embed_tokens.weight", lambda: rand(args.vocab, h))]
    for i in range(args.layers):
        p = f"model.layers.{i}."
        for mod, shape in linear.items():
            tensors.append((p + mod + ".weight", lambda s=shape: rand(*s)))
        for bias, n in (("q_proj", h), ("k_proj", kv), ("v_proj", kv)):
            tensors.append((p + f"self_attn.{bias}.bias", lambda n=n: rand(n)))
        tensors.append((p + "input_layernorm.weight", lambda: (1 + rand(h, std=0.1).float()).to(torch.bfloat16)))
        tensors.append((p + "post_attention_layernorm.weight",
                        lambda: (1 + rand(h, std=0.1).float()).to(torch.bfloat16)))
    tensors.append(("model.norm.weight", lambda: (1 + rand(h, std=0.1).float()).to(torch.bfloat16)))
    if not args.tied:
        tensors.append(("lm_head.weight", lambda: rand(args.vocab, h)))
    _write_shards(args.base, tensors, args.shard_bytes, save_file)

    lora = {}
    for i in range(args.layers):
        for mod, (out_f, in_f) in linear.items():
            key = f"base_model.model.model.layers.{i}.{mod}"
            lora[key + ".lora_A.weight"] = (torch.randn(args.rank, in_f, generator=gen, device=dev) * 0.01).cpu()
            lora[key + ".lora_B.weight"] = (torch.randn(out_f, args.rank, generator=gen, device=dev) * 0.01).cpu()
    args.adapter.mkdir(parents=True, exist_ok=True)
    save_file(lora, str(args.adapter / "adapter_model.safetensors"), metadata={"format": "pt"})
    (args.adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": str(args.base), "r": args.rank,
        "lora_alpha": 2 * args.rank, "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
        "use_rslora": False, "use_dora": False, "modules_to_save": None,
        "target_modules": [m.split(".")[-1] for m in linear]}, indent=2))


def _write_shards(base: Path, tensors: list, shard_bytes: int, save_file: Any) -> None:
    weight_map: dict[str, str] = {}
    shard: dict[str, Any] = {}
    size = total = 0

    def flush() -> None:
        file = f"model-{len(set(weight_map.values())) + 1:05d}.safetensors"
        save_file(shard, str(base / file), metadata={"format": "pt"})
        weight_map.update({name: file for name in shard})
        shard.clear()

    for name, make in tensors:
        tensor = make()
        nbytes = tensor.numel() * tensor.element_size()
        if shard and size + nbytes > shard_bytes:
            flush()
            size = 0
        shard[name] = tensor
        size += nbytes
        total += nbytes
    flush()
    (base / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))


if __name__ == "__main__":
    main()
