"""The one redactor: a secret in any position of a URL, a header or free text never comes out."""
from __future__ import annotations

import base64
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from perfkit.redact import MASK, redact_headers, redact_text, redact_url, secret_name, split_userinfo

SECRET_PARAMS = ("token", "key", "api_key", "apikey", "access_token", "auth", "signature", "sig",
                 "password", "secret", "X-Amz-Signature", "subscription-key")
SECRET_HEADERS = ("Authorization", "Proxy-Authorization", "X-Api-Key", "api-key", "Ocp-Apim-Subscription-Key",
                  "X-Auth", "X-Auth-Token", "Cookie", "X-Secret")
PLAIN_HEADERS = ("Accept", "Content-Type", "User-Agent", "X-Request-Id", "Keep-Alive")

# A secret is a token-like string that cannot occur in the URL's other parts by accident.
secrets = st.text(alphabet=string.ascii_letters + string.digits + "-_.~", min_size=10, max_size=40) \
    .map(lambda s: "S3CR" + s)
case = st.sampled_from([str.lower, str.upper, str.title, lambda s: s])


@settings(max_examples=200, deadline=None)
@given(secret=secrets, param=st.sampled_from(SECRET_PARAMS), casing=case,
       position=st.sampled_from(["user", "password", "bare", "param", "param-middle"]),
       path=st.sampled_from(["/", "/v1/infer", "/v2/models/m/infer"]))
def test_no_secret_survives_redact_url_in_any_position(secret, param, casing, position, path):
    netloc, query = "127.0.0.1:8000", "n=1"
    if position == "user":
        netloc = f"{secret}:pw@{netloc}"
    elif position == "password":
        netloc = f"alice:{secret}@{netloc}"
    elif position == "bare":
        netloc = f"{secret}@{netloc}"
    elif position == "param":
        query = f"{casing(param)}={secret}"
    else:
        query = f"a=1&{casing(param)}={secret}&b=2"
    url = f"http://{netloc}{path}?{query}"
    shown = redact_url(url)
    assert secret not in shown
    assert MASK in shown
    assert shown.startswith("http://") and "127.0.0.1:8000" + path in shown  # still readable
    assert secret not in redact_text(f"cannot scrape {url} (HTTP 401)")


@settings(max_examples=100, deadline=None)
@given(secret=secrets, name=st.sampled_from(SECRET_HEADERS), casing=case)
def test_no_secret_survives_redact_headers(secret, name, casing):
    headers = [("Accept", "application/json"), (casing(name), secret)]
    shown = redact_headers(headers)
    assert secret not in repr(shown)
    assert shown[0] == ["Accept", "application/json"]


def test_plain_headers_and_params_are_kept():
    assert not any(secret_name(h) for h in PLAIN_HEADERS)
    assert redact_url("http://h:1/x?model=digits&n=2") == "http://h:1/x?model=digits&n=2"


def test_free_text_with_authorization_and_params():
    text = "sent Authorization: Bearer S3CRabc to http://u:S3CRpw@h/x?api_key=S3CRkey; apikey=S3CRzz"
    assert "S3CR" not in redact_text(text)


def test_userinfo_becomes_basic_auth_and_leaves_the_url():
    bare, header = split_userinfo("http://alice:p%40ss@127.0.0.1:8000/x?y=1")
    assert bare == "http://127.0.0.1:8000/x?y=1"
    assert base64.b64decode(header["Authorization"].split()[1]) == b"alice:p@ss"
    bare, header = split_userinfo("http://ghp_TOKEN@h/x")
    assert base64.b64decode(header["Authorization"].split()[1]) == b"ghp_TOKEN:"
    assert split_userinfo("http://h/x") == ("http://h/x", {})
