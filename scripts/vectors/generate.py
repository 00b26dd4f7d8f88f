#!/usr/bin/env python3
"""Makes the preset test vectors, crates/verify/tests/vectors/<preset>.json.

Each vector is a request signed by the provider's official SDK (the versions pinned in
requirements.txt), or by the code of the provider's own document where it publishes no
SDK, or quoted from the provider's documentation; wherever the SDK has a verifier, the
request is also checked with it. `crates/verify/tests/it/vectors.rs` then verifies every
vector through its preset, and derives the negatives (tampered body, wrong secret, stale
timestamp).

Run through scripts/vectors/run.sh, which installs the pinned packages into a virtualenv.
The time of every vector is NOW (2026-01-01T00:00:00Z); the Rust test verifies at that time.
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "crates" / "verify" / "tests" / "vectors"
NOW = 1767225600
VECTORS = {}


def vector(preset, made_by, reference):
    def register(make):
        VECTORS[preset] = (made_by, reference, make)
        return make

    return register


def case(params, headers, body, *, expect=None, method="POST", path="/webhook", query=None,
         timestamped=False, body_signed=True, keys=None, name="event", wrong_params=None,
         wrong_keys=None):
    if isinstance(body, bytes):
        body = body.decode()
    return {
        "name": name,
        "params": params,
        "method": method,
        "path": path,
        "query": query,
        "headers": [[k, v] for k, v in headers],
        "body": body,
        "now": NOW,
        "timestamped": timestamped,
        "body_signed": body_signed,
        "expect": expect or {},
        **({"keys": keys} if keys else {}),
        **({"wrong_params": wrong_params} if wrong_params else {}),
        **({"wrong_keys": wrong_keys} if wrong_keys else {}),
    }


def hmac_hex(key, message, digest=hashlib.sha256):
    return hmac.new(key, message, digest).hexdigest()


def hmac_b64(key, message, digest=hashlib.sha256):
    return base64.b64encode(hmac.new(key, message, digest).digest()).decode()


# --- the seed providers: their documents' own code ---------------------------------------


@vector("entrupy", "seed 003's Flask server: hmac.new(secret, body, sha256), base64", "seed 003")
def entrupy():
    secret = "entrupy-endpoint-secret"
    body = b'{"event":{"id":"evt_7b1e","type":"authentication.completed"}}'
    signature = "SHA256:" + hmac_b64(secret.encode(), body)
    return [case({"secret": secret}, [("Entrupy-Signature", signature)], body, path="/notify")]


@vector("freispace", "seed 004's Flask handler: hmac.new(secret, request.data, sha256).hexdigest()", "seed 004")
def freispace():
    secret = "freispace-secret"
    body = b'{"id":"wh_1","type":"booking.created","data":{}}'
    return [case({"secret": secret}, [("X-Freispace-Signature", hmac_hex(secret.encode(), body))], body)]


@vector("trivialsec", "PyJWT 2.10.1 jwt.encode (HS256) with seed 001's claims; checked with seed 001's jwt.decode", "seed 001")
def trivialsec():
    import jwt

    secret = "trivialsec-webhook-secret"
    account = "acme"
    subject = "urn:uuid:bc6e2cd5-1f59-487f-b05b-49946bd078b2"
    event_id = "6f1d0f6a-2b7c-4d55-9c1e-8f0e4c7b9a10"
    body = json.dumps({"event_id": event_id, "event_name": "report_created",
                       "timestamp": "2026-01-01T00:00:00Z", "payload": {}}, separators=(",", ":"))
    claims = {"iat": NOW, "nbf": NOW, "exp": NOW + 300, "iss": "https://www.trivialsec.com",
              "aud": f"urn:trivialsec:webhook:client_endpoint:{account}", "sub": subject,
              "eid": f"urn:uuid:{event_id}"}
    token = jwt.encode(claims, secret, algorithm="HS256")
    jwt.decode(token, secret, algorithms=["HS256"], audience=claims["aud"], issuer=claims["iss"],
               leeway=3, options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                  "require": ["iat", "nbf", "exp", "aud", "iss", "sub"]})
    return [case({"secret": secret, "account": account, "subject": subject},
                 [("Authorization", f"Bearer {token}")], body, path="/webhook/trivialsec",
                 timestamped=True, body_signed=False, expect={"id": event_id, "topic": "report_created"})]


@vector("qitech", "python-jose 3.3.0 jwt.encode (ES512) with seed 002's claims; checked with seed 002's jwt.decode", "seed 002")
def qitech():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from jose import jwt

    key = ec.generate_private_key(ec.SECP521R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    body = '{"webhook_type": "debt_assignment", "key": "f4a1", "status": "finished"}'
    stamp = dt.datetime.fromtimestamp(NOW, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    claims = {"method": "POST", "uri": "/client_webhook_endpoint",
              "payload_md5": hashlib.md5(body.encode()).hexdigest(), "timestamp": stamp}
    token = jwt.encode(claims, private, algorithm="ES512")
    decoded = jwt.decode(token, public)
    assert decoded["payload_md5"] == hashlib.md5(json.dumps(json.loads(body)).encode()).hexdigest()
    other = ec.generate_private_key(ec.SECP521R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return [case({"public_key": public, "api_client_key": "qi-api-client-key"},
                 [("AUTHORIZATION", token), ("API-CLIENT-KEY", "qi-api-client-key")], body,
                 path="/client_webhook_endpoint", timestamped=True,
                 wrong_params={"public_key": other, "api_client_key": "qi-api-client-key"})]


@vector("pps", "Authlib 1.3.2 jwt.encode (RS256 ID token) and a JWKS; checked with seed 000's jwt.decode + CodeIDToken", "seed 000")
def pps():
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

    issuer = "https://securetoken.google.com/pps-local-dev-376022"
    audience = "pps-local-dev-376022"
    key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "pps-key-1"})
    public = key.as_dict(is_private=False)
    public.update({"kid": "pps-key-1", "alg": "RS256", "use": "sig"})
    claims = {"iss": issuer, "aud": audience, "sub": "pps-sender", "iat": NOW, "exp": NOW + 3600,
              "auth_time": NOW}
    token = jwt.encode({"alg": "RS256", "kid": "pps-key-1"}, claims, key).decode()
    decoded = jwt.decode(token, {"keys": [public]}, claims_cls=CodeIDToken,
                         claims_options={"iss": {"essential": True, "value": issuer}})
    decoded.validate(now=NOW)
    body = '{"orderId":"o-1","status":"shipped"}'
    headers = [("Authorization", f"Bearer {token}"), ("X-Pps-Topic", "order.shipped"),
               ("X-Pps-Tenant-Id", "tenant-9"), ("X-Pps-Webhook-Id", "wh-77"),
               ("X-Pps-Triggered-At", "2024-01-1T10:00:00.7777748Z")]
    other = JsonWebKey.generate_key("RSA", 2048, is_private=False).as_dict(is_private=False)
    other.update({"kid": "pps-key-1", "alg": "RS256", "use": "sig"})
    # The ID token authenticates the sender; it does not cover the body.
    return [case({"issuers": {issuer: [audience]}}, headers, body, path="/", timestamped=True, body_signed=False,
                 keys={issuer: {"keys": [public]}}, wrong_keys={issuer: {"keys": [other]}},
                 expect={"id": "wh-77", "topic": "order.shipped", "tenant": "tenant-9"})]


# --- SDKs ---------------------------------------------------------------------------------


@vector("standard-webhooks", "standardwebhooks 1.0.0 (PyPI) Webhook.sign, and svix 1.42.0 (PyPI) Webhook.sign for the svix-* headers",
        "https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md")
def standard_webhooks():
    from standardwebhooks.webhooks import Webhook as StandardWebhook
    from svix.webhooks import Webhook as SvixWebhook

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    at = dt.datetime.fromtimestamp(NOW, dt.timezone.utc)
    body = '{"type":"invoice.paid","data":{"id":"in_1"}}'
    msg = "msg_2mZ3ZQk7ExampleStandard"
    standard = StandardWebhook(secret).sign(msg, at, body)
    svix_msg = "msg_2mZ3ZQk7ExampleSvix"
    svix = SvixWebhook(secret).sign(svix_msg, at, body)
    return [
        case({"secret": secret}, [("webhook-id", msg), ("webhook-timestamp", str(NOW)),
                                  ("webhook-signature", standard)], body, timestamped=True,
             expect={"id": msg, "topic": "invoice.paid"}),
        case({"secret": secret}, [("svix-id", svix_msg), ("svix-timestamp", str(NOW)),
                                  ("svix-signature", svix)], body, timestamped=True, name="svix headers",
             expect={"id": svix_msg, "topic": "invoice.paid"}),
    ]


@vector("github", "quoted from GitHub's documentation (its test values)",
        "https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation")
def github():
    return [case({"secret": "It's a Secret to Everybody"},
                 [("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                  ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"), ("X-GitHub-Event", "ping")],
                 "Hello, World!", expect={"id": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "topic": "ping"})]


@vector("stripe", "stripe 11.1.0 (PyPI) WebhookSignature._compute_signature; checked with WebhookSignature.verify_header",
        "https://docs.stripe.com/webhooks#verify-manually")
def stripe_():
    import stripe

    secret = "whsec_test_5f8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
    body = '{"id":"evt_1QExample","object":"event","type":"payment_intent.succeeded","data":{"object":{}}}'
    signature = stripe.WebhookSignature._compute_signature(f"{NOW}.{body}", secret)
    header = f"t={NOW},v1={signature},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    stripe.WebhookSignature.verify_header(body, header, secret, tolerance=None)
    return [case({"secret": secret}, [("Stripe-Signature", header)], body, timestamped=True,
                 expect={"id": "evt_1QExample", "topic": "payment_intent.succeeded"})]


@vector("slack", "slack_sdk 3.33.4 (PyPI) SignatureVerifier.generate_signature; checked with SignatureVerifier.is_valid",
        "https://api.slack.com/authentication/verifying-requests-from-slack")
def slack():
    from slack_sdk.signature import Clock, SignatureVerifier

    class At(Clock):
        def now(self):
            return float(NOW)

    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    body = '{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}'
    verifier = SignatureVerifier(secret, clock=At())
    signature = verifier.generate_signature(timestamp=str(NOW), body=body)
    assert verifier.is_valid(body=body, timestamp=str(NOW), signature=signature)
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    verification = json.dumps({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"},
                              separators=(",", ":"))
    verification_signature = verifier.generate_signature(timestamp=str(NOW), body=verification)
    assert verifier.is_valid(body=verification, timestamp=str(NOW), signature=verification_signature)
    return {"cases": [case({"secret": secret}, [("X-Slack-Request-Timestamp", str(NOW)), ("X-Slack-Signature", signature)],
                           body, timestamped=True, expect={"id": "Ev08MFMKH6", "topic": "app_mention"})],
            "handshakes": [handshake("url_verification", [("X-Slack-Request-Timestamp", str(NOW)),
                                                          ("X-Slack-Signature", verification_signature)],
                                     verification, 200, json.dumps({"challenge": challenge}, separators=(",", ":")))]}


@vector("shopify", "shopify.dev's verification sample (crypto.createHmac('sha256', secret).update(body).digest('base64')), reproduced",
        "https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook")
def shopify():
    secret = "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"
    body = '{"id":820982911946154508,"email":"jon@example.com","closed_at":null}'
    return [case({"secret": secret}, [("X-Shopify-Hmac-Sha256", hmac_b64(secret.encode(), body.encode())),
                                      ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
                                      ("X-Shopify-Topic", "orders/create")], body,
                 expect={"id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "topic": "orders/create"})]


@vector("gitlab", "GitLab's documentation: the secret token is sent as X-Gitlab-Token",
        "https://docs.gitlab.com/user/project/integrations/webhooks/#create-a-webhook")
def gitlab():
    return [case({"secret": "gitlab-secret-token"},
                 [("X-Gitlab-Token", "gitlab-secret-token"), ("X-Gitlab-Event", "Push Hook"),
                  ("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e")],
                 '{"object_kind":"push","ref":"refs/heads/main"}', body_signed=False,
                 expect={"id": "13792a34-cac6-4fda-95a8-c58e00a3954e", "topic": "Push Hook"})]


@vector("twilio", "twilio 9.3.7 (PyPI) RequestValidator.compute_signature; checked with RequestValidator.validate",
        "https://www.twilio.com/docs/usage/webhooks/webhooks-security")
def twilio():
    from twilio.request_validator import RequestValidator

    token = "12345"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
    base = "https://mycompany.com"
    url = f"{base}/myapp.php?foo=1&bar=2"
    validator = RequestValidator(token)
    signature = validator.compute_signature(url, params)
    assert validator.validate(url, params, signature)
    from urllib.parse import urlencode
    body = urlencode(params)
    return [case({"secret": token, "url": base},
                 [("X-Twilio-Signature", signature), ("Content-Type", "application/x-www-form-urlencoded"),
                  ("I-Twilio-Idempotency-Token", "9e1c6c2c-1b2a-4f7c-8d2b-0a7d1f3e5b6c")],
                 body, path="/myapp.php", query="foo=1&bar=2",
                 expect={"id": "9e1c6c2c-1b2a-4f7c-8d2b-0a7d1f3e5b6c"})]


# --- HMAC of the body, reproduced from the provider's documentation ----------------------
#
# These providers publish the algorithm (and sample code) but no SDK verifier and no test
# values: the vector is computed as their documentation's sample code computes it.


def _doc_hmac(header, secret, body, *, digest=hashlib.sha256, encoding="hex", prefix="",
              headers=(), expect=None):
    raw = hmac.new(secret.encode(), body.encode(), digest).digest()
    value = raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()
    return [case({"secret": secret}, [(header, prefix + value), *headers], body, expect=expect)]


DOC_HMAC = {
    # preset: (documentation sample, header, options, body, headers, expect)
    "bitbucket": ("Atlassian's \"Secure webhooks\" (HMAC-SHA256 hex, `sha256=`)", "X-Hub-Signature",
                  dict(prefix="sha256="), '{"push":{"changes":[]},"repository":{"full_name":"team/repo"}}',
                  [("X-Request-UUID", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"), ("X-Event-Key", "repo:push")],
                  {"id": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "topic": "repo:push"}),
    "gitea": ("Gitea's webhook documentation (HMAC-SHA256 hex of the payload)", "X-Gitea-Signature", {},
              '{"ref":"refs/heads/main","commits":[]}',
              [("X-Gitea-Delivery", "5c9c6f1e-7d2b-4a8e-9f3c-1b2a3c4d5e6f"), ("X-Gitea-Event", "push")],
              {"id": "5c9c6f1e-7d2b-4a8e-9f3c-1b2a3c4d5e6f", "topic": "push"}),
    "sentry": ("Sentry's sample (hmac.new(client_secret, body, sha256).hexdigest())", "Sentry-Hook-Signature", {},
               '{"action":"created","data":{"issue":{"id":"1"}}}',
               [("Request-ID", "ae2ffe4c-7b5a-4fa2-9f1e-2c0d6d1e7b00"), ("Sentry-Hook-Resource", "issue")],
               {"id": "ae2ffe4c-7b5a-4fa2-9f1e-2c0d6d1e7b00", "topic": "issue"}),
    "terraform-cloud": ("HashiCorp's notification authenticity (HMAC-SHA512 hex)", "X-TFE-Notification-Signature",
                        dict(digest=hashlib.sha512),
                        '{"payload_version":1,"notification_configuration_id":"nc-1","run_id":"run-1","notifications":[{"trigger":"run:completed","message":"Run applied"}]}',
                        [], {"topic": "run:completed"}),
    "vercel": ("Vercel's sample (crypto.createHmac('sha1', secret).update(rawBody).digest('hex'))", "x-vercel-signature",
               dict(digest=hashlib.sha1), '{"id":"evt_vc_1","type":"deployment.succeeded","payload":{}}', [],
               {"id": "evt_vc_1", "topic": "deployment.succeeded"}),
    "intercom": ("Intercom's signed notifications (HMAC-SHA1 hex of the body, `sha1=`)", "X-Hub-Signature",
                 dict(digest=hashlib.sha1, prefix="sha1="),
                 '{"type":"notification_event","id":"notif_1","topic":"conversation.user.created","data":{"item":{}}}', [],
                 {"id": "notif_1", "topic": "conversation.user.created"}),
    "typeform": ("Typeform's sample (sha256= + base64 HMAC-SHA256 of the payload)", "Typeform-Signature",
                 dict(encoding="base64", prefix="sha256="),
                 '{"event_id":"01HTF","event_type":"form_response","form_response":{"form_id":"f1","answers":[]}}', [],
                 {"id": "01HTF", "topic": "form_response"}),
    "woocommerce": ("WooCommerce's webhook delivery (base64 HMAC-SHA256 of the payload)", "X-WC-Webhook-Signature",
                    dict(encoding="base64"), '{"id":727,"status":"processing","total":"29.35"}',
                    [("X-WC-Webhook-Delivery-ID", "a1b2c3"), ("X-WC-Webhook-Topic", "order.created")],
                    {"id": "a1b2c3", "topic": "order.created"}),
    "docusign": ("DocuSign's HMAC sample (base64 HMAC-SHA256 of the payload)", "X-DocuSign-Signature-1",
                 dict(encoding="base64"), '{"event":"envelope-completed","apiVersion":"v2.1","data":{"envelopeId":"e-1"}}', [],
                 {"topic": "envelope-completed"}),
    "lemon-squeezy": ("Lemon Squeezy's sample (crypto.createHmac('sha256', secret).update(rawBody).digest('hex'))", "X-Signature",
                      {}, '{"meta":{"event_name":"order_created"},"data":{"type":"orders","id":"1"}}',
                      [("X-Event-Name", "order_created")], {"topic": "order_created"}),
    "tally": ("Tally's sample (createHmac('sha256', secret).update(JSON.stringify(payload)).digest('base64'))", "Tally-Signature",
              dict(encoding="base64"), '{"eventId":"ev-1","eventType":"FORM_RESPONSE","createdAt":"2026-01-01T00:00:00Z","data":{"fields":[]}}', [],
              {"id": "ev-1", "topic": "FORM_RESPONSE"}),
    "segment": ("Segment's Webhooks destination (X-Signature: hex HMAC-SHA1 of the body)", "X-Signature",
                dict(digest=hashlib.sha1), '{"type":"track","event":"Order Completed","messageId":"ajs-8c1e","userId":"u1","properties":{}}', [],
                {"id": "ajs-8c1e", "topic": "track"}),
    "helpscout": ("Help Scout's sample (base64 HMAC-SHA1 of the body)", "X-HelpScout-Signature",
                  dict(digest=hashlib.sha1, encoding="base64"), '{"id":1234,"number":12,"type":"email","status":"active"}',
                  [("X-HelpScout-Event", "convo.created")], {"topic": "convo.created"}),
    "cal-com": ("Cal.com's sample (createHmac('sha256', secret).update(body).digest('hex'))", "X-Cal-Signature-256", {},
                '{"triggerEvent":"BOOKING_CREATED","createdAt":"2026-01-01T00:00:00.000Z","payload":{"uid":"bk_1"}}', [],
                {"topic": "BOOKING_CREATED"}),
    "jira": ("Atlassian's secure admin webhooks (sha256= + HMAC-SHA256 hex)", "X-Hub-Signature",
             dict(prefix="sha256="), '{"timestamp":1767225600000,"webhookEvent":"jira:issue_created","issue":{"key":"PRJ-1"}}',
             [("X-Atlassian-Webhook-Identifier", "wh-1234")], {"id": "wh-1234", "topic": "jira:issue_created"}),
}

def _register_doc_hmac():
    import re
    for preset, (made_by, header, options, body, headers, expect) in DOC_HMAC.items():
        record = (OUT.parents[1] / "presets" / f"{preset}.toml").read_text()
        reference = re.search(r'^docs = "(.*)"$', record, re.M).group(1)

        def make(preset=preset, header=header, options=options, body=body, headers=headers, expect=expect):
            return _doc_hmac(header, f"{preset}-webhook-secret", body, headers=headers, expect=expect, **options)

        VECTORS[preset] = (made_by + ", reproduced", reference, make)


_register_doc_hmac()


@vector("pagerduty", "PagerDuty's signature sample (v1= + HMAC-SHA256 hex; two secrets while rotating), reproduced",
        "https://developer.pagerduty.com/docs/webhooks-overview#webhook-signatures")
def pagerduty():
    body = '{"event":{"id":"01DEN3","event_type":"incident.triggered","data":{}}}'
    old, new = "pagerduty-old-secret", "pagerduty-webhook-secret"
    header = ",".join("v1=" + hmac_hex(k.encode(), body.encode()) for k in (old, new))
    return [case({"secret": new}, [("X-PagerDuty-Signature", header)], body,
                 expect={"id": "01DEN3", "topic": "incident.triggered"})]


@vector("linear", "Linear's verification sample (HMAC-SHA256 hex of the raw body; webhookTimestamp within a minute), reproduced",
        "https://linear.app/developers/webhooks#securing-webhooks")
def linear():
    body = json.dumps({"action": "create", "type": "Issue", "data": {"id": "iss-1"},
                       "webhookTimestamp": NOW * 1000}, separators=(",", ":"))
    secret = "lin_wh_secret"
    return [case({"secret": secret}, [("Linear-Signature", hmac_hex(secret.encode(), body.encode())),
                                      ("Linear-Delivery", "234d1a4e-b617-4388-90fe-adc3633d6b72"),
                                      ("Linear-Event", "Issue")], body, timestamped=True,
                 expect={"id": "234d1a4e-b617-4388-90fe-adc3633d6b72", "topic": "Issue"})]


@vector("webflow", "Webflow's sample (HMAC-SHA256 hex of `${timestamp}:${body}`, timestamp in ms), reproduced",
        "https://developers.webflow.com/data/docs/working-with-webhooks#validating-request-signatures")
def webflow():
    secret, body, ts = "webflow-webhook-secret", '{"triggerType":"form_submission","payload":{"id":"f-1"}}', str(NOW * 1000)
    return [case({"secret": secret}, [("x-webflow-timestamp", ts),
                                      ("x-webflow-signature", hmac_hex(secret.encode(), f"{ts}:{body}".encode()))],
                 body, timestamped=True, expect={"topic": "form_submission"})]


@vector("zendesk", "Zendesk's sample (base64 HMAC-SHA256 of timestamp + body), reproduced",
        "https://developer.zendesk.com/documentation/webhooks/verifying/")
def zendesk():
    secret, body = "zendesk-signing-secret", '{"type":"zen:event-type:ticket.created","id":"z-1","detail":{}}'
    ts = "2026-01-01T00:00:00Z"
    return [case({"secret": secret}, [("X-Zendesk-Webhook-Signature-Timestamp", ts),
                                      ("X-Zendesk-Webhook-Signature", hmac_b64(secret.encode(), (ts + body).encode())),
                                      ("x-zendesk-webhook-invocation-id", "inv-1")],
                 body, timestamped=True, expect={"id": "inv-1", "topic": "zen:event-type:ticket.created"})]


def _t_v1(header, key, secret, body, expect, *, sep=".", t=None):
    t = t or str(NOW)
    sig = hmac_hex(secret.encode(), f"{t}{sep}{body}".encode())
    return [case({"secret": secret}, [(header, f"t={t},{key}={sig}")], body, timestamped=True, expect=expect)]


@vector("calendly", "Calendly's sample (HMAC-SHA256 hex of `${t}.${body}`, header t=…,v1=…), reproduced",
        "https://developer.calendly.com/api-docs/4c305798a61d3-webhook-signatures")
def calendly():
    return _t_v1("Calendly-Webhook-Signature", "v1", "calendly-signing-key",
                 '{"event":"invitee.created","created_at":"2026-01-01T00:00:00Z","payload":{}}', {"topic": "invitee.created"})


@vector("tiktok", "TikTok's webhook verification (HMAC-SHA256 hex of `{t}.{body}`, header t=…,s=…), reproduced",
        "https://developers.tiktok.com/doc/webhooks-verification")
def tiktok():
    return _t_v1("TikTok-Signature", "s", "tiktok-client-secret",
                 '{"client_key":"ck","event":"post.publish.complete","create_time":1767225600,"user_openid":"u","content":"{}"}',
                 {"topic": "post.publish.complete"})


@vector("mux", "Mux's sample (HMAC-SHA256 hex of `${t}.${body}`, header t=…,v1=…), reproduced",
        "https://www.mux.com/docs/core/verify-webhook-signatures")
def mux():
    return _t_v1("Mux-Signature", "v1", "mux-signing-secret",
                 '{"type":"video.asset.ready","object":{"type":"asset","id":"a1"},"id":"3a56ac3d-33da-4366-855b-f592d898409d","data":{}}',
                 {"id": "3a56ac3d-33da-4366-855b-f592d898409d", "topic": "video.asset.ready"})


@vector("persona", "Persona's sample (HMAC-SHA256 hex of `${t}.${body}`, header t=…,v1=…), reproduced",
        "https://docs.withpersona.com/docs/webhooks-best-practices#checking-signatures")
def persona():
    return _t_v1("Persona-Signature", "v1", "wbhsec_persona",
                 '{"data":{"type":"event","id":"evt_p1","attributes":{"name":"inquiry.completed","payload":{}}}}',
                 {"id": "evt_p1", "topic": "inquiry.completed"})


# --- SDKs ---------------------------------------------------------------------------------


@vector("razorpay", "HMAC-SHA256 hex as documented; checked with razorpay 1.4.2 (PyPI) Utility.verify_webhook_signature", "https://razorpay.com/docs/webhooks/validate-test/")
def razorpay_():
    import razorpay

    secret, body = "razorpay-webhook-secret", '{"entity":"event","event":"payment.captured","payload":{"payment":{"entity":{"id":"pay_1"}}}}'
    signature = hmac_hex(secret.encode(), body.encode())
    assert razorpay.Client(auth=("k", "s")).utility.verify_webhook_signature(body, signature, secret)
    return [case({"secret": secret}, [("X-Razorpay-Signature", signature), ("x-razorpay-event-id", "EvR1")], body,
                 expect={"id": "EvR1", "topic": "payment.captured"})]


@vector("gocardless", "HMAC-SHA256 hex as documented; checked with gocardless_pro 3.22.0 (PyPI) webhooks.parse", "https://developer.gocardless.com/getting-started/staying-up-to-date-with-webhooks#staying_up-to-date_with_webhooks")
def gocardless():
    from gocardless_pro import webhooks

    secret, body = "gocardless-webhook-secret", '{"events":[{"id":"EV123","action":"confirmed","resource_type":"payments"}]}'
    signature = hmac_hex(secret.encode(), body.encode())
    webhooks.parse(body, secret, signature)
    return [case({"secret": secret}, [("Webhook-Signature", signature)], body, expect={"topic": "payments"})]


@vector("paddle", "paddle-python-sdk 1.2.0 (PyPI) PaddleSignature.calculate_hmac; checked with Verifier.verify",
        "https://developer.paddle.com/webhooks/signature-verification")
def paddle():
    from paddle_billing.Notifications import Secret, Verifier
    from paddle_billing.Notifications.PaddleSignature import PaddleSignature

    secret = "pdl_ntfset_01_secret"
    body = '{"event_id":"evt_01h","event_type":"transaction.completed","occurred_at":"2026-01-01T00:00:00Z","data":{}}'
    h1 = PaddleSignature.calculate_hmac(secret, f"{NOW}:{body}".encode()).hexdigest()
    header = f"ts={NOW};h1={h1}"

    class Req:
        headers = {"Paddle-Signature": header}
        data = body.encode()

    assert Verifier().verify(Req(), Secret(secret), verify_time_drift=False)
    return [case({"secret": secret}, [("Paddle-Signature", header)], body, timestamped=True,
                 expect={"id": "evt_01h", "topic": "transaction.completed"})]


@vector("workos", "t=<ms>, v1=HMAC-SHA256 hex of {t}.{body} as documented; checked with workos 5.8.0 (PyPI) Webhooks.verify_header",
        "https://workos.com/docs/events/data-syncing/webhooks/3-process-the-events/b-validate-the-requests-manually")
def workos_():
    import time as clock
    from workos.webhooks import Webhooks

    secret = "workos-webhook-secret"
    body = '{"id":"event_01","event":"user.created","data":{},"created_at":"2026-01-01T00:00:00Z"}'
    t = str(NOW * 1000)
    header = f"t={t}, v1={hmac_hex(secret.encode(), f'{t}.{body}'.encode())}"
    real_time = clock.time
    clock.time = lambda: float(NOW)
    try:
        Webhooks.verify_header(None, event_body=body.encode(), event_signature=header, secret=secret)
    finally:
        clock.time = real_time
    return [case({"secret": secret}, [("WorkOS-Signature", header)], body, timestamped=True,
                 expect={"id": "event_01", "topic": "user.created"})]


@vector("square", "base64 HMAC-SHA256 of URL + body as documented; checked with squareup 38.1.0.20240919 (PyPI) is_valid_webhook_event_signature",
        "https://developer.squareup.com/docs/webhooks/step3validate")
def square():
    from square.utilities.webhooks_helper import is_valid_webhook_event_signature

    secret, base, path = "square-signature-key", "https://hooks.example.com", "/webhook"
    body = '{"merchant_id":"M1","type":"payment.updated","event_id":"6a8f5f28","data":{}}'
    signature = hmac_b64(secret.encode(), (base + path + body).encode())
    assert is_valid_webhook_event_signature(body, signature, secret, base + path)
    return [case({"secret": secret, "url": base}, [("x-square-hmacsha256-signature", signature)], body, path=path,
                 expect={"id": "6a8f5f28", "topic": "payment.updated"})]


@vector("coinbase-commerce", "HMAC-SHA256 hex as documented; checked with coinbase-commerce 1.0.1 (PyPI) WebhookSignature.verify_sig_header",
        "https://docs.cdp.coinbase.com/commerce-onchain/docs/webhooks-security")
def coinbase_commerce():
    from coinbase_commerce.webhook import WebhookSignature

    secret = "coinbase-shared-secret"
    body = '{"id":1,"scheduled_for":"2026-01-01T00:00:00Z","event":{"id":"24934862-d980-46cb-9402-43c81b0cdba6","type":"charge:confirmed","data":{}}}'
    signature = hmac_hex(secret.encode(), body.encode())
    WebhookSignature.verify_sig_header(body, signature, secret)
    return [case({"secret": secret}, [("X-CC-Webhook-Signature", signature)], body,
                 expect={"id": "24934862-d980-46cb-9402-43c81b0cdba6", "topic": "charge:confirmed"})]


def _svix_like(secret, body, msg, *, svix):
    at = dt.datetime.fromtimestamp(NOW, dt.timezone.utc)
    if svix:
        from svix.webhooks import Webhook
        prefix = "svix-"
    else:
        from standardwebhooks.webhooks import Webhook
        prefix = "webhook-"
    signature = Webhook(secret).sign(msg, at, body)
    return [(f"{prefix}id", msg), (f"{prefix}timestamp", str(NOW)), (f"{prefix}signature", signature)]


for _preset, _svix, _made_by, _ref, _body, _expect in [
    ("resend", True, "svix 1.42.0 (PyPI) Webhook.sign (Resend's webhooks are signed by Svix)",
     "https://resend.com/docs/dashboard/webhooks/verify-webhooks-requests",
     '{"type":"email.delivered","created_at":"2026-01-01T00:00:00Z","data":{"email_id":"e-1"}}', "email.delivered"),
    ("clerk", True, "svix 1.42.0 (PyPI) Webhook.sign (Clerk's webhooks are signed by Svix)",
     "https://clerk.com/docs/webhooks/sync-data#verify-the-webhook",
     '{"type":"user.created","object":"event","data":{"id":"user_1"}}', "user.created"),
    ("openai", False, "standardwebhooks 1.0.0 (PyPI) Webhook.sign (OpenAI documents its webhooks as Standard Webhooks)",
     "https://platform.openai.com/docs/guides/webhooks#verifying-webhook-signatures",
     '{"object":"event","id":"evt_o1","type":"response.completed","created_at":1767225600,"data":{"id":"resp_1"}}', "response.completed"),
    ("replicate", False, "standardwebhooks 1.0.0 (PyPI) Webhook.sign (Replicate documents the Standard Webhooks headers)",
     "https://replicate.com/docs/topics/webhooks/verify-webhook",
     '{"id":"pred_1","status":"succeeded","output":null}', "succeeded"),
]:
    def _make(p=_preset, svix=_svix, body=_body, topic=_expect):
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        msg = f"msg_{p}_1"
        return [case({"secret": secret}, _svix_like(secret, body, msg, svix=svix), body, timestamped=True,
                     expect={"id": msg, "topic": topic})]
    VECTORS[_preset] = (_made_by, _ref, _make)


# --- public-key schemes -------------------------------------------------------------------


def _ed25519(seed_byte):
    """A deterministic Ed25519 key (PyNaCl), so the vectors do not change between runs."""
    from nacl.signing import SigningKey
    return SigningKey(bytes([seed_byte]) * 32)


@vector("discord", "PyNaCl 1.6.2 SigningKey.sign over `{timestamp}{body}`; checked with discord-interactions 0.4.0 (PyPI) verify_key",
        "https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers")
def discord():
    from discord_interactions import verify_key
    key, other = _ed25519(7), _ed25519(8)
    public = key.verify_key.encode().hex()
    ts = str(NOW)

    def signed(body):
        sig = key.sign(ts.encode() + body.encode()).signature.hex()
        assert verify_key(body.encode(), sig, ts, public)
        return [("X-Signature-Ed25519", sig), ("X-Signature-Timestamp", ts)]

    body = '{"id":"1194221234567890001","application_id":"1194221234567890123","type":2,"token":"aW50","version":1,"data":{"id":"1","name":"ping","type":1}}'
    ping = '{"id":"1194221234567890002","application_id":"1194221234567890123","type":1,"token":"aW50","version":1}'
    params = {"public_key": public}
    return {
        "cases": [case(params, signed(body), body, timestamped=True,
                       wrong_params={"public_key": other.verify_key.encode().hex()},
                       expect={"id": "1194221234567890001", "topic": "ping"})],
        "handshakes": [handshake("PING", signed(ping), ping, 200, '{"type":1}')],
    }


@vector("telnyx", "PyNaCl 1.6.2 SigningKey.sign over `{timestamp}|{body}`; checked with telnyx 4.189.0 (PyPI) lib.webhook_verification.verify_webhook_signature",
        "https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks#webhook-signing")
def telnyx():
    import telnyx.lib.webhook_verification as tv
    key, other = _ed25519(9), _ed25519(10)
    public = base64.b64encode(key.verify_key.encode()).decode()
    ts = str(NOW)
    body = '{"data":{"event_type":"message.received","id":"b301ed3f-1490-491f-995f-6e64e69674d4","occurred_at":"2026-01-01T00:00:00.000+00:00","payload":{"text":"hello"},"record_type":"event"},"meta":{"attempt":1}}'
    sig = base64.b64encode(key.sign(f"{ts}|{body}".encode()).signature).decode()
    headers = {"telnyx-signature-ed25519": sig, "telnyx-timestamp": ts}
    real_time = tv.time.time
    tv.time.time = lambda: NOW
    try:
        tv.verify_webhook_signature(body, headers, public)
    finally:
        tv.time.time = real_time
    return [case({"public_key": public}, list(headers.items()), body, timestamped=True,
                 wrong_params={"public_key": base64.b64encode(other.verify_key.encode()).decode()},
                 expect={"id": "b301ed3f-1490-491f-995f-6e64e69674d4", "topic": "message.received"})]


@vector("sendgrid", "cryptography 45.0.7 ECDSA P-256/SHA-256 over `{timestamp}{body}`; checked with sendgrid 6.12.5 (PyPI) EventWebhook.verify_signature",
        "https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features")
def sendgrid():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from sendgrid.helpers.eventwebhook import EventWebhook

    def public_b64(key):
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    key = ec.derive_private_key(0x5E4D6A11, ec.SECP256R1())
    other = ec.derive_private_key(0x5E4D6A12, ec.SECP256R1())
    ts = str(NOW)
    body = '[{"email":"user@example.com","timestamp":1767225600,"event":"delivered","sg_event_id":"ZGVsaXZlcmVkLTAtMjQ","sg_message_id":"14c5d75ce93.dfd.64b469"}]'
    sig = base64.b64encode(key.sign((ts + body).encode(), ec.ECDSA(hashes.SHA256()))).decode()
    assert EventWebhook(public_b64(key)).verify_signature(body, sig, ts)
    return [case({"public_key": public_b64(key)},
                 [("X-Twilio-Email-Event-Webhook-Signature", sig), ("X-Twilio-Email-Event-Webhook-Timestamp", ts)],
                 body, wrong_params={"public_key": public_b64(other)},
                 expect={"id": "ZGVsaXZlcmVkLTAtMjQ", "topic": "delivered"})]


@vector("fusionauth", "PyJWT 2.10.1 jwt.encode (RS256) with `request_body_sha256` = base64 SHA-256 of the body, as FusionAuth documents; checked with jwt.decode",
        "https://fusionauth.io/docs/extend/events-and-webhooks/signing")
def fusionauth():
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def pems(key):
        return (key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode())

    key, other = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 2048)
    public, private = pems(key)
    body = '{"event":{"id":"e1b2c3d4-0000-4000-8000-000000000001","type":"user.create","createInstant":1767225600000,"tenantId":"30663132-6464-6665-3032-326466613934","user":{"email":"user@example.com"}}}'
    claim = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = jwt.encode({"request_body_sha256": claim}, private, algorithm="RS256")
    assert jwt.decode(token, public, algorithms=["RS256"])["request_body_sha256"] == claim
    return [case({"public_key": public}, [("X-FusionAuth-Signature-JWT", token)], body,
                 wrong_params={"public_key": pems(other)[0]},
                 expect={"id": "e1b2c3d4-0000-4000-8000-000000000001", "topic": "user.create"})]


@vector("netlify", "PyJWT 2.10.1 jwt.encode (HS256, iss=netlify, sha256 = hex SHA-256 of the body), as Netlify documents; checked with jwt.decode",
        "https://docs.netlify.com/site-deploys/deploy-notifications/#payload-signature")
def netlify():
    import jwt
    secret = "netlify-jws-secret"
    body = '{"id":"5f1e2d3c4b5a69788a9b0c1d","site_id":"3970e0fe-8564-4903-9a55-c5f8de49fb8b","state":"ready","name":"my-site","branch":"main"}'
    token = jwt.encode({"iss": "netlify", "sha256": hashlib.sha256(body.encode()).hexdigest()}, secret, algorithm="HS256")
    assert jwt.decode(token, secret, algorithms=["HS256"], issuer="netlify")
    return [case({"secret": secret}, [("X-Webhook-Signature", token)], body,
                 expect={"id": "5f1e2d3c4b5a69788a9b0c1d", "topic": "ready"})]


@vector("aws-sns", "cryptography 45.0.7 RSA PKCS#1 v1.5 (SHA1 for SignatureVersion 1, SHA256 for 2) over the canonical string AWS documents, with a self-signed certificate; checked with its public key",
        "https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html")
def aws_sns():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID

    def certificate(key):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        at = dt.datetime.fromtimestamp(NOW, dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(at - dt.timedelta(days=1)).not_valid_after(at + dt.timedelta(days=365))
                .sign(key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    key, other = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 2048)
    url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
    topic = "arn:aws:sns:us-east-1:123456789012:orders"
    signed_fields = {"Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
                     "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
                     "UnsubscribeConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]}

    def sign(message, version):
        canonical = "".join(f"{k}\n{message[k]}\n" for k in signed_fields[message["Type"]] if k in message)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = key.sign(canonical.encode(), padding.PKCS1v15(), digest)
        key.public_key().verify(signature, canonical.encode(), padding.PKCS1v15(), digest)
        return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode(),
                "SigningCertURL": url}

    def notification(version, message_id):
        return json.dumps(sign({"Type": "Notification", "MessageId": message_id, "TopicArn": topic,
                                "Subject": "order.created", "Message": '{"order":{"id":1,"total":"29.35"}}',
                                "Timestamp": "2026-01-01T00:00:00.000Z"}, version)
                          | {"UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + topic + ":1"},
                          separators=(",", ":"))

    certs = {url: certificate(key)}
    wrong = {url: certificate(other)}
    params = {"topic_arn": topic}
    cases = [case(params, [("x-amz-sns-message-type", "Notification")], notification(v, f"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf32{v}"),
                  name=f"SignatureVersion {v}", keys={"certificates": certs}, wrong_keys={"certificates": wrong},
                  expect={"id": f"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf32{v}", "topic": "order.created", "tenant": topic})
             for v in ("1", "2")]
    confirm = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + topic + "&Token=2336412f37fb687f5d51e6e2425c464de"
    subscription = json.dumps(sign({"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
                                    "Token": "2336412f37fb687f5d51e6e2425c464de", "TopicArn": topic,
                                    "Message": "You have chosen to subscribe to the topic " + topic + ".",
                                    "SubscribeURL": confirm, "Timestamp": "2026-01-01T00:00:00.000Z"}, "2"),
                              separators=(",", ":"))
    unsubscribe = json.dumps(sign({"Type": "UnsubscribeConfirmation", "MessageId": "47138184-6831-46b8-8f7c-afc488602d7d",
                                   "Token": "2336412f37fb687f5d51e6e2425c464de", "TopicArn": topic,
                                   "Message": "You have chosen to deactivate subscription " + topic + ":1.",
                                   "SubscribeURL": confirm, "Timestamp": "2026-01-01T00:00:00.000Z"}, "2"),
                             separators=(",", ":"))
    return {"cases": cases,
            "handshakes": [handshake("SubscriptionConfirmation", [("x-amz-sns-message-type", "SubscriptionConfirmation")],
                                     subscription, 200, "") | {"visit": confirm},
                           handshake("UnsubscribeConfirmation", [("x-amz-sns-message-type", "UnsubscribeConfirmation")],
                                     unsubscribe, 200, "")]}


def _node(script):
    """Runs `script` with Node.js and the npm SDKs pinned in package.json; returns stdout."""
    import os
    import subprocess
    env = dict(os.environ, NODE_PATH=os.environ["HOOKGATE_VECTORS_NODE_PATH"])
    return subprocess.run(["node", "-e", script], env=env, check=True, capture_output=True, text=True).stdout


@vector("sanity", "@sanity/webhook 4.0.4 (npm) encodeSignatureHeader; checked with isValidSignature",
        "https://www.sanity.io/docs/webhooks#verifying-webhook-requests")
def sanity():
    secret = "sanity-webhook-secret"
    body = '{"_id":"drafts.movie_1","_type":"movie","title":"Alien","_rev":"k3P5q8"}'
    header = _node(
        "const w = require('@sanity/webhook');"
        f"(async () => {{ const h = await w.encodeSignatureHeader({json.dumps(body)}, {NOW * 1000}, {json.dumps(secret)});"
        f" if (!(await w.isValidSignature({json.dumps(body)}, h, {json.dumps(secret)}))) throw new Error('invalid');"
        " process.stdout.write(h); })()")
    return [case({"secret": secret}, [("sanity-webhook-signature", header), ("sanity-operation", "update"),
                                      ("idempotency-key", "idem_4f2b8c1d")], body, timestamped=True,
                 expect={"id": "idem_4f2b8c1d", "topic": "update"})]


# --- more SDK-made or SDK-checked HMACs ---------------------------------------------------


@vector("hubspot", "hubspot-api-client 12.0.0 (PyPI) Signature.get_signature (v3); checked with Signature.is_valid",
        "https://developers.hubspot.com/docs/api/webhooks/validating-requests")
def hubspot():
    from hubspot.utils.signature import Signature
    secret, base, path, query = "hubspot-client-secret", "https://hooks.example.com", "/webhook", "portal=62515"
    body = '[{"eventId":1001,"subscriptionId":25,"portalId":62515,"appId":54321,"occurredAt":1767225600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeFlag":"CREATED"}]'
    ts = str(NOW * 1000)
    uri = f"{base}{path}?{query}"
    sig = Signature.get_signature(secret, body, "v3", uri, "POST", ts)
    real = Signature._is_timestamp_valid
    Signature._is_timestamp_valid = staticmethod(lambda t: t == ts)
    try:
        assert Signature.is_valid(sig, secret, body, uri, "POST", "v3", ts)
    finally:
        Signature._is_timestamp_valid = real
    return [case({"secret": secret, "url": base},
                 [("X-HubSpot-Signature-v3", sig), ("X-HubSpot-Request-Timestamp", ts)], body,
                 path=path, query=query, timestamped=True,
                 expect={"id": "1001", "topic": "contact.creation", "tenant": "62515"})]


@vector("adyen", "Adyen 16.0.0 (PyPI) util.generate_notification_sig; checked with util.is_valid_hmac_notification",
        "https://docs.adyen.com/development-resources/webhooks/verify-hmac-signatures/")
def adyen():
    from Adyen import util
    key = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
    item = {"amount": {"currency": "EUR", "value": 1130}, "eventCode": "AUTHORISATION",
            "eventDate": "2026-01-01T00:00:00+01:00", "merchantAccountCode": "TestMerchant",
            "merchantReference": "TestPayment-1407325143704", "paymentMethod": "visa",
            "pspReference": "7914073381342284", "reason": "1234:7777:12/2012", "success": "true"}
    item["additionalData"] = {"hmacSignature": util.generate_notification_sig(item, key).decode()}
    notification = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
    assert util.is_valid_hmac_notification(notification, key)
    body = json.dumps(notification, separators=(",", ":"))
    return [case({"secret": key}, [], body, body_signed=True,
                 expect={"topic": "AUTHORISATION", "tenant": "TestMerchant"})]


@vector("polar", "standardwebhooks-style signature keyed with the secret's bytes; checked with polar-sdk 1.0.2 (PyPI) webhooks._verify_signature",
        "https://polar.sh/docs/integrate/webhooks/delivery#verify-signature")
def polar():
    import polar.webhooks as pw
    secret = "polar_whs_9hW3cXzq0rY2sT5uV8wA1bC4dE7fG0hJ"
    body = '{"type":"order.paid","timestamp":"2026-01-01T00:00:00Z","data":{"id":"ord_1"}}'
    msg = "msg_polar_1"
    sig = "v1," + hmac_b64(secret.encode(), f"{msg}.{NOW}.{body}".encode())
    headers = {"webhook-id": msg, "webhook-timestamp": str(NOW), "webhook-signature": sig}
    real = pw.time.time
    pw.time.time = lambda: NOW
    try:
        pw._verify_signature(body, headers, secret)
    finally:
        pw.time.time = real
    return [case({"secret": secret}, list(headers.items()), body, timestamped=True,
                 expect={"id": msg, "topic": "order.paid"})]


@vector("supabase", "standardwebhooks 1.0.0 (PyPI) Webhook.sign with the secret after `v1,whsec_`, as Supabase's hook example strips it",
        "https://supabase.com/docs/guides/auth/auth-hooks?queryGroups=language&language=http#security-model")
def supabase():
    from standardwebhooks.webhooks import Webhook
    shown = "v1,whsec_dGhpcyBpcyBhIHN1cGFiYXNlIGhvb2sgc2VjcmV0"
    body = '{"user":{"id":"8ccaa7af-909f-44e7-84cb-67cdccb56be6","email":"user@example.com"},"email_data":{"token":"305805","email_action_type":"signup"}}'
    msg = "msg_supabase_1"
    at = dt.datetime.fromtimestamp(NOW, dt.timezone.utc)
    wh = Webhook(shown.replace("v1,whsec_", ""))
    sig = wh.sign(msg, at, body)
    return [case({"secret": shown}, [("webhook-id", msg), ("webhook-timestamp", str(NOW)), ("webhook-signature", sig)],
                 body, timestamped=True, expect={"id": msg})]


@vector("orb", "HMAC-SHA256 hex of `v1:{timestamp}:{body}` as documented; checked with orb-billing 4.90.0 (PyPI) Webhooks.verify_signature",
        "https://docs.withorb.com/integrations-and-exports/webhooks#webhook-verification")
def orb():
    from orb import Orb
    secret = "orb-webhook-secret"
    body = '{"id":"o2e3f4a5b6","created_at":"2026-01-01T00:00:00+00:00","type":"customer.created","properties":{}}'
    ts = "2026-01-01T00:00:00.000000"
    sig = "v1=" + hmac_hex(secret.encode(), f"v1:{ts}:{body}".encode())
    headers = {"X-Orb-Timestamp": ts, "X-Orb-Signature": sig}
    import orb.resources.webhooks.webhooks as ow
    real = ow.datetime

    class Frozen(real):
        @classmethod
        def now(cls, tz=None):
            return real.fromtimestamp(NOW, tz)

    ow.datetime = Frozen
    try:
        Orb(api_key="unused").webhooks.verify_signature(body, headers, secret=secret)
    finally:
        ow.datetime = real
    return [case({"secret": secret}, list(headers.items()), body, timestamped=True,
                 expect={"id": "o2e3f4a5b6", "topic": "customer.created"})]


@vector("elevenlabs", "HMAC-SHA256 hex of `{t}.{body}` as documented; checked with elevenlabs 2.78.0 (PyPI) webhooks construct_event",
        "https://elevenlabs.io/docs/product-guides/administration/webhooks")
def elevenlabs():
    import elevenlabs.webhooks_custom as ew
    secret = "wsec_elevenlabs"
    body = '{"type":"post_call_transcription","event_timestamp":1767225600,"data":{"agent_id":"agent_1","conversation_id":"conv_1","status":"done"}}'
    header = f"t={NOW},v0=" + hmac_hex(secret.encode(), f"{NOW}.{body}".encode())
    real = ew.time.time
    ew.time.time = lambda: NOW
    try:
        cls = [c for c in vars(ew).values() if isinstance(c, type) and hasattr(c, "construct_event")][0]
        cls.construct_event(cls.__new__(cls), body, header, secret)
    finally:
        ew.time.time = real
    return [case({"secret": secret}, [("ElevenLabs-Signature", header)], body, timestamped=True,
                 expect={"topic": "post_call_transcription"})]


# --- documented, reproduced ---------------------------------------------------------------


def _basic(preset, username, password, body, expect):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return [case({"username": username, "password": password}, [("Authorization", f"Basic {token}")], body,
                 body_signed=False, wrong_params={"username": username, "password": password + "x"},
                 expect=expect)]


@vector("chargebee", "HTTP Basic credentials (RFC 7617) as Chargebee's webhook settings send them, reproduced",
        "https://www.chargebee.com/docs/2.0/events_and_webhooks.html#basic-authentication")
def chargebee():
    return _basic("chargebee", "chargebee-hook", "cb-password-1",
                  '{"id":"ev_16BHbhF4s42tO2lK","occurred_at":1767225600,"object":"event","event_type":"subscription_created","content":{}}',
                  {"id": "ev_16BHbhF4s42tO2lK", "topic": "subscription_created"})


@vector("pipedrive", "HTTP Basic credentials (RFC 7617) as Pipedrive's webhook HTTP auth sends them, reproduced",
        "https://pipedrive.readme.io/docs/guide-for-webhooks-v2#http-basic-authentication")
def pipedrive():
    return _basic("pipedrive", "pipedrive-hook", "pd-password-1",
                  '{"data":{"id":1,"title":"Deal"},"previous":null,"meta":{"action":"create","entity":"deal","entity_id":"1","id":"8a7b6c5d","company_id":"123","timestamp":"2026-01-01T00:00:00Z","version":"2.0"}}',
                  {"topic": "deal", "tenant": "123"})


@vector("postmark", "HTTP Basic credentials (RFC 7617) from the webhook URL's user info, as Postmark documents, reproduced",
        "https://postmarkapp.com/support/article/1071-webhooks-security")
def postmark():
    return _basic("postmark", "postmark-hook", "pm-password-1",
                  '{"RecordType":"Delivery","ServerID":23,"MessageStream":"outbound","MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","Recipient":"user@example.com","DeliveredAt":"2026-01-01T00:00:00Z"}',
                  {"topic": "Delivery"})


@vector("mailgun", "Mailgun's sample (createHmac('sha256', signingKey).update(timestamp.concat(token)).digest('hex')), reproduced",
        "https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks")
def mailgun():
    key = "mailgun-signing-key"
    ts, token = str(NOW), "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
    signature = {"token": token, "timestamp": ts, "signature": hmac_hex(key.encode(), (ts + token).encode())}
    # The event data first: the signature covers only `timestamp` and `token`, so the
    # tampering test (which changes the middle of the body) changes unsigned content.
    event = {"id": "CPgfbmQMTCKtHW6uIWtuVe", "event": "delivered", "timestamp": NOW, "recipient": "user@example.com",
             "message": {"headers": {"message-id": "20260101000000.1.abcdef@example.com", "subject": "Welcome",
                                     "from": "Example <noreply@example.com>", "to": "user@example.com"}}}
    body = json.dumps({"event-data": event, "signature": signature}, separators=(",", ":"))
    return [case({"secret": key}, [], body, body_signed=False,
                 expect={"id": "CPgfbmQMTCKtHW6uIWtuVe", "topic": "delivered"})]


@vector("airtable", "Airtable's webhook notification (hmac-sha256= + hex HMAC-SHA256 of the body, keyed with the base64-decoded macSecretBase64), reproduced",
        "https://airtable.com/developers/web/api/webhooks-overview#webhook-notification-delivery")
def airtable():
    secret = base64.b64encode(b"airtable-mac-secret-bytes-000001").decode()
    body = '{"base":{"id":"appVbn6F4dxv5Qjhq"},"webhook":{"id":"achW1UfeJuLVdU0bK"},"timestamp":"2026-01-01T00:00:00.000Z"}'
    mac = "hmac-sha256=" + hmac_hex(base64.b64decode(secret), body.encode())
    return [case({"secret": secret}, [("X-Airtable-Content-MAC", mac)], body, expect={"tenant": "appVbn6F4dxv5Qjhq"})]


@vector("mandrill", "Mandrill's generateSignature (base64 HMAC-SHA1 of the URL + sorted POST key+value), reproduced",
        "https://mailchimp.com/developer/transactional/guides/track-respond-activity-webhooks/#authenticating-webhook-requests")
def mandrill():
    from urllib.parse import urlencode
    key, base, path = "mandrill-webhook-key", "https://hooks.example.com", "/webhook"
    params = {"mandrill_events": '[{"event":"send","_id":"exampleaaaaaaaaaaaaaaaaaaaaaaaaa","ts":1767225600}]'}
    signed = base + path + "".join(k + params[k] for k in sorted(params))
    sig = base64.b64encode(hmac.new(key.encode(), signed.encode(), hashlib.sha1).digest()).decode()
    return [case({"secret": key, "url": base}, [("Content-Type", "application/x-www-form-urlencoded"),
                                                ("X-Mandrill-Signature", sig)], urlencode(params), path=path)]


@vector("grafana", "Grafana's webhook notifier (hex HMAC-SHA256 of the body in X-Grafana-Alerting-Signature), reproduced",
        "https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/#hmac-signature")
def grafana():
    secret = "grafana-hmac-secret"
    body = '{"receiver":"hookgate","status":"firing","orgId":1,"alerts":[{"status":"firing","labels":{"alertname":"HighLatency"}}],"version":"1"}'
    return [case({"secret": secret}, [("X-Grafana-Alerting-Signature", hmac_hex(secret.encode(), body.encode()))], body,
                 expect={"topic": "firing"})]


@vector("zoom", "Zoom's sample (v0= + hex HMAC-SHA256 of `v0:{timestamp}:{body}`; encryptedToken = hex HMAC-SHA256 of plainToken), reproduced",
        "https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events")
def zoom():
    secret, ts = "zoom-secret-token", str(NOW)

    def signed(body):
        return [("x-zm-request-timestamp", ts), ("x-zm-signature", "v0=" + hmac_hex(secret.encode(), f"v0:{ts}:{body}".encode()))]

    body = '{"event":"meeting.started","event_ts":1767225600000,"payload":{"account_id":"AAAAAABBBB","object":{"id":"1234567890"}}}'
    plain = "qgg8vlvZRS6UdWpR1q3-xw"
    validation = json.dumps({"payload": {"plainToken": plain}, "event_ts": NOW * 1000, "event": "endpoint.url_validation"},
                            separators=(",", ":"))
    reply = json.dumps({"plainToken": plain, "encryptedToken": hmac_hex(secret.encode(), plain.encode())}, separators=(",", ":"))
    return {"cases": [case({"secret": secret}, signed(body), body, timestamped=True,
                           expect={"topic": "meeting.started", "tenant": "AAAAAABBBB"})],
            "handshakes": [handshake("endpoint.url_validation", signed(validation), validation, 200, reply)]}


@vector("twitch", "Twitch's sample (sha256= + hex HMAC-SHA256 of message id + timestamp + body), reproduced",
        "https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message")
def twitch():
    secret, ts = "twitch-eventsub-secret", "2026-01-01T00:00:00.123456789Z"

    def signed(msg, kind, body):
        sig = "sha256=" + hmac_hex(secret.encode(), (msg + ts + body).encode())
        return [("Twitch-Eventsub-Message-Id", msg), ("Twitch-Eventsub-Message-Timestamp", ts),
                ("Twitch-Eventsub-Message-Signature", sig), ("Twitch-Eventsub-Message-Type", kind),
                ("Twitch-Eventsub-Subscription-Type", "channel.follow")]

    body = '{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","type":"channel.follow","version":"2"},"event":{"user_id":"1337","broadcaster_user_id":"12826"}}'
    challenge = "pogchamp-kappa-360noscope-vohiyo"
    verification = json.dumps({"challenge": challenge, "subscription": {"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
                                                                       "status": "webhook_callback_verification_pending",
                                                                       "type": "channel.follow", "version": "2"}},
                              separators=(",", ":"))
    return {"cases": [case({"secret": secret}, signed("befa7b53-d79d-478f-86b9-120f112b044e", "notification", body), body,
                           timestamped=True, expect={"id": "befa7b53-d79d-478f-86b9-120f112b044e", "topic": "channel.follow"})],
            "handshakes": [handshake("webhook_callback_verification",
                                     signed("e76c6bd4-55c9-4987-8304-da1588d8988b", "webhook_callback_verification", verification),
                                     verification, 200, challenge, content_type="text/plain; charset=utf-8")]}


@vector("x", "X's CRC and signature samples (sha256= + base64 HMAC-SHA256 with the consumer secret), reproduced",
        "https://docs.x.com/x-api/webhooks/introduction#challenge-response-check-crc")
def x():
    secret = "x-consumer-secret"
    body = '{"for_user_id":"2244994945","tweet_create_events":[{"id_str":"1877777777777777777","text":"hello"}]}'
    token = "MTUxMTkzMzU1NzAwMjY0ODk2MA"
    reply = json.dumps({"response_token": "sha256=" + hmac_b64(secret.encode(), token.encode())}, separators=(",", ":"))
    return {"cases": [case({"secret": secret}, [("x-twitter-webhooks-signature", "sha256=" + hmac_b64(secret.encode(), body.encode()))],
                           body, expect={"tenant": "2244994945"})],
            "handshakes": [handshake("crc", [], "", 200, reply, method="GET", query=f"crc_token={token}&nonce=abc")]}


@vector("meta", "Meta's Graph API webhook samples (sha256= + hex HMAC-SHA256 with the app secret; hub.challenge echoed), reproduced",
        "https://developers.facebook.com/docs/graph-api/webhooks/getting-started#event-notifications")
def meta():
    secret, verify = "meta-app-secret", "meta-verify-token"
    body = '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{}}]}]}'
    return {"cases": [case({"secret": secret, "verify_token": verify},
                           [("X-Hub-Signature-256", "sha256=" + hmac_hex(secret.encode(), body.encode()))], body,
                           expect={"topic": "whatsapp_business_account", "tenant": "102290129340398"})],
            "handshakes": [handshake("hub.challenge", [], "", 200, "1158201444", method="GET",
                                     query=f"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={verify}",
                                     content_type="text/plain; charset=utf-8")]}


@vector("okta", "Okta's event hook samples (the configured Authorization value; verification answered with the challenge), reproduced",
        "https://developer.okta.com/docs/concepts/event-hooks/#one-time-verification-request")
def okta():
    secret = "okta-event-hook-authorization-value"
    body = '{"eventType":"com.okta.event_hook","eventTypeVersion":"1.0","eventId":"b5a188b9-5ece-4636-b041-482ffda96311","data":{"events":[]},"eventTime":"2026-01-01T00:00:00.000Z"}'
    challenge = "X1XaqA0cZ09k20yD3o1FD7ZL_8fXWuBkOLmc5i7r"
    return {"cases": [case({"secret": secret}, [("Authorization", secret)], body, body_signed=False,
                           expect={"id": "b5a188b9-5ece-4636-b041-482ffda96311", "topic": "com.okta.event_hook"})],
            "handshakes": [handshake("verification", [("Authorization", secret), ("X-Okta-Verification-Challenge", challenge)],
                                     "", 200, json.dumps({"verification": challenge}, separators=(",", ":")), method="GET")]}


@vector("xero", "Xero's webhook samples (base64 HMAC-SHA256 of the body with the webhook key; intent to receive), reproduced",
        "https://developer.xero.com/documentation/guides/webhooks/configuring-your-server/")
def xero():
    secret = "xero-webhook-key"

    def signed(body):
        return [("x-xero-signature", hmac_b64(secret.encode(), body.encode()))]

    body = '{"events":[{"resourceUrl":"https://api.xero.com/api.xro/2.0/Invoices/1","resourceId":"1","eventDateUtc":"2026-01-01T00:00:00.000","eventType":"UPDATE","eventCategory":"INVOICE","tenantId":"c2cc9b6e-9458-4c7d-93cc-f02b81b0594f","tenantType":"ORGANISATION"}],"firstEventSequence":1,"lastEventSequence":1,"entropy":"S0m3r4Nd0mt3xt"}'
    itr = '{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"QMHVKDNKGGJKOTFHRSPR"}'
    return {"cases": [case({"secret": secret}, signed(body), body,
                           expect={"topic": "INVOICE", "tenant": "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f"})],
            "handshakes": [handshake("intent to receive", signed(itr), itr, 200, "")]}


@vector("asana", "Asana's webhooks guide (X-Hook-Secret echoed in the handshake; X-Hook-Signature = hex HMAC-SHA256 of the body with that secret), reproduced",
        "https://developers.asana.com/docs/webhooks-guide#the-webhook-handshake")
def asana():
    secret = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"
    body = '{"events":[{"user":{"gid":"1201","resource_type":"user"},"created_at":"2026-01-01T00:00:00.000Z","action":"changed","resource":{"gid":"1202","resource_type":"task"},"parent":null}]}'
    return {"cases": [case({"secret_path": "/var/lib/hookgate/asana.secret", "secret": secret},
                           [("X-Hook-Signature", hmac_hex(secret.encode(), body.encode()))], body, expect={"topic": "changed"})],
            "handshakes": [handshake("X-Hook-Secret", [("X-Hook-Secret", secret)], "", 200, "",
                                     reply_headers=[("X-Hook-Secret", secret)])
                           | {"captured": ["/var/lib/hookgate/asana.secret", secret]}]}


@vector("dropbox", "Dropbox's webhook samples (hex HMAC-SHA256 of the body with the app secret; challenge echoed), reproduced",
        "https://www.dropbox.com/developers/reference/webhooks#documentation")
def dropbox():
    secret = "dropbox-app-secret"
    body = '{"list_folder":{"accounts":["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]},"delta":{"users":[12345678]}}'
    return {"cases": [case({"secret": secret}, [("X-Dropbox-Signature", hmac_hex(secret.encode(), body.encode()))], body)],
            "handshakes": [handshake("challenge", [], "", 200, "a3b2c1d0e9f8", method="GET", query="challenge=a3b2c1d0e9f8",
                                     content_type="text/plain")]}


@vector("trello", "Trello's sample (base64 HMAC-SHA1 of body + callbackURL with the app secret), reproduced",
        "https://developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/#webhook-signatures")
def trello():
    secret, base, path = "trello-app-secret", "https://hooks.example.com", "/webhook"
    body = '{"action":{"id":"5a1f7a1c1e1c7d0c5a1b2c3e","type":"updateCard","data":{}},"model":{"id":"5a1f7a1c1e1c7d0c5a1b2c3d"}}'
    sig = base64.b64encode(hmac.new(secret.encode(), (body + base + path).encode(), hashlib.sha1).digest()).decode()
    return {"cases": [case({"secret": secret, "url": base}, [("X-Trello-Webhook", sig)], body, path=path,
                           expect={"id": "5a1f7a1c1e1c7d0c5a1b2c3e", "topic": "updateCard", "tenant": "5a1f7a1c1e1c7d0c5a1b2c3d"})],
            "handshakes": [handshake("HEAD", [], "", 200, "", method="HEAD", path=path)]}


def handshake(name, headers, body, status, reply, *, method="POST", path="/webhook", query=None,
              content_type=None, reply_headers=()):
    return {"name": name, "method": method, "path": path, "query": query,
            "headers": [[k, v] for k, v in headers], "body": body, "now": NOW, "status": status,
            "reply": reply, "content_type": content_type or ("application/json" if reply else None),
            "reply_headers": [[k, v] for k, v in reply_headers]}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    for preset, (made_by, reference, make) in sorted(VECTORS.items()):
        if only and preset not in only:
            continue
        made = make()
        if isinstance(made, list):
            made = {"cases": made}
        document = {"preset": preset, "made_by": made_by, "reference": reference, **made}
        path = OUT / f"{preset}.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"{path.relative_to(OUT.parents[3])}: {len(document['cases'])} case(s), {made_by}")


if __name__ == "__main__":
    main()
