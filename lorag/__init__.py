"""lorag: a local, Japanese-first RAG that runs your own LoRA fine-tune."""

__version__ = "0.1.0"
