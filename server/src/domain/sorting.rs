//! The `sorting` parameter of the list endpoints: a JSON list of
//! `{"id": KEY, "desc": true|false}`, as the Simvue client sends it
//! (`{"column": KEY, "descending": ...}` is read too). Each list names the
//! keys it can sort by; any other key, or an entry that is not of this
//! shape, is refused with a message saying what is accepted, rather than
//! answered in some other order.

use std::cmp::Ordering;

use serde_json::Value;

use super::{Error, Result};

/// Sort keys in order of precedence, each with whether it is descending.
pub type SortKeys = Vec<(String, bool)>;

/// The sort keys of a list of `what` (`runs`, `folders`, ...): `None` when
/// the request asks for no order (no parameter, an empty string or `[]`).
/// `sortable` decides which keys the list knows; `accepted` says which in
/// the error message.
pub fn parse(
    raw: Option<&str>,
    what: &str,
    sortable: impl Fn(&str) -> bool,
    accepted: &str,
) -> Result<Option<SortKeys>> {
    let Some(raw) = raw.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let shape = || {
        Error::bad_request(format!(
            "'sorting' must be a JSON list of {{\"id\": KEY, \"desc\": true|false}}, not {raw}"
        ))
    };
    let entries = serde_json::from_str::<Vec<Value>>(raw).map_err(|_| shape())?;
    let mut keys = SortKeys::new();
    for e in &entries {
        let Value::Object(o) = e else {
            return Err(shape());
        };
        let Some(Value::String(key)) = o.get("id").or_else(|| o.get("column")) else {
            return Err(shape());
        };
        let desc = match o.get("desc").or_else(|| o.get("descending")) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Error::bad_request(format!(
                    "'desc' of sorting key '{key}' must be true or false, not {other}"
                )));
            }
        };
        if !sortable(key) {
            return Err(Error::invalid(format!(
                "cannot sort {what} by '{key}'; {what} sort by {accepted}"
            )));
        }
        keys.push((key.clone(), desc));
    }
    Ok((!keys.is_empty()).then_some(keys))
}

/// `metadata.K` (K not empty): a key into a document's metadata.
pub fn is_metadata_key(key: &str) -> bool {
    key.strip_prefix("metadata.").is_some_and(|k| !k.is_empty())
}

/// The order of two values of one sort key that both have it: numbers by
/// value, strings by their bytes, anything else by its JSON text.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Sorts documents by `keys`, each a dotted path into the document. A
/// document without the key (or with `null`) comes after those with it,
/// in either direction; ties keep the documents' order.
pub fn sort_docs(docs: &mut [Value], keys: &[(String, bool)]) {
    let value = |d: &Value, key: &str| -> Value {
        key.split('.')
            .try_fold(d, |v, k| v.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    docs.sort_by_cached_key(|d| {
        keys.iter()
            .map(|(k, desc)| Keyed(value(d, k), *desc))
            .collect::<Vec<_>>()
    });
}

/// One document's value of one sort key, ordered as [`sort_docs`] says.
#[derive(PartialEq)]
struct Keyed(Value, bool);

impl Eq for Keyed {}

impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.0.is_null(), other.0.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ if self.1 => compare(&other.0, &self.0),
            _ => compare(&self.0, &other.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(docs: &[Value]) -> Vec<&str> {
        docs.iter()
            .map(|d| d["name"].as_str().unwrap_or(""))
            .collect()
    }

    #[test]
    fn entries_of_the_wrong_shape_or_unknown_keys_are_refused_with_what_is_accepted() {
        let known = |k: &str| k == "name" || is_metadata_key(k);
        let p = |raw: &str| parse(Some(raw), "tags", known, "name or metadata.KEY");
        assert_eq!(
            p(r#"[{"id": "name", "desc": true}]"#).unwrap(),
            Some(vec![("name".into(), true)])
        );
        assert_eq!(
            p(r#"[{"column": "metadata.a.b", "descending": false}, {"id": "name"}]"#).unwrap(),
            Some(vec![("metadata.a.b".into(), false), ("name".into(), false)])
        );
        assert_eq!(p("[]").unwrap(), None);
        assert_eq!(parse(None, "tags", known, "").unwrap(), None);
        assert_eq!(parse(Some(" "), "tags", known, "").unwrap(), None);
        for bad in [
            "name",
            "{}",
            "[1]",
            r#"[{"desc": true}]"#,
            r#"[{"id": 3}]"#,
            "[null]",
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.kind, crate::domain::ErrorKind::BadRequest, "{bad}");
            assert!(
                e.detail.contains("must be a JSON list"),
                "{bad}: {}",
                e.detail
            );
        }
        let e = p(r#"[{"id": "name", "desc": "yes"}]"#).unwrap_err();
        assert_eq!(
            e.detail,
            "'desc' of sorting key 'name' must be true or false, not \"yes\""
        );
        for unknown in ["nmae", "metadata.", "metadata", ""] {
            let e = p(&json!([{"id": unknown}]).to_string()).unwrap_err();
            assert_eq!(e.kind, crate::domain::ErrorKind::Invalid);
            assert_eq!(
                e.detail,
                format!("cannot sort tags by '{unknown}'; tags sort by name or metadata.KEY")
            );
        }
    }

    #[test]
    fn documents_sort_by_each_key_in_turn_with_missing_values_last_either_way() {
        let mut docs = vec![
            json!({"name": "c", "metadata": {"n": 2}}),
            json!({"name": "a", "metadata": {}}),
            json!({"name": "b", "metadata": {"n": 10}}),
            json!({"name": "d", "metadata": {"n": 2}}),
        ];
        sort_docs(&mut docs, &[("metadata.n".into(), false)]);
        assert_eq!(
            names(&docs),
            ["c", "d", "b", "a"],
            "numbers by value, ties stay"
        );
        sort_docs(
            &mut docs,
            &[("metadata.n".into(), true), ("name".into(), true)],
        );
        assert_eq!(names(&docs), ["b", "d", "c", "a"]);
        sort_docs(&mut docs, &[("name".into(), false)]);
        assert_eq!(names(&docs), ["a", "b", "c", "d"]);
    }
}
