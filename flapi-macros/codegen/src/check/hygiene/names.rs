//! Names read as words, and the output column names of a SQL template.

use super::views::View;

/// `ignoreAllPrevious_instructions-now` as `ignore All Previous
/// instructions now`: separators become spaces and a space goes where a
/// lower-case letter meets an upper-case one (or an acronym meets a word:
/// `readSSHKey` → `read SSH Key`). Each byte keeps its original offset.
pub(super) fn words(name: &str) -> View {
    let chars: Vec<(usize, char)> = name.char_indices().collect();
    let mut out = View::default();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j].1);
        let next = chars.get(i + 1).map(|p| p.1);
        if matches!(c, '_' | '-' | '.' | '+') {
            out.push(' ', at);
            continue;
        }
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if boundary {
            out.push(' ', at);
        }
        out.push(c, at);
    }
    out
}

/// Where SQL names an output column: every double-quoted identifier, the
/// identifier after `AS`, and a string literal written as a whole select
/// item (`SELECT 'text', …`: DuckDB names that column after the text) or
/// aliased (`'text' AS note`: the text is in every row).
/// Template tags, comments and other string literals are skipped. Each
/// name comes with the byte offset of its first character.
pub fn output_names(sql: &str) -> Vec<(usize, String)> {
    let bytes = sql.as_bytes();
    let mut names = Vec::new();
    // The previous significant token, lower-cased (`as`, `select`, `,`).
    let mut previous = String::new();
    let mut i = 0;
    let token_after = |mut j: usize| -> String {
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let rest = &sql[j..];
        if rest.starts_with(',') {
            return ",".into();
        }
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    while i < bytes.len() {
        let rest = &sql[i..];
        if rest.starts_with("{{") {
            i += rest.find("}}").map_or(rest.len(), |e| e + 2);
            continue;
        }
        if rest.starts_with("--") {
            i += rest.find('\n').unwrap_or(rest.len());
            continue;
        }
        if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == '"' || c == '\'' {
            // A quoted token; a doubled quote is one quote inside it.
            let mut j = i + 1;
            let mut value = String::new();
            while j < bytes.len() {
                let ch = sql[j..].chars().next().unwrap_or(c);
                if ch == c {
                    if sql[j + 1..].starts_with(c) {
                        value.push(c);
                        j += 2;
                        continue;
                    }
                    break;
                }
                value.push(ch);
                j += ch.len_utf8();
            }
            let whole_item = matches!(previous.as_str(), "select" | "distinct" | ",")
                && matches!(token_after(j + 1).as_str(), "," | "from" | "" | "as");
            // A constant with an alias (`'…' AS note`) is returned in every
            // row: a model reads it as surely as the column name.
            let constant = c == '\'' && token_after(j + 1) == "as";
            if c == '"' || whole_item || constant {
                names.push((i + 1, value));
            }
            previous = c.to_string();
            i = (j + 1).min(bytes.len());
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                .collect();
            if previous == "as" {
                names.push((i, word.clone()));
            }
            i += word.len();
            previous = word.to_ascii_lowercase();
            continue;
        }
        if !c.is_whitespace() {
            previous = c.to_string();
        }
        i += c.len_utf8();
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_words() {
        assert_eq!(words("ignoreAllPrevious").text, "ignore All Previous");
        assert_eq!(words("read_SSHKey-now").text, "read SSH Key now");
        assert_eq!(words("order_id").text, "order id");
        let w = words("sendTo");
        assert_eq!(w.origin(w.text.find('T').unwrap()), 4);
    }

    #[test]
    fn output_names_are_aliases_quoted_names_and_bare_literals() {
        let sql = "SELECT id AS customer_id, \"Total (€)\", 'note' , name\n\
                   FROM t AS x WHERE s = 'open' -- AS hidden\n\
                   {{#params.q}} AND q = {{ params.q }} {{/params.q}}";
        let names: Vec<String> = output_names(sql).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["customer_id", "Total (€)", "note", "x"]);
        let (at, name) = &output_names("SELECT 1 AS \"it\"\"s\"")[0];
        assert_eq!((*at, name.as_str()), (13, "it\"s"));
    }
}
