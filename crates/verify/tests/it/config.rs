//! Configuration errors name the exact key and say what to do.

use crate::support::try_source;

fn error(toml: &str) -> String {
    try_source(toml).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn errors_name_the_key() {
    let cases = [
        ("preset = \"entrupi\"\nsecret = \"s\"", "preset: unknown preset `entrupi`"),
        ("preset = \"entrupy\"", "secret: preset `entrupy` needs `secret`"),
        ("preset = \"entrupy\"\nsecret = \"\"", "secret: is empty"),
        ("preset = \"entrupy\"\nsecret = \"s\"\naccount = \"a\"", "account: is not a parameter of preset `entrupy`"),
        ("preset = \"qitech\"\napi_client_key = \"k\"", "public_key: preset `qitech` needs `public_key`"),
        ("preset = \"qitech\"\napi_client_key = \"k\"\npublic_key = \"not a pem\"", "public_key: key #0 is not a ES512 public key in PEM"),
        ("preset = \"pps\"", "issuers: preset `pps` needs"),
        ("secret = \"s\"", "secret: is a preset parameter"),
        ("id = \"x\"", "verify: no verification configured"),
        ("[verify]\nkind = \"hmac\"\nheader = \"X\"\nsecret = \"s\"\nsigned = \"{body}.{bdy}\"", "verify.signed: unknown placeholder `{bdy}`"),
        ("[verify]\nkind = \"hmac\"\nheader = \"X\"\nsecret = \"s\"\ntimestamp = \"header:T\"\ntolerance = \"soon\"", "verify.tolerance: `soon` is not a duration"),
        ("[verify]\nkind = \"hmac\"\nheader = \"X\"\nsecret = \"s\"\ntolerance = \"5m\"", "verify.tolerance: set `timestamp` too"),
        ("[verify]\nkind = \"jwt\"\nalgorithms = [\"HS257\"]\nsecret = \"s\"", "verify.algorithms: unknown algorithm `HS257`"),
        ("[verify]\nkind = \"jwt\"\nalgorithms = [\"ES512\"]\nsecret = \"s\"", "verify.algorithms: no configured key fits ES512"),
        ("[verify]\nkind = \"token\"\nsecret = \"s\"", "verify.header: set exactly one of `header` and `query`"),
        ("[verify]\nkind = \"ip\"\nallow = [\"10.0.0.0/33\"]", "verify.allow[0]: `10.0.0.0/33` is not an address"),
        ("[[verify]]\nkind = \"none\"\n[[verify]]\nkind = \"hmac\"\nheader = \"X\"", "verify[1].secret: set `secret`"),
        ("id = \"body\"\n[verify]\nkind = \"none\"", "id: `body` is not a field reference"),
        ("schema = \"{\"\n[verify]\nkind = \"none\"", "schema: not JSON"),
        ("schema = '{\"type\": 12}'\n[verify]\nkind = \"none\"", "schema: not a valid JSON Schema"),
    ];
    for (toml, expected) in cases {
        let message = error(toml);
        assert!(
            message.starts_with(expected),
            "for\n{toml}\nexpected `{expected}…`, got `{message}`"
        );
    }
}

#[test]
fn unknown_keys_inside_verify_are_refused() {
    let spec: Result<hookgate_verify::SourceSpec, _> = toml::from_str(
        "[verify]\nkind = \"hmac\"\nheader = \"X\"\nsecret = \"s\"\nalgoritm = \"sha1\"",
    );
    let message = spec.unwrap_err().to_string();
    assert!(message.contains("algoritm"), "{message}");
    let spec: Result<hookgate_verify::SourceSpec, _> = toml::from_str("[verify]\nkind = \"hmca\"");
    assert!(spec.unwrap_err().to_string().contains("hmca"));
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let src = crate::support::source("preset = \"github\"\nsecret = \"super-secret-value\"");
    assert!(!format!("{src:?}").contains("super-secret-value"));
    let req = crate::support::request("/", b"x", &[("X-Hub-Signature-256", "sha256=00")]);
    let err = crate::support::accept(&src, &req, crate::support::at(0)).unwrap_err();
    assert!(!err.to_string().contains("super-secret-value"));
}
