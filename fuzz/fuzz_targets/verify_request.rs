//! Any header value, token or body through every parser a request reaches: signature
//! header layouts (plain, pairs, list), JWT/JWS headers and payloads, Basic credentials,
//! Standard Webhooks lists, Twilio forms, JSON pointers, schemas. Nothing may panic.
#![no_main]

use std::sync::OnceLock;

use hookgate_verify::{NoKeys, Request, Source, SourceSpec};
use libfuzzer_sys::fuzz_target;

fn sources() -> &'static [(Source, &'static str)] {
    static SOURCES: OnceLock<Vec<(Source, &'static str)>> = OnceLock::new();
    SOURCES.get_or_init(|| {
        let specs: [(&str, &str); 9] = [
            ("preset = \"entrupy\"\nsecret = \"s\"", "Entrupy-Signature"),
            ("preset = \"stripe\"\nsecret = \"s\"", "Stripe-Signature"),
            ("preset = \"standard-webhooks\"\nsecret = \"whsec_c2VjcmV0\"", "webhook-signature"),
            ("preset = \"trivialsec\"\nsecret = \"s\"\naccount = \"a\"\nsubject = \"b\"", "Authorization"),
            ("[verify]\nkind = \"jwt\"\nalgorithms = [\"HS256\", \"HS512\"]\nsecret = \"s\"\ntimestamp_claim = \"ts\"\n[verify.claims]\nx = \"{json:/a/b}\"", "Authorization"),
            ("[verify]\nkind = \"oidc\"\n[verify.issuers]\n\"https://i\" = []", "Authorization"),
            ("[verify]\nkind = \"basic\"\nusername = \"u\"\npassword = \"p\"", "Authorization"),
            ("preset = \"twilio\"\nsecret = \"s\"\nurl = \"https://e.com\"", "X-Twilio-Signature"),
            ("[verify]\nkind = \"hmac\"\nheader = \"X-S\"\nlayout = \"list\"\nitem_prefix = \"v1,\"\ntimestamp = \"header:X-S\"\nsigned = \"{header:X-S}{query:a}{json:/x}\"\nsecret = \"s\"", "X-S"),
        ];
        specs
            .iter()
            .map(|(toml, header)| (Source::build(toml::from_str::<SourceSpec>(toml).expect("fuzz TOML")).expect("fuzz source config"), *header))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let header = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for (source, name) in sources() {
        let mut request = Request::post("/fuzz", body);
        request.headers.append(name, header.to_vec());
        request.headers.append("Content-Type", "application/x-www-form-urlencoded");
        request.query = std::str::from_utf8(query).ok().map(str::to_owned);
        let _ = source.accept(&request, now, &NoKeys);
    }
});
