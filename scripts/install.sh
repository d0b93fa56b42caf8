#!/usr/bin/env bash
# Create .venv and install lorag with everything it needs, offline-capable afterwards.
#   scripts/install.sh          runtime (demo)
#   scripts/install.sh --dev    plus test tools and the system packages the tests use
# Order matters: torch==2.13.0 (CPU) first, then llama-cpp-python (compiles llama.cpp once; the wheel is kept in ~/.cache/lorag/wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; [ "${1:-}" = "--dev" ] && DEV=1
LLAMA_CPP_VERSION=0.3.36
PY=.venv/bin/python
STAMP=.venv/.lorag-installed$([ $DEV = 1 ] && echo -dev || true)

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ "$STAMP" -nt scripts/install.sh ]; then
  exit 0
fi
[ -x "$PY" ] || python3 -m venv .venv
$PY -m pip install -q --upgrade pip wheel setuptools 2>&1 | grep -v "^WARNING: Location" || true

echo "==> torch 2.13.0 (CPU)"
$PY -m pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true

LLAMA_BUILD="llama-cpp-python-$LLAMA_CPP_VERSION-native-noamx"  # what the installed llama.cpp must be
if ! $PY -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$LLAMA_CPP_VERSION')" 2>/dev/null ||
   [ "$(cat .venv/.llama-cpp-build 2>/dev/null)" != "$LLAMA_BUILD" ]; then
  echo "==> llama-cpp-python $LLAMA_CPP_VERSION (compiles llama.cpp on first install: ~10-20 min on 2 cores; cached after)"
  # Skip what lorag never uses (multimodal mtmd, tests, examples, server binaries): fewer objects to compile.
  export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF}"
  # Built for this CPU (-march=native) but without Intel AMX: virtual machines that list AMX without enabling it
  # kill llama.cpp's AMX matrix products with SIGILL on the first decode. The wheel is kept in lorag's own cache,
  # under a name that says how it was built (pip's cache would hand back a wheel built with other flags).
  NOAMX=""; [ "$(uname -m)" = x86_64 ] && NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  WHEELS="$HOME/.cache/lorag/wheels/$LLAMA_BUILD"
  start=$(date +%s)
  if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    rm -rf "$WHEELS.partial"
    CFLAGS="$NOAMX ${CFLAGS:-}" CXXFLAGS="$NOAMX ${CXXFLAGS:-}" $PY -m pip wheel -v --no-cache-dir --no-deps \
      -w "$WHEELS.partial" "llama-cpp-python==$LLAMA_CPP_VERSION" 2>&1 | tee .venv/llama-cpp-build.log | \
      awk '/\[[0-9]+\/[0-9]+\]/ { match($0, /\[[0-9]+\/[0-9]+\]/); printf "\r    compiling llama.cpp %s   ", substr($0, RSTART, RLENGTH); fflush() }
           /Successfully built|Saved / { print "\n    " $0 }'
    ls "$WHEELS.partial"/llama_cpp_python-*.whl >/dev/null 2>&1 || { echo "llama.cpp failed to build; see .venv/llama-cpp-build.log"; exit 1; }
    rm -rf "$WHEELS" && mv "$WHEELS.partial" "$WHEELS"
  fi
  $PY -m pip install -q --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-*.whl 2>&1 | grep -v "^WARNING: Location" || true
  $PY -m pip install -q "$(ls "$WHEELS"/llama_cpp_python-*.whl)" 2>&1 | grep -v "^WARNING: Location" || true  # its dependencies
  $PY -c "import llama_cpp" || { echo "llama-cpp-python failed to install; see .venv/llama-cpp-build.log"; exit 1; }
  echo "$LLAMA_BUILD" > .venv/.llama-cpp-build
  echo "    llama-cpp-python ready in $(( $(date +%s) - start )) s"
fi

echo "==> lorag and its dependencies"
EXTRA=""; [ $DEV = 1 ] && EXTRA="[dev]"
$PY -m pip install -q -e ".$EXTRA" 2>&1 | grep -v "^WARNING: Location" || true
# The pages of torch's libraries its import needs, recorded once: a build reads them first, then its tensors
# beside the import (lorag/build/fast/preload.py; a build re-records them when torch changes). On a GPU the quantize
# kernels are compiled into Triton's cache first (a few seconds, once), so the first build does not compile them.
echo "==> import profile for fast builds (GPU: compiling the quantize kernels)"
$PY -c "from lorag.build.fast import single_pass; single_pass.record_import_pages()" >/dev/null 2>&1 || true

# llama.cpp's reference converters (convert_hf_to_gguf.py & co.) ship in the same sdist; they must run from its tree.
VENDOR="${LORAG_LLAMA_CPP_DIR:-$HOME/.cache/lorag/llama.cpp-$LLAMA_CPP_VERSION}"
if [ ! -f "$VENDOR/convert_hf_to_gguf.py" ]; then
  echo "==> llama.cpp converters → $VENDOR"
  tmp=$(mktemp -d)
  $PY -m pip download -q --no-deps --no-binary llama-cpp-python "llama-cpp-python==$LLAMA_CPP_VERSION" -d "$tmp" 2>&1 | grep -v "^WARNING: Location" || true
  tar xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp" \
    --wildcards '*/vendor/llama.cpp/convert_*.py' '*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/*'
  mkdir -p "$(dirname "$VENDOR")"
  rm -rf "$VENDOR.partial" && mv "$tmp"/llama_cpp_python-*/vendor/llama.cpp "$VENDOR.partial" && mv "$VENDOR.partial" "$VENDOR"
  rm -rf "$tmp"
fi

# OCR for scanned PDFs and images (ingest.ocr: auto): Tesseract with Japanese, horizontal and vertical.
ocr_need=()
command -v tesseract >/dev/null || ocr_need+=(tesseract-ocr)
for lang in jpn jpn_vert; do
  tesseract --list-langs 2>/dev/null | grep -qx "$lang" || ocr_need+=("tesseract-ocr-${lang//_/-}")
done
if [ ${#ocr_need[@]} -gt 0 ]; then
  echo "==> OCR: ${ocr_need[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${ocr_need[@]}" >/dev/null
  else
    echo "    (not root: run  sudo apt-get install ${ocr_need[*]}  to read scanned PDFs; ingest works without it)"
  fi
fi

if [ $DEV = 1 ]; then
  need=()
  [ -f /usr/share/doc/debian/FAQ/debian-faq.ja.txt.gz ] || need+=(debian-faq-ja)
  [ -f /usr/share/debian-reference/debian-reference.ja.pdf ] || need+=(debian-reference-ja)   # bench/ingest.py
  [ -x /usr/bin/chromium ] || need+=(chromium)
  fc-list 2>/dev/null | grep -qi ipaex || need+=(fonts-ipaexfont-gothic)
  command -v go >/dev/null || need+=(golang-go)   # checks the Modelfile's Go TEMPLATEs with Go's own engine
  if [ ${#need[@]} -gt 0 ]; then
    echo "==> system packages for the tests: ${need[*]}"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
      echo "    (not root: install them with apt-get; the tests that need them are skipped)"
    fi
  fi
fi
touch "$STAMP"
