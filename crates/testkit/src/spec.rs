//! A validator for requests against a Swagger 2.0 spec: the route and method
//! must exist, path parameters must be present, and the JSON body must match
//! the body parameter's schema (types, required fields, enums, bounds, and
//! no unknown fields, which Firecracker rejects).

use serde_json::{Map, Value};

pub struct Spec {
    doc: Value,
}

impl Spec {
    pub fn parse(yaml: &str) -> Result<Spec, String> {
        let doc: Value =
            serde_norway::from_str(yaml).map_err(|e| format!("spec does not parse: {e}"))?;
        if doc.get("swagger").and_then(Value::as_str) != Some("2.0") {
            return Err("not a Swagger 2.0 document".into());
        }
        Ok(Spec { doc })
    }

    pub fn firecracker() -> Spec {
        Spec::parse(crate::FIRECRACKER_SPEC).expect("the bundled spec parses")
    }

    /// The route template matching `path`, e.g. `/drives/{drive_id}`.
    fn route(&self, path: &str) -> Option<(&str, &Value)> {
        let wanted: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let paths = self.doc.get("paths")?.as_object()?;
        // Exact routes win over templated ones.
        let mut templated = None;
        for (template, item) in paths {
            let parts: Vec<&str> = template.trim_end_matches('/').split('/').collect();
            if parts.len() != wanted.len() {
                continue;
            }
            let mut exact = true;
            let matches = parts.iter().zip(&wanted).all(|(t, w)| {
                if t.starts_with('{') && t.ends_with('}') {
                    exact = false;
                    !w.is_empty()
                } else {
                    t == w
                }
            });
            if matches && exact {
                return Some((template.as_str(), item));
            }
            if matches {
                templated = Some((template.as_str(), item));
            }
        }
        templated
    }

