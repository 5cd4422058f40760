//! Template-side use of the shared lexical rules
//! ([`flapi_sqlrules::lexical`]): every construct on which the build's
//! parser and DuckDB disagree is a build error at its file:line:col.

use crate::diag::Diagnostics;
use crate::resolve::mustache::SourceMap;
use flapi_sqlrules::lexical::scan;

/// Reports every refused construct of a template at its file:line:col.
pub fn check_template(map: &SourceMap<'_>, diags: &mut Diagnostics) {
    for found in scan(map.src) {
        diags.error(
            &map.at(found.offset),
            "",
            found.message,
            Some(found.hint.to_string()),
        );
    }
}
