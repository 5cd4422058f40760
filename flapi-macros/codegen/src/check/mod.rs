//! Phase 3, check: what the build proves about a resolved project. SQL
//! ([`sqlcheck`], [`lexical`]), description hygiene ([`hygiene`]), literal
//! secrets ([`secrets`]) and the config auditor ([`auditor`]). The checks
//! run inside resolve, so every diagnostic of a build is collected at once.

pub mod auditor;
pub mod hygiene;
pub mod lexical;
pub mod secrets;
pub mod sqlcheck;
