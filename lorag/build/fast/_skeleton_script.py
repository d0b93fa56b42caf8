"""Run llama.cpp's own converter lazily on a model directory and dump what its GGUF would hold, without data.

Executed as a script with the llama.cpp tree's gguf-py first on sys.path (its ``gguf`` is newer than PyPI's,
and both cannot live in one process). Writes meta.json (KV order and types, tensor names/shapes/types),
kv.bin (each KV pair exactly as the converter serialises it) and small.bin (the converter's own data for
tensors the fast path does not stream itself: norms, biases, generated tensors).
Arguments: TREE MODEL_DIR OUT_DIR STREAMED_REGEX [MODEL_NAME]  (MODEL_NAME = the converter's --model-name)
"""

import json
import re
import sys
from pathlib import Path


def main() -> None:
    tree, model_dir, out_dir, streamed = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), re.compile(sys.argv[4])
    model_name = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else None
    sys.path[:0] = [tree, str(Path(tree) / "gguf-py")]
    import gguf
    import torch
    from conversion import ModelBase, ModelType, get_model_architecture, get_model_class

    # Tell the parent the imports are done: it holds its disk reads back until then, so that loading
    # thousands of small module files does not queue behind its large sequential reads.
    print("IMPORTED", flush=True)

    with torch.inference_mode():
        hparams = ModelBase.load_hparams(model_dir, False)
        hf_arch = get_model_architecture(hparams, ModelType.TEXT)
        cls = get_model_class(hf_arch, mmproj=False)
        model = cls(model_dir, gguf.LlamaFileType.MOSTLY_F16, out_dir / "skeleton.gguf", model_name=model_name)
        model.prepare_tensors()
        model.prepare_metadata(vocab_only=False)
        writer = model.gguf_writer
        kv_bin = bytearray()
        kv_meta = []
        for key, val in writer.kv_data[0].items():
            start = len(kv_bin)
            kv_bin += writer._pack_val(key, gguf.GGUFValueType.STRING, add_vtype=False)
            kv_bin += _pack_value(writer, gguf, val)
            plain = val.value if val.type != gguf.GGUFValueType.ARRAY else None
            kv_meta.append([key, start, len(kv_bin) - start, int(val.type), plain])
        tensors = []
        with open(out_dir / "small.bin", "wb") as small:
            for name, info in writer.tensors[0].items():
                entry = [name, [int(d) for d in info.shape], int(info.dtype), int(info.nbytes), -1]
                if not streamed.fullmatch(name):
                    # the converter's own bytes for this tensor, exactly as it would write them
                    entry[4] = small.tell()
                    info.tensor.tofile(small)
                tensors.append(entry)
    (out_dir / "kv.bin").write_bytes(bytes(kv_bin))
    meta = {"hf_arch": hf_arch, "gguf_arch": gguf.MODEL_ARCH_NAMES[model.model_arch], "kv": kv_meta,
            "tensors": tensors, "alignment": writer.data_alignment, "hparams": model.hparams}
    (out_dir / "meta.json").write_text(json.dumps(meta, default=str), encoding="utf-8")


def _pack_value(writer: object, gguf: object, val: object) -> bytes:
    """gguf-py's _pack_val, with a fast path for the big token/merge/score arrays (same bytes)."""
    import struct

    import numpy as np

    vtype = gguf.GGUFValueType  # type: ignore[attr-defined]
    value, sub = val.value, val.sub_type  # type: ignore[attr-defined]
    if val.type == vtype.ARRAY and value and sub is None and isinstance(value, (list, tuple)):  # type: ignore
        first = value[0]
        head = struct.pack("<I", int(vtype.ARRAY))
        if all(isinstance(v, (str, bytes)) for v in value):
            parts = [v.encode("utf-8") if isinstance(v, str) else v for v in value]
            body = b"".join(struct.pack("<Q", len(b)) + b for b in parts)
            return head + struct.pack("<IQ", int(vtype.STRING), len(parts)) + body
        kind = vtype.get_type(first)
        dtypes = {vtype.INT32: "<i4", vtype.UINT32: "<u4", vtype.FLOAT32: "<f4", vtype.INT64: "<i8"}
        if kind in dtypes and all(type(v) is type(first) for v in value):
            body = np.asarray(value, dtype=dtypes[kind]).tobytes()
            return head + struct.pack("<IQ", int(kind), len(value)) + body
    return writer._pack_val(value, val.type, add_vtype=True, sub_type=sub)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
