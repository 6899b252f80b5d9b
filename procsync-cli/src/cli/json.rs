//! A minimal JSON writer for `--json` output (objects, arrays, strings, numbers,
//! booleans, null), so that the binary needs no serialisation crate; strings are
//! escaped by `procsync_bench::write_json_string`, the one escaper of the workspace.
//! It only builds text; what the fields are is decided by the subcommands and
//! documented in docs/CLI.md.

use std::fmt::Write as _;

use procsync_bench::write_json_string;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string (escaped on output).
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object; fields keep their order.
    Object(Vec<(&'static str, Json)>),
}

impl Json {
    /// The value as compact JSON text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Str(s) => write_json_string(out, s),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::Str(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::Str(s)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}

impl From<u32> for Json {
    fn from(n: u32) -> Json {
        Json::Int(n.into())
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Json {
        v.map_or(Json::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escaped_compact_json() {
        let v = Json::Object(vec![
            ("name", "Global\\a\"b\n\u{1}".into()),
            ("n", Json::Int(-3)),
            ("ok", true.into()),
            ("none", Json::Null),
            ("list", Json::Array(vec![Json::Int(1), "x".into()])),
        ]);
        assert_eq!(
            v.render(),
            r#"{"name":"Global\\a\"b\n\u0001","n":-3,"ok":true,"none":null,"list":[1,"x"]}"#
        );
    }
}
