# Sourced by the other scripts: make .venv with the project installed, once.
# Usage: . scripts/venv.sh [extra]   (extra = "test" for the test tools)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "gallery-mirror needs Python 3.11 or newer as '$python' (set PYTHON=...)." >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        # Debian ships venv separately; install it when we may, else say how.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv .venv
        else
            echo "Cannot create a virtual environment: run 'sudo apt-get install python3-venv'." >&2
            exit 2
        fi
    fi
fi
extra=${1:-}
stamp=.venv/.installed-${extra:-base}
# Reinstall only when the project's declared dependencies change.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra:+[$extra]}"
    touch "$stamp"
fi
