//! Test support for the contract tests: reads a provider's spec and hands out
//! the examples written in it, so every mock is built from the spec itself
//! rather than from a copy that could drift.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;

/// A provider spec (`specs/<name>.yaml`) loaded as JSON, with `$ref`s resolved
/// on lookup.
pub struct Spec {
    name: String,
    doc: Value,
}

/// One documented error body of an operation.
pub struct ErrorExample {
    /// The response key it is documented under (`4XX` or `5XX`).
    pub class: String,
    /// The example's name in the spec.
    pub name: String,
    /// The body, as JSON.
    pub body: Value,
}

impl Spec {
    /// Loads `specs/<name>.yaml` from the workspace.
    pub fn load(name: &str) -> Result<Self> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../specs")
            .join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let doc: Value =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Self {
            name: name.to_owned(),
            doc,
        })
    }

    /// The operation object at `paths.<path>.<method>`.
    pub fn operation(&self, path: &str, method: &str) -> Result<&Value> {
        self.doc
            .get("paths")
            .and_then(|paths| paths.get(path))
            .and_then(|item| item.get(method))
            .ok_or_else(|| anyhow!("{}: no operation {method} {path}", self.name))
    }

    /// Every `(method, path, operationId)` the spec declares.
    pub fn operations(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        if let Some(paths) = self.doc.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                for (method, op) in item.as_object().into_iter().flatten() {
                    if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                        out.push((method.clone(), path.clone(), id.to_owned()));
                    }
                }
            }
        }
        out
    }

    /// The named example of the operation's request body for `media_type`.
    pub fn request_example(
        &self,
        path: &str,
        method: &str,
        media_type: &str,
        name: &str,
    ) -> Result<Value> {
        let op = self.operation(path, method)?;
        let body = self.resolve(op.get("requestBody").context("no requestBody")?)?;
        self.named_example(body, media_type, name)
            .with_context(|| format!("{}: request example `{name}` of {method} {path}", self.name))
    }

    /// The names of every example of the operation's request body for
    /// `media_type`, in the order the spec writes them.
    pub fn request_example_names(
        &self,
        path: &str,
        method: &str,
        media_type: &str,
    ) -> Result<Vec<String>> {
        let op = self.operation(path, method)?;
        let body = self.resolve(op.get("requestBody").context("no requestBody")?)?;
        let examples = body
            .pointer(&format!("/content/{}/examples", escape(media_type)))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                anyhow!(
                    "{}: {method} {path} has no request examples for {media_type}",
                    self.name
                )
            })?;
        Ok(examples.keys().cloned().collect())
    }

    /// The named example of the operation's `status` response for `media_type`.
    pub fn response_example(
        &self,
        path: &str,
        method: &str,
        status: &str,
        media_type: &str,
        name: &str,
    ) -> Result<Value> {
        let response = self.response(path, method, status)?;
        self.named_example(response, media_type, name)
            .with_context(|| {
                format!(
                    "{}: response example `{name}` of {method} {path} {status}",
                    self.name
                )
            })
    }

    /// The names of every example of the operation's `status` response, in the
    /// order the spec writes them (serde_json's `preserve_order` keeps it), which
    /// is the order of events for a server-sent event stream.
    pub fn response_example_names(
        &self,
        path: &str,
        method: &str,
        status: &str,
        media_type: &str,
    ) -> Result<Vec<String>> {
        let response = self.response(path, method, status)?;
        let examples = response
            .pointer(&format!("/content/{}/examples", escape(media_type)))
            .and_then(Value::as_object)
            .ok_or_else(|| anyhow!("{}: {method} {path} {status} has no examples", self.name))?;
        Ok(examples.keys().cloned().collect())
    }

    /// The `summary` of the named example of the operation's `status` response
    /// (`None` when the example has no summary), e.g. to read the status code
    /// an error example documents ("422, missing prompt.").
    pub fn response_example_summary(
        &self,
        path: &str,
        method: &str,
        status: &str,
        media_type: &str,
        name: &str,
    ) -> Result<Option<String>> {
        let response = self.response(path, method, status)?;
        let example = response
            .pointer(&format!(
                "/content/{}/examples/{}",
                escape(media_type),
                escape(name)
            ))
            .ok_or_else(|| {
                anyhow!(
                    "{}: no example `{name}` of {method} {path} {status}",
                    self.name
                )
            })?;
        Ok(self
            .resolve(example)?
            .get("summary")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// Every error body documented for the operation (`4XX` and `5XX`).
    pub fn error_examples(&self, path: &str, method: &str) -> Result<Vec<ErrorExample>> {
        let mut out = Vec::new();
        for class in ["4XX", "5XX"] {
            let response = self.response(path, method, class)?;
            let examples = response
                .pointer("/content/application~1json/examples")
                .and_then(Value::as_object)
                .ok_or_else(|| anyhow!("{method} {path} {class}: no JSON examples"))?;
            for (name, example) in examples {
                let body = self
                    .resolve(example)?
                    .get("value")
                    .cloned()
                    .ok_or_else(|| anyhow!("{method} {path} {class} `{name}`: no value"))?;
                out.push(ErrorExample {
                    class: class.to_owned(),
                    name: name.clone(),
                    body,
                });
            }
        }
        if out.is_empty() {
            bail!("{}: {method} {path} documents no error bodies", self.name);
        }
        Ok(out)
    }

    /// The HTTP status an error example documents: the number its `summary`
    /// starts with (`"429 Too Many Requests"`, `"422, missing prompt."`) when
    /// that number lies in the example's class, otherwise 400 for `4XX` and 500
    /// for `5XX`.
    pub fn error_status(&self, path: &str, method: &str, example: &ErrorExample) -> Result<u16> {
        let summary = self
            .response_example_summary(
                path,
                method,
                &example.class,
                "application/json",
                &example.name,
            )?
            .unwrap_or_default();
        let digits: String = summary
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let (low, fallback) = match example.class.as_str() {
            "4XX" => (400, 400),
            "5XX" => (500, 500),
            other => bail!("{}: unknown error class {other}", self.name),
        };
        match digits.parse::<u16>() {
            Ok(status) if digits.len() == 3 => {
                ensure!(
                    (low..low + 100).contains(&status),
                    "{}: error example `{}` names status {status}, outside its class {}",
                    self.name,
                    example.name,
                    example.class
                );
                Ok(status)
            }
            _ => Ok(fallback),
        }
    }

    /// A component schema (`components.schemas.<schema>`), as written.
    pub fn schema(&self, schema: &str) -> Result<&Value> {
        self.doc
            .pointer(&format!("/components/schemas/{}", escape(schema)))
            .ok_or_else(|| anyhow!("{}: no schema {schema}", self.name))
    }

    /// A component schema's `example`.
    pub fn schema_example(&self, schema: &str) -> Result<Value> {
        self.doc
            .pointer(&format!("/components/schemas/{}/example", escape(schema)))
            .cloned()
            .ok_or_else(|| anyhow!("{}: schema {schema} has no example", self.name))
    }

    fn response(&self, path: &str, method: &str, status: &str) -> Result<&Value> {
        let op = self.operation(path, method)?;
        let response = op
            .get("responses")
            .and_then(|r| r.get(status))
            .ok_or_else(|| anyhow!("{}: {method} {path} has no {status} response", self.name))?;
        self.resolve(response)
    }

    fn named_example(&self, holder: &Value, media_type: &str, name: &str) -> Result<Value> {
        let example = holder
            .pointer(&format!(
                "/content/{}/examples/{}",
                escape(media_type),
                escape(name)
            ))
            .ok_or_else(|| anyhow!("no example `{name}` for {media_type}"))?;
        self.resolve(example)?
            .get("value")
            .cloned()
            .ok_or_else(|| anyhow!("example `{name}` has no value"))
    }

    /// Follows local `$ref`s (`#/components/...`) until a plain object.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> Result<&'a Value> {
        for _ in 0..16 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok(value);
            };
            let pointer = reference
                .strip_prefix('#')
                .ok_or_else(|| anyhow!("non-local $ref {reference}"))?;
            value = self
                .doc
                .pointer(pointer)
                .ok_or_else(|| anyhow!("{}: dangling $ref {reference}", self.name))?;
        }
        bail!("{}: $ref chain too deep", self.name)
    }
}

/// Escapes a JSON-pointer segment (`/` and `~`).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}
