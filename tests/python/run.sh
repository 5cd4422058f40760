#!/usr/bin/env bash
# The default project's MCP surface driven by the official MCP Python SDK:
# builds nothing (uses the release binary `cargo test --release` built),
# starts it on a free loopback port, runs tests/python/mcp_client.py and
# stops it. The SDK is installed into a cached virtualenv on first use.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${FLAPI_VENV:-$HOME/.cache/flapi/venv}
if ! "$venv/bin/python" -c 'import mcp' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'mcp==2.3.0'
fi
bin=${CARGO_TARGET_DIR:-$root/target}/release/flapi
log=$(mktemp)
audit=$(mktemp -d)
"$bin" serve --port 0 --log-format text --audit-file "$audit/audit.jsonl" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$log" "$audit"' EXIT
# The server logs its address once it accepts connections.
url=$(timeout 60 tail -n +1 -f "$log" | grep -m1 -o 'http://127\.0\.0\.1:[0-9]*' || true)
if [ -z "$url" ]; then
  echo "python-mcp: the server did not start:" >&2
  cat "$log" >&2
  exit 1
fi
"$venv/bin/python" "$root/tests/python/mcp_client.py" "$url/mcp"
# Every MCP message of the run was audited, in one intact hash chain.
"$bin" audit verify "$audit/audit.jsonl"
