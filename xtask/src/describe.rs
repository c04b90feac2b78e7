//! What the generator writes beside progenitor's client, from the same spec:
//! the provider's descriptor (`PROVIDER`, `DEFAULT_BASE_URL`), its
//! constructors, the `ClientHooks` impl, and the `limits` module that the
//! library, the CLI and the emulator check requests against.

use anyhow::{Context, Result, bail};
use openapiv3::{
    OpenAPI, Parameter, ReferenceOr, Schema, SchemaKind, SecurityScheme, StringType, Type,
};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::providers::Provider;

/// Everything appended to the generated client for `provider`.
pub fn extras(spec: &OpenAPI, provider: &Provider) -> Result<TokenStream> {
    let descriptor = descriptor(spec, provider)?;
    let limits = limits(spec);
    Ok(quote! {
        #descriptor
        #limits

        /// Every request goes through `songbind_transport::execute`: an error
        /// answer whose body is not the documented JSON (a proxy's HTML 502, a
        /// `text/plain` 429, an empty 503) still comes back as
        /// `Error::ErrorResponse` with its status and headers, its text in
        /// `detail`, instead of an undecodable payload without a status.
        impl ClientHooks for Client {
            async fn exec(
                &self,
                request: reqwest::Request,
                _info: &OperationInfo,
            ) -> reqwest::Result<reqwest::Response> {
                songbind_transport::execute::<types::ErrorBody>(self.client(), request).await
            }
        }
    })
}

/// `PROVIDER`, `DEFAULT_BASE_URL` and the constructors that send the key in
/// the spec's auth form.
fn descriptor(spec: &OpenAPI, provider: &Provider) -> Result<TokenStream> {
    let Some(server) = spec.servers.first() else {
        bail!("{}: the spec has no `servers` entry", provider.spec_path());
    };
    let base_url = server.url.trim_end_matches('/');
    let (auth, auth_doc) = auth(spec).with_context(|| provider.spec_path())?;
    let name = spec
        .info
        .extensions
        .get("x-songbind-name")
        .and_then(|v| v.as_str())
        .with_context(|| format!("{}: info.x-songbind-name is missing", provider.spec_path()))?;
    let slug = provider.name.as_str();
    let env_prefix = slug.to_ascii_uppercase();
    let provider_doc = format!(
        "{name}, as its spec describes it: base URL `{base_url}`, {auth_doc}, \
         environment variables `{env_prefix}_API_KEY` and `{env_prefix}_BASE_URL`."
    );
    let base_doc = format!("The production base URL of the {name} API (the spec's `servers`).");
    let with_key_doc = format!(
        "A client for `base_url` (for example [`DEFAULT_BASE_URL`]) that sends `api_key` \
         as {auth_doc} on every request, with the default [`HttpOptions`]: connect and \
         idle-read timeouts, but no total timeout."
    );
    Ok(quote! {
        #[doc = #provider_doc]
        pub const PROVIDER: songbind_transport::ProviderInfo = songbind_transport::ProviderInfo {
            name: #name,
            slug: #slug,
            env_prefix: #env_prefix,
            default_base_url: #base_url,
            auth: #auth,
        };

        #[doc = #base_doc]
        pub const DEFAULT_BASE_URL: &str = #base_url;

        impl Client {
            #[doc = #with_key_doc]
            pub fn with_api_key(
                base_url: &str,
                api_key: &str,
            ) -> Result<Self, songbind_transport::BuildError> {
                Self::with_options(base_url, api_key, &songbind_transport::HttpOptions::default())
            }

            /// Like [`Client::with_api_key`], with your own timeouts and user agent.
            pub fn with_options(
                base_url: &str,
                api_key: &str,
                options: &songbind_transport::HttpOptions,
            ) -> Result<Self, songbind_transport::BuildError> {
                let base_url = songbind_transport::normalize_base_url(base_url)?;
                let http = songbind_transport::http_client(api_key, PROVIDER.auth, options)?;
                Ok(Self::new_with_client(&base_url, http))
            }
        }
    })
}

