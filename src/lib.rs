//! flapi: a folder of YAML and SQL compiled into a hardened REST and MCP
//! server on embedded DuckDB.
//!
//! The project folder is read at build time (`build.rs`, or
//! `flapi_macros::project!` for other crates): the generated code is a
//! static description of routes, typed argument structs and precompiled
//! SQL texts, and reaches this crate only through [`runtime`].
//!
//! One call has one life whatever transport carries it: [`call`] is that
//! pipeline; [`http`] and [`mcp`] are adapters in front of it; [`auth`],
//! [`db`] and [`audit`] are what it uses. ARCHITECTURE.md has the map.

// Generated code names `::flapi::runtime`; this makes that path work here.
extern crate self as flapi;

pub mod app;
pub mod audit;
pub mod auth;
pub mod call;
pub mod db;
pub mod heartbeat;
pub mod http;
pub mod logging;
pub mod mcp;
pub mod runtime;

/// The default project, compiled by `build.rs` from `project/` (or the
/// folder in `FLAPI_PROJECT`).
pub mod project {
    include!(concat!(env!("OUT_DIR"), "/flapi_project.rs"));
}

pub use app::{App, app, router};
pub use db::{Database, DbOptions, StartupError};
pub use http::serve;
