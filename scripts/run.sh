#!/usr/bin/env bash
# Starts the action server (:5055) and the Rasa server (:5005) -- or `rasa shell` with mode
# "shell" -- and stops both cleanly on Ctrl-C. Called by `make run` / `make shell` after setup.
# Without any WhatsApp or Stripe setting, `serve` starts the sandbox instead (python -m
# sandbox: emulators + chat page; mode "sandbox" starts it in any case), which calls this
# script again with SANDBOX=1. SANDBOX=off keeps the bot alone (REST channel only).
set -euo pipefail
mode=${1:-serve}
cd "$(dirname "$0")/.."
bin=.venv/bin
model=models/shop.tar.gz

export PYTHONPATH=$PWD SQLALCHEMY_SILENCE_UBER_WARNING=1 RASA_TELEMETRY_ENABLED=false
# The env file (ENV_FILE, else .env; none under SANDBOX=1, whose settings are all given)
# fills in what the environment lacks, by the rules the servers and tools use too.
env_exports=$("$bin/python" -m scripts.env_file) || exit 1
eval "$env_exports"
env_file=${ENV_FILE:-.env}
# Sanic's access log costs a third of the Flow endpoint's throughput and would write webhook
# URLs (the verification GET carries hub.verify_token) to the log; the connector logs its own.
export SANIC_ACCESS_LOG=${SANIC_ACCESS_LOG:-false}

# Rasa's HTTP API reads and changes every conversation: never without a token.
if [ "$mode" = serve ] && [ "${RASA_ENABLE_API:-false}" = true ] && [ -z "${RASA_API_TOKEN:-}" ]; then
    echo "RASA_ENABLE_API=true needs RASA_API_TOKEN (anyone could read and change conversations): set it, or set RASA_ENABLE_API=false." >&2
    exit 1
fi

rasa_port=${RASA_PORT:-5005}
actions_port=${ACTION_SERVER_PORT:-5055}
# The credentials and endpoints this run writes for Rasa go to RUN_DIR (default var/). Two
# bots started from one checkout at once (the tests do) each need their own: otherwise
# one Rasa could read the other's file and call the other's action server.
# A relative RUN_DIR is inside the project; never the project itself, whose tracked
# credentials.yml and endpoints.yml these would overwrite (with the action server's token).
run_dir=${RUN_DIR:-var}
mkdir -p -- var "$run_dir"
if [ "$(cd -- "$run_dir" && pwd -P)" = "$(pwd -P)" ]; then
    echo "RUN_DIR must not be the project directory (its credentials.yml and endpoints.yml are tracked): use var/ or a directory of its own." >&2
    exit 1
fi

if [ "$mode" = sandbox ]; then
    exec "$bin/python" -m sandbox
fi
if [ "$mode" = serve ] && [ -z "${SANDBOX:-}" ]; then
    case "$("$bin/python" -m scripts.settings_report --platforms)" in
    none)
        echo "No WhatsApp or Stripe settings: starting the SANDBOX (emulated WhatsApp and Stripe)."
        exec "$bin/python" -m sandbox
        ;;
    partial)
        echo "Some WhatsApp/Stripe settings are set, some are missing: starting the real bot,"
        echo "not the sandbox (it would replace your settings). Complete them (below), or"
        echo "run \`make sandbox\` to try everything with emulators."
        ;;
    esac
fi

# Conversations are encrypted at rest; on the embedded SQLite default a machine without a
# key gets one, saved once in the env file (scripts/ensure_key.py).
key_line=$("$bin/python" -m scripts.ensure_key --env-file "$env_file")
if [ -n "$key_line" ]; then
    export "${key_line?}"
fi

# The action server always wants a bearer token (scripts/action_server.py): without one
# set, this run makes its own, so nothing else on this machine (a local process, a web page
# in a browser here) can post to it and run the shop's actions.
if [ -z "${ACTION_SERVER_TOKEN:-}" ]; then
    ACTION_SERVER_TOKEN=$("$bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')
    export ACTION_SERVER_TOKEN
fi

# Reports missing settings and writes the channels to open (WhatsApp only when configured,
# REST next to it only behind RASA_REST_TOKEN) and the endpoints (the action server's port,
# and ACTION_SERVER_TOKEN as the bearer header Rasa sends it).
"$bin/python" -m scripts.settings_report --credentials-out "$run_dir/credentials.yml" \
    --endpoints-out "$run_dir/endpoints.yml" --actions-port "$actions_port"

# The action server listens on 127.0.0.1 unless ACTION_SERVER_HOST says otherwise. The
# Rasa server listens on every interface only when Meta and Stripe must reach it (the
# WhatsApp channel is on) or its REST channel wants a token; the sandbox's bot, `make shell`
# and a REST-only bot without RASA_REST_TOKEN are for this machine only.
interface_args=()
if [ "${SANDBOX:-}" = 1 ] || [ "$mode" = shell ] \
    || { ! grep -q 'WhatsAppInput' "$run_dir/credentials.yml" && [ -z "${RASA_REST_TOKEN:-}" ]; }; then
    interface_args=(-i 127.0.0.1)
fi
if [ "${SANDBOX:-}" = 1 ]; then
    export ACTION_SERVER_HOST=127.0.0.1
fi

pids=()
stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop; echo "stopped"; exit 0' INT TERM
trap stop EXIT

"$bin/python" -m scripts.action_server --actions actions --port "$actions_port" &
pids+=($!)

rasa_args=(--model "$model" --endpoints "$run_dir/endpoints.yml" --credentials "$run_dir/credentials.yml")
if [ "$mode" = shell ]; then
    "$bin/python" -m scripts.rasa_cli shell "${rasa_args[@]}" "${interface_args[@]}"
    exit 0
fi

api_args=()
if [ "${RASA_ENABLE_API:-false}" = true ]; then
    api_args=(--enable-api --auth-token "$RASA_API_TOKEN")
fi
"$bin/python" -m scripts.rasa_cli run "${rasa_args[@]}" "${interface_args[@]}" --port "$rasa_port" "${api_args[@]}" &
pids+=($!)
echo "Rasa server on http://localhost:$rasa_port, action server on http://localhost:$actions_port (Ctrl-C stops both)"
wait -n "${pids[@]}"