/// The auth form of the spec's first security scheme, and its description.
fn auth(spec: &OpenAPI) -> Result<(TokenStream, String)> {
    let schemes = spec
        .components
        .as_ref()
        .map(|c| &c.security_schemes)
        .context("no components.securitySchemes")?;
    let Some((_, ReferenceOr::Item(scheme))) = schemes.iter().next() else {
        bail!("no inline security scheme");
    };
    Ok(match scheme {
        SecurityScheme::HTTP { scheme, .. } if scheme.eq_ignore_ascii_case("bearer") => (
            quote!(songbind_transport::AuthScheme::Bearer),
            "`Authorization: Bearer <key>`".to_owned(),
        ),
        SecurityScheme::APIKey {
            location: openapiv3::APIKeyLocation::Header,
            name,
            ..
        } if name.eq_ignore_ascii_case("authorization") => (
            quote!(songbind_transport::AuthScheme::Raw),
            "`Authorization: <key>` (the raw key, no scheme)".to_owned(),
        ),
        SecurityScheme::APIKey {
            location: openapiv3::APIKeyLocation::Header,
            name,
            ..
        } => {
            let lower = name.to_ascii_lowercase();
            let doc = format!("`{lower}: <key>`");
            (quote!(songbind_transport::AuthScheme::Header(#lower)), doc)
        }
        other => bail!("unsupported security scheme {other:?}"),
    })
}

/// The `limits` module: one `Limit` per constrained field or parameter,
/// named by its path from the schema (`<SCHEMA>_<FIELD>`, and for a field
/// of a nested object, inline or `$ref`'d, `<SCHEMA>_<FIELD>_<NESTED>`, whose
/// `field` is the dotted path `prompt.text`) or from the operation
/// (`<OPERATION>_<PARAM>`, query and path parameters).
fn limits(spec: &OpenAPI) -> TokenStream {
    let mut items = Vec::new();
    if let Some(components) = &spec.components {
        for (schema_name, schema) in &components.schemas {
            let ReferenceOr::Item(schema) = schema else {
                continue;
            };
            object_limits(spec, schema_name, schema, "", 0, &mut items);
        }
    }
    for (_, _, operation) in spec.operations() {
        let Some(operation_id) = &operation.operation_id else {
            continue;
        };
        for parameter in &operation.parameters {
            let parameter_data = match parameter {
                ReferenceOr::Item(Parameter::Query { parameter_data, .. })
                | ReferenceOr::Item(Parameter::Path { parameter_data, .. }) => parameter_data,
                _ => continue,
            };
            let openapiv3::ParameterSchemaOrContent::Schema(ReferenceOr::Item(schema)) =
                &parameter_data.format
            else {
                continue;
            };
            if let Some(rule) = rule_of(schema) {
                items.push(limit_item(operation_id, &parameter_data.name, rule));
            }
        }
    }
    quote! {
        /// Every limit the spec states for a request field or parameter
        /// (`minLength`/`maxLength`, `minimum`/`maximum`, `maxItems`, `enum`),
        /// named by its path (`<SCHEMA>_<FIELD>`, `<SCHEMA>_<FIELD>_<NESTED>`
        /// for a nested object's field, whose `field` reads `field.nested`).
        /// Validation in `songbind`, the CLI and the emulator reads these,
        /// so a changed spec changes them all.
        pub mod limits {
            use songbind_transport::{Limit, Rule};
            #(#items)*
        }
    }
}

/// How deep [`object_limits`] follows nested objects (a guard against a
/// schema that contains itself).
const MAX_NESTING: usize = 4;

/// The limits of `schema`'s properties (if it is an object), each named by
/// `prefix` and its own name, and those of the objects nested in them.
fn object_limits(
    spec: &OpenAPI,
    owner: &str,
    schema: &Schema,
    prefix: &str,
    depth: usize,
    items: &mut Vec<TokenStream>,
) {
    let SchemaKind::Type(Type::Object(object)) = &schema.schema_kind else {
        return;
    };
    for (field, property) in &object.properties {
        let property = match property {
            ReferenceOr::Item(boxed) => Some(boxed.as_ref()),
            ReferenceOr::Reference { reference } => resolve(spec, reference),
        };
        let Some(property) = property else {
            continue;
        };
        let path = if prefix.is_empty() {
            field.clone()
        } else {
            format!("{prefix}.{field}")
        };
        if let Some(rule) = rule_of(property) {
            items.push(limit_item(owner, &path, rule));
        }
        if depth < MAX_NESTING {
            object_limits(spec, owner, property, &path, depth + 1, items);
        }
    }
}

fn resolve<'a>(spec: &'a OpenAPI, reference: &str) -> Option<&'a Schema> {
    let name = reference.strip_prefix("#/components/schemas/")?;
    match spec.components.as_ref()?.schemas.get(name)? {
        ReferenceOr::Item(schema) => Some(schema),
        ReferenceOr::Reference { .. } => None,
    }
}

/// The rule a schema states, as tokens, if it states one.
fn rule_of(schema: &Schema) -> Option<TokenStream> {
    let opt_usize = |v: Option<usize>| match v {
        Some(v) => quote!(Some(#v)),
        None => quote!(None),
    };
    let opt_i64 = |v: Option<i64>| match v {
        Some(v) => quote!(Some(#v)),
        None => quote!(None),
    };
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(StringType {
            enumeration,
            min_length,
            max_length,
            ..
        })) => {
            let values: Vec<&String> = enumeration.iter().flatten().collect();
            if !values.is_empty() {
                return Some(quote!(Rule::OneOf(&[#(#values),*])));
            }
            if min_length.is_none() && max_length.is_none() {
                return None;
            }
            let (min, max) = (opt_usize(*min_length), opt_usize(*max_length));
            Some(quote!(Rule::Length { min: #min, max: #max }))
        }
        SchemaKind::Type(Type::Array(array)) => {
            if array.min_items.is_none() && array.max_items.is_none() {
                return None;
            }
            let (min, max) = (opt_usize(array.min_items), opt_usize(array.max_items));
            Some(quote!(Rule::Items { min: #min, max: #max }))
        }
        SchemaKind::Type(Type::Integer(integer)) => {
            if integer.minimum.is_none() && integer.maximum.is_none() {
                return None;
            }
            let (min, max) = (opt_i64(integer.minimum), opt_i64(integer.maximum));
            Some(quote!(Rule::Range { min: #min, max: #max }))
        }
        _ => None,
    }
}

fn limit_item(owner: &str, field: &str, rule: TokenStream) -> TokenStream {
    let ident = format_ident!("{}_{}", screaming(owner), screaming(field));
    let doc = format!("`{owner}.{field}`, as the spec limits it.");
    quote! {
        #[doc = #doc]
        pub const #ident: Limit = Limit { field: #field, rule: #rule };
    }
}

/// `CreateRemixSongRequest` -> `CREATE_REMIX_SONG_REQUEST`;
/// `n_variations` -> `N_VARIATIONS`; `get_remix_song` -> `GET_REMIX_SONG`.
fn screaming(name: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(if c == '-' || c == '.' {
            '_'
        } else {
            c.to_ascii_uppercase()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec whose request nests an inline object and a `$ref`'d one, and
    /// whose operation takes a constrained path parameter.
    const SPEC: &str = r##"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /tasks/{task_id}:
    get:
      operationId: get_task
      parameters:
        - {name: task_id, in: path, required: true, schema: {type: string, minLength: 1}}
      responses: {"200": {description: ok}}
components:
  schemas:
    ComposeRequest:
      type: object
      properties:
        prompt:
          type: object
          properties:
            text: {type: string, maxLength: 1000}
        source:
          $ref: "#/components/schemas/Source"
    Source:
      type: object
      properties:
        url: {type: string, minLength: 1}
"##;

    #[test]
    fn nested_and_referenced_objects_and_path_parameters_are_named_by_their_path() {
        let spec: OpenAPI = serde_yaml::from_str(SPEC).unwrap();
        let text = limits(&spec).to_string();
        for expected in [
            "COMPOSE_REQUEST_PROMPT_TEXT",
            "\"prompt.text\"",
            "COMPOSE_REQUEST_SOURCE_URL",
            "\"source.url\"",
            // The referenced schema keeps its own limit too.
            "SOURCE_URL",
            "GET_TASK_TASK_ID",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
    }
}
