#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter (Rasa 3.6 runs on 3.8-3.10; this project pins 3.10).
# Looks at $PYTHON, then PATH, then pyenv's versions folder. Exits 1 with one line saying what
# to install when there is none.
set -u

is_310() {
    [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "3.10" ]
}

candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
for name in python3.10 python3 python; do
    found=$(command -v "$name" 2>/dev/null) && candidates+=("$found")
done
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
for dir in "$pyenv_root"/versions/3.10*/bin; do
    [ -d "$dir" ] && candidates+=("$dir/python3.10")
done

for candidate in "${candidates[@]}"; do
    if is_310 "$candidate"; then
        echo "$candidate"
        exit 0
    fi
done
echo "No Python 3.10 found: install it (e.g. 'pyenv install 3.10' or 'apt-get install python3.10 python3.10-venv'), or set PYTHON=/path/to/python3.10." >&2
exit 1
