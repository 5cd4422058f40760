//! flapi: a folder of YAML and SQL compiled into a hardened REST server on
//! embedded DuckDB.
//!
//! The project folder is read at build time (`build.rs`, or
//! `flapi_macros::project!` for other crates): the generated code is a
//! static description of routes, typed argument structs and precompiled
//! SQL texts, and reaches this crate only through [`runtime`].

// Generated code names `::flapi::runtime`; this makes that path work here.
extern crate self as flapi;

pub mod audit;
pub mod auth;
pub mod db;
pub mod edge;
pub mod encode;
pub mod logging;
pub mod masking;
pub mod mcp;
pub mod policy;
pub mod ratelimit;
pub mod runtime;
pub mod server;
pub mod sqlguard;

/// The default project, compiled by `build.rs` from `project/` (or the
/// folder in `FLAPI_PROJECT`).
pub mod project {
    include!(concat!(env!("OUT_DIR"), "/flapi_project.rs"));
}

pub use db::{Database, DbOptions, StartupError};
pub use server::{App, app, router, serve};
