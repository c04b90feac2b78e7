//! No secret (API key, webhook secret) ever shows in `Debug`, `Display` or
//! an error message: not through `Secret` itself, not through a webhook
//! verifier or its errors, not through client construction errors, and not
//! through a provider's refusal of the key.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use httpmock::prelude::*;
use reqwest::header::HeaderMap;
use serde_json::json;
use songbind::webhook::{MusicGptWebhook, SoundPieceWebhookVerifier, WebhookError, confirm};
use songbind::{Error, Secret};
use songbind_transport::{AuthScheme, HttpOptions, http_client};

const KEY_BYTES: &[u8] = b"songbind-test-webhook-key-bytes!";

/// Every way a value can be shown, joined for one `contains` check.
fn shown(value: &(impl std::fmt::Debug + std::fmt::Display)) -> String {
    format!("{value} | {value:?} | {value:#?}")
}

fn assert_hidden(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "`{secret}` leaked in: {text}");
    }
}

#[test]
fn secret_debug_and_display_never_show_the_value() {
    #[derive(Debug)]
    #[allow(dead_code)] // Read through Debug only.
    struct Config {
        api_key: Secret,
        webhook_secret: Option<Secret>,
    }
    let config = Config {
        api_key: Secret::from("spk_live_0123456789"),
        webhook_secret: Some(Secret::new(String::from("whsec_c2VjcmV0"))),
    };
    let text = format!(
        "{config:?} {config:#?} {} {}",
        config.api_key,
        config.api_key.clone()
    );
    assert_hidden(
        &text,
        &["spk_live_0123456789", "whsec_c2VjcmV0", "c2VjcmV0"],
    );
    assert!(text.contains("Secret(***)"), "{text}");
    assert_eq!(config.api_key.expose(), "spk_live_0123456789");
}

#[test]
fn every_way_to_build_a_secret_keeps_it_hidden_and_exposable() {
    let from_string = Secret::from(String::from("sk_from_string_42"));
    let cloned = from_string.clone();
    drop(from_string);
    let built = [
        (Secret::new("sk_new_42"), "sk_new_42"),
        (Secret::from("sk_from_str_42"), "sk_from_str_42"),
        (cloned, "sk_from_string_42"),
        (Secret::default(), ""),
    ];
    for (secret, value) in &built {
        assert_eq!(secret.expose(), *value);
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{secret}"), "***");
        let padded = format!("{secret:>20} {secret:x?} {:?}", Some(secret));
        assert_hidden(&padded, &["sk_"]);
    }
    assert!(Secret::default().is_blank());
    assert!(!built[0].0.is_blank());
}

#[test]
fn missing_environment_variable_error_names_only_the_variable() {
    let error = Secret::from_env("SONGBIND_SECRET_TEST_UNSET_VARIABLE").unwrap_err();
    let text = shown(&error);
    assert!(
        text.contains("SONGBIND_SECRET_TEST_UNSET_VARIABLE"),
        "{text}"
    );
    assert!(text.contains("not set"), "{text}");
}

#[test]
fn verifier_debug_and_wrong_secret_errors_never_show_a_secret() {
    let right = format!("whsec_{}", BASE64.encode(KEY_BYTES));
    let wrong = format!("whsec_{}", BASE64.encode(b"another key, also secret"));
    let body = br#"{"type":"remix_song.ready","data":{"remix_song":{"id":"op_1"}}}"#;
    let timestamp = 1_736_935_200;
    let signature = standardwebhooks::Webhook::new(&right)
        .unwrap()
        .sign("msg_1", timestamp, body)
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", "msg_1".parse().unwrap());
    headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
    headers.insert("webhook-signature", signature.parse().unwrap());

    let verifier = SoundPieceWebhookVerifier::new(Secret::from(wrong.as_str())).unwrap();
    let debug = format!("{verifier:?} {verifier:#?}");
    let now = UNIX_EPOCH + Duration::from_secs(1_736_935_200);
    let mismatch = verifier.verify_at(&headers, body, now).unwrap_err();
    assert!(matches!(mismatch, WebhookError::SignatureMismatch { .. }));
    let stale = verifier
        .verify_at(&headers, body, now + Duration::from_secs(3600))
        .unwrap_err();
    let as_crate_error = Error::from(mismatch.clone());
    let text = format!(
        "{debug} {} {} {}",
        shown(&mismatch),
        shown(&stale),
        shown(&as_crate_error)
    );
    let secrets = [
        right.as_str(),
        wrong.as_str(),
        right.trim_start_matches("whsec_"),
        wrong.trim_start_matches("whsec_"),
        "songbind-test-webhook-key",
        "another key",
    ];
    assert_hidden(&text, &secrets);
    // The expected and received signatures stay out of the message too.
    assert_hidden(&text, &[signature.trim_start_matches("v1,")]);
}

#[test]
fn malformed_webhook_secret_error_does_not_quote_it() {
    // base64's own error would name the offending byte and its offset.
    for secret in [
        "whsec_abc$defghijk",
        "sk_looks_like_an_api_key!",
        "whsec_Zm9vYmFy!",
    ] {
        let error = SoundPieceWebhookVerifier::new(Secret::from(secret)).unwrap_err();
        assert!(
            matches!(error, WebhookError::InvalidSecret { .. }),
            "{error:?}"
        );
        let text = format!("{} {}", shown(&error), shown(&Error::from(error.clone())));
        let value = secret.trim_start_matches("whsec_");
        assert_hidden(&text, &[value, "abc", "$", "!", "Zm9v", "symbol", "offset"]);
    }
}

#[test]
fn header_breaking_api_key_errors_never_show_the_key() {
    let key = "sk_live_supersecret\r\nX-Evil: 1";
    let error = http_client(key, AuthScheme::Bearer, &HttpOptions::default()).unwrap_err();
    let as_crate_error = Error::from(error);
    let text = shown(&as_crate_error);
    assert_hidden(&text, &["sk_live_supersecret", "X-Evil"]);

    let error = songbind_musicgpt::Client::with_api_key("http://127.0.0.1:1", key).unwrap_err();
    assert_hidden(&shown(&error), &["sk_live_supersecret", "X-Evil"]);
    let error = songbind_soundpiece::Client::with_api_key("http://127.0.0.1:1", key).unwrap_err();
    assert_hidden(&shown(&error), &["sk_live_supersecret", "X-Evil"]);
}

#[test]
fn built_clients_do_not_show_their_key() {
    let key = Secret::from("mgpt_live_key_that_must_not_leak");
    let client =
        songbind_musicgpt::Client::with_api_key("http://127.0.0.1:1", key.expose()).unwrap();
    assert_hidden(&format!("{client:?}"), &[key.expose()]);
}

#[tokio::test]
async fn refused_key_over_the_wire_is_unauthorized_without_the_key() {
    let key = Secret::from("mgpt_refused_key_987654321");
    let server = MockServer::start_async().await;
    let refused = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/byId")
                .header("authorization", "mgpt_refused_key_987654321");
            then.status(401)
                .json_body(json!({"detail": "Invalid API key"}));
        })
        .await;
    let client = songbind_musicgpt::Client::with_api_key(&server.base_url(), key.expose()).unwrap();
    let body = json!({"success": true, "conversion_id": "c1", "conversion_path": "https://cdn.example/c1.mp3"});
    let MusicGptWebhook::Conversion(delivery) =
        MusicGptWebhook::parse(body.to_string().as_bytes()).unwrap()
    else {
        panic!("a conversion delivery");
    };
    let error = confirm(&client, &delivery).await.unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");
    assert_hidden(&shown(&error), &[key.expose()]);
    refused.assert_async().await;
}