    /// Checks one request. `body` is the raw request body.
    pub fn validate(&self, method: &str, path: &str, body: &[u8]) -> Result<(), String> {
        let (template, item) = self
            .route(path)
            .ok_or_else(|| format!("{method} {path}: no such path in the spec"))?;
        let operation = item
            .get(method.to_ascii_lowercase())
            .ok_or_else(|| format!("{method} {path}: the spec has no {method} on {template}"))?;
        let params = operation
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let body_param = params
            .iter()
            .find(|p| p.get("in").and_then(Value::as_str) == Some("body"));
        let trimmed = body.iter().all(u8::is_ascii_whitespace);
        match body_param {
            None if !trimmed => Err(format!("{method} {template} takes no body")),
            None => Ok(()),
            Some(param) => {
                let required = param
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if trimmed {
                    return if required {
                        Err(format!("{method} {template}: body is required"))
                    } else {
                        Ok(())
                    };
                }
                let value: Value = serde_json::from_slice(body)
                    .map_err(|e| format!("{method} {template}: body is not JSON: {e}"))?;
                let schema = param
                    .get("schema")
                    .ok_or_else(|| format!("{template}: body parameter without schema"))?;
                self.check(schema, &value, "body")
                    .map_err(|e| format!("{method} {template}: {e}"))
            }
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> Result<&'a Value, String> {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/definitions/")
                    .ok_or_else(|| format!("unsupported $ref {reference}"))?;
                self.doc
                    .get("definitions")
                    .and_then(|d| d.get(name))
                    .ok_or_else(|| format!("unknown definition {name}"))
            }
            None => Ok(schema),
        }
    }

    fn check(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema)?;
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            if !options.contains(value) {
                return Err(format!(
                    "{at}: {value} is not one of {}",
                    Value::Array(options.clone())
                ));
            }
        }
        let kind = schema.get("type").and_then(Value::as_str).unwrap_or(
            if schema.get("properties").is_some() {
                "object"
            } else {
                "any"
            },
        );
        match kind {
            "object" => {
                let object = value
                    .as_object()
                    .ok_or_else(|| format!("{at}: expected an object, got {value}"))?;
                self.check_object(schema, object, at)
            }
            "string" => value
                .is_string()
                .then_some(())
                .ok_or_else(|| format!("{at}: expected a string, got {value}")),
            "boolean" => value
                .is_boolean()
                .then_some(())
                .ok_or_else(|| format!("{at}: expected a boolean, got {value}")),
            "integer" => {
                let n = value
                    .as_i64()
                    .ok_or_else(|| format!("{at}: expected an integer, got {value}"))?;
                if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
                    if n < min {
                        return Err(format!("{at}: {n} is below the minimum {min}"));
                    }
                }
                if let Some(max) = schema.get("maximum").and_then(Value::as_i64) {
                    if n > max {
                        return Err(format!("{at}: {n} is above the maximum {max}"));
                    }
                }
                Ok(())
            }
            "number" => value
                .is_number()
                .then_some(())
                .ok_or_else(|| format!("{at}: expected a number, got {value}")),
            "array" => {
                let items = value
                    .as_array()
                    .ok_or_else(|| format!("{at}: expected an array, got {value}"))?;
                match schema.get("items") {
                    Some(item_schema) => items
                        .iter()
                        .enumerate()
                        .try_for_each(|(i, v)| self.check(item_schema, v, &format!("{at}[{i}]"))),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        object: &Map<String, Value>,
        at: &str,
    ) -> Result<(), String> {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for field in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(field) {
                    return Err(format!("{at}: required field {field:?} is missing"));
                }
            }
        }
        let Some(properties) = properties else {
            return Ok(());
        };
        for (key, value) in object {
            let property = properties
                .get(key)
                .ok_or_else(|| format!("{at}: unknown field {key:?}"))?;
            if property.get("readOnly").and_then(Value::as_bool) == Some(true) {
                return Err(format!("{at}.{key}: field is read-only"));
            }
            self.check(property, value, &format!("{at}.{key}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec::firecracker()
    }

    #[test]
    fn accepts_requests_firecracker_accepts() {
        let s = spec();
        s.validate(
            "PUT",
            "/machine-config",
            br#"{"vcpu_count": 2, "mem_size_mib": 1024, "smt": false}"#,
        )
        .unwrap();
        s.validate("PUT", "/drives/rootfs", br#"{"drive_id": "rootfs", "path_on_host": "/x", "is_root_device": false, "is_read_only": true, "cache_type": "Writeback"}"#).unwrap();
        s.validate("PUT", "/actions", br#"{"action_type": "InstanceStart"}"#)
            .unwrap();
        s.validate("GET", "/", b"").unwrap();
    }

    #[test]
    fn rejects_what_firecracker_would_reject() {
        let s = spec();
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "PUT",
                "/machine-config",
                r#"{"vcpu_count": 2}"#,
                "mem_size_mib",
            ),
            (
                "PUT",
                "/machine-config",
                r#"{"vcpu_count": "2", "mem_size_mib": 1}"#,
                "expected an integer",
            ),
            (
                "PUT",
                "/machine-config",
                r#"{"vcpu_count": 0, "mem_size_mib": 1}"#,
                "minimum",
            ),
            (
                "PUT",
                "/machine-config",
                r#"{"vcpu_count": 2, "mem_size_mib": 1, "turbo": true}"#,
                "unknown field",
            ),
            (
                "PUT",
                "/actions",
                r#"{"action_type": "Reboot"}"#,
                "not one of",
            ),
            (
                "PUT",
                "/drives/rootfs",
                r#"{"drive_id": "rootfs"}"#,
                "is_root_device",
            ),
            ("PUT", "/no-such-thing", "{}", "no such path"),
            ("DELETE", "/machine-config", "", "no DELETE"),
            ("PUT", "/actions", "", "body is required"),
            ("PUT", "/actions", "not json", "not JSON"),
        ];
        for (method, path, body, expect) in cases {
            let err = s.validate(method, path, body.as_bytes()).unwrap_err();
            assert!(err.contains(expect), "{method} {path} {body}: {err}");
        }
    }
}
