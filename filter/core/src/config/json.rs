//! The configuration's JSON form, as Istio's `WasmPlugin`/`TrafficExtension` `pluginConfig` and
//! Envoy Gateway's `wasm[].config` hand it to the filter: both are a `google.protobuf.Struct` (or
//! arbitrary JSON) that the control plane serializes as JSON text into the plugin's
//! configuration. One mapping in each direction, so both forms compile to the same plan:
//! [`toml_text`] turns a JSON object into the TOML document [`super::compile_with`] parses, and
//! [`to_json`] turns a TOML document into that JSON object (what `airouter istio` writes).
//!
//! The mapping is the obvious one (objects are tables, arrays are arrays, strings, booleans and
//! numbers are themselves), with two rules for what JSON cannot tell or TOML cannot hold: a
//! `Struct` carries every number as a double, so a number with no fractional part is read as a
//! TOML integer (fields of floating-point type accept integers too); and JSON `null` has no TOML
//! counterpart, so it is refused with the key that holds it. A TOML date-time has no JSON
//! counterpart either, and no key of `airouter.toml` takes one: [`to_json`] refuses it.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};
use toml::{Table, Value as Toml};

/// The largest integer a double holds exactly (2^53); a `Struct` number beyond it lost digits.
const MAX_EXACT_DOUBLE: f64 = 9_007_199_254_740_992.0;

/// Whether `text` is the JSON form: its first non-blank character opens an object. A TOML
/// document never starts with `{` (a key, a table header, a comment or nothing come first).
pub fn is_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// `text` as TOML: unchanged when it is TOML already, else its JSON object mapped to the TOML
/// document holding the same values (errors name the key whose value has no TOML form, as a
/// dotted path, or the JSON syntax error's line and column).
pub fn toml_text(text: &str) -> Result<Cow<'_, str>, String> {
    if !is_json(text) {
        return Ok(Cow::Borrowed(text));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the JSON configuration: {e}"))?;
    let Value::Object(object) = value else {
        return Err("the JSON configuration is not an object".into());
    };
    let table = table_from_json(&object, "")?;
    toml::to_string(&table)
        .map(Cow::Owned)
        .map_err(|e| format!("the JSON configuration has no TOML form: {e}"))
}

/// The JSON object holding the values of the TOML document `text` (syntax errors as the TOML
/// parser reports them).
pub fn to_json(text: &str) -> Result<Map<String, Value>, String> {
    let table: Table = toml::from_str(text).map_err(|e| e.to_string())?;
    table
        .iter()
        .map(|(k, v)| Ok((k.clone(), json_from_toml(v, k)?)))
        .collect()
}

fn table_from_json(object: &Map<String, Value>, path: &str) -> Result<Table, String> {
    object
        .iter()
        .map(|(k, v)| {
            let key = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            Ok((k.clone(), toml_from_json(v, &key)?))
        })
        .collect()
}

fn toml_from_json(value: &Value, key: &str) -> Result<Toml, String> {
    Ok(match value {
        Value::Null => return Err(format!("{key}: null has no TOML form; leave the key out")),
        Value::Bool(b) => Toml::Boolean(*b),
        Value::String(s) => Toml::String(s.clone()),
        Value::Number(n) => number(n, key)?,
        Value::Array(items) => Toml::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| toml_from_json(v, &format!("{key}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Toml::Table(table_from_json(o, key)?),
    })
}

/// A JSON number as TOML: integers stay integers, and so do doubles without a fractional part
/// that a double holds exactly (a `Struct` writes `8080` as the double 8080.0).
fn number(n: &Number, key: &str) -> Result<Toml, String> {
    if let Some(i) = n.as_i64() {
        return Ok(Toml::Integer(i));
    }
    if n.is_u64() {
        return Err(format!("{key}: {n} is beyond TOML's integers"));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f.abs() <= MAX_EXACT_DOUBLE {
        // Exact: |f| <= 2^53 fits an i64 without rounding.
        #[allow(clippy::cast_possible_truncation)]
        return Ok(Toml::Integer(f as i64));
    }
    Ok(Toml::Float(f))
}

fn json_from_toml(value: &Toml, key: &str) -> Result<Value, String> {
    Ok(match value {
        Toml::String(s) => Value::String(s.clone()),
        Toml::Integer(i) => Value::from(*i),
        Toml::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("{key}: {f} has no JSON form"))?,
        Toml::Boolean(b) => Value::Bool(*b),
        Toml::Datetime(_) => return Err(format!("{key}: a date-time has no JSON form here")),
        Toml::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| json_from_toml(v, &format!("{key}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Toml::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), json_from_toml(v, &format!("{key}.{k}"))?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_passes_through_unchanged() {
        let text = "# comment\n[listener]\nport = 8080\n";
        assert!(matches!(toml_text(text), Ok(Cow::Borrowed(t)) if t == text));
    }

    #[test]
    fn a_json_object_becomes_the_same_values_in_toml() {
        let json = r#" {"listener": {"port": 8080.0, "address": "0.0.0.0"},
                       "models": [{"name": "m", "apis": ["chat"], "target": {"backend": "b"}}],
                       "routers": [{"temperature": 0.5}]} "#;
        let text = toml_text(json).unwrap();
        let table: Table = toml::from_str(&text).unwrap();
        assert_eq!(table["listener"]["port"], Toml::Integer(8080));
        assert_eq!(table["models"][0]["target"]["backend"], Toml::from("b"));
        assert_eq!(table["routers"][0]["temperature"], Toml::Float(0.5));
    }

    #[test]
    fn what_has_no_toml_form_is_refused_with_its_key() {
        let err = toml_text(r#"{"backends": {"b": {"url": null}}}"#).unwrap_err();
        assert!(err.starts_with("backends.b.url: null"), "{err}");
        let err = toml_text(r#"{"a": [1, 18446744073709551615]}"#).unwrap_err();
        assert!(err.starts_with("a[1]: "), "{err}");
        assert!(toml_text("{\"a\": ").unwrap_err().contains("line 1"));
        assert!(toml_text(" {").is_err());
    }

    #[test]
    fn toml_to_json_and_back_is_the_same_document() {
        let text =
            "[listener]\nport = 8080\n\n[[models]]\nname = \"m\"\napis = [\"chat\"]\nx = 1.5\n";
        let json = Value::Object(to_json(text).unwrap()).to_string();
        let back: Table = toml::from_str(&toml_text(&json).unwrap()).unwrap();
        assert_eq!(back, toml::from_str::<Table>(text).unwrap());
        assert!(to_json("d = 1979-05-27T07:32:00Z")
            .unwrap_err()
            .starts_with("d: "));
    }
}
