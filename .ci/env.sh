# Sourced by .ci/run (and by developers who want CI's cache): one persistent
# target directory and a ccache for DuckDB's C++ sources, so DuckDB (about
# 55 minutes on 2 cores) is compiled once per machine, not once per clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flapi/target}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/flapi/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-8G}"
# The cc crate recognises ccache as a compiler wrapper; a cache hit makes a
# rebuild of libduckdb-sys (after a build-dependency changes) take minutes.
if command -v ccache >/dev/null 2>&1; then
  export CC="ccache gcc" CXX="ccache g++"
fi
export CARGO_TERM_COLOR=never
