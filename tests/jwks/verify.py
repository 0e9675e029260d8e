"""Verifies a latchkey access token the way another service would, with PyJWT alone: the keys
come from the JWKS (PyJWKClient), the algorithm is pinned, issuer and audience are required.
Then it checks that PyJWT refuses the same token once expired (its clock moved past `exp` with
freezegun) and refuses altered copies of it.

usage: verify.py BASE_URL TOKEN ALG [ISSUER] [AUDIENCE]
Prints one line per check; exits 1 if any failed.
"""

import base64
import datetime
import json
import sys

import jwt
from freezegun import freeze_time

base, token, alg = sys.argv[1], sys.argv[2], sys.argv[3]
issuer = sys.argv[4] if len(sys.argv) > 4 else "latchkey"
audience = sys.argv[5] if len(sys.argv) > 5 else "latchkey"
results = []


def check(what, ok, detail=""):
    results.append(ok)
    print(f"  {'ok  ' if ok else 'FAIL'} {what}{f' ({detail})' if detail else ''}")


def decode(tok, key):
    return jwt.decode(
        tok,
        key,
        algorithms=[alg],
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )


def refused(what, tok, key, error):
    try:
        decode(tok, key)
    except error as e:
        check(what, True, f"{type(e).__name__}: {e}")
    except Exception as e:  # refused, but not for the expected reason
        check(what, False, f"refused with {type(e).__name__}: {e}")
    else:
        check(what, False, "accepted")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


print(f"PyJWT {jwt.__version__}: {alg} token from {base}")
client = jwt.PyJWKClient(f"{base}/.well-known/jwks.json", cache_keys=True)
header = jwt.get_unverified_header(token)
check(f"the token's header names {alg} and a kid", header.get("alg") == alg and "kid" in header,
      json.dumps(header))
signing_key = client.get_signing_key_from_jwt(token)
check("PyJWKClient found the token's kid in the JWKS", signing_key.key_id == header.get("kid"),
      signing_key.key_id)
check(f"the JWK says alg {alg}", signing_key.algorithm_name == alg, signing_key.algorithm_name)
jwks = client.fetch_data()
check("the JWKS holds no private or secret parts",
      all(not ({"d", "k", "p", "q"} & set(k)) for k in jwks["keys"]),
      ", ".join(sorted({p for k in jwks["keys"] for p in k})))

try:
    claims = decode(token, signing_key.key)
    check("the fresh token verifies (signature, alg, iss, aud, exp, nbf)", True,
          f"sub={claims['sub']}, exp in {claims['exp'] - claims['iat']} s")
except Exception as e:
    claims = None
    check("the fresh token verifies (signature, alg, iss, aud, exp, nbf)", False,
          f"{type(e).__name__}: {e}")

if claims:
    # Past exp by more than any leeway: PyJWT's clock, not latchkey's, decides here.
    after_exp = datetime.datetime.fromtimestamp(claims["exp"] + 120, tz=datetime.timezone.utc)
    with freeze_time(after_exp):
        refused("the same token 2 minutes after exp is refused", token, signing_key.key,
                jwt.ExpiredSignatureError)

h, p, s = token.split(".")
sig = bytearray(unb64(s))
sig[len(sig) // 2] ^= 0x01
refused("a copy with one signature bit flipped is refused", f"{h}.{p}.{b64(bytes(sig))}",
        signing_key.key, jwt.InvalidSignatureError)
payload = json.loads(unb64(p))
payload["sub"] = "someone-else"
refused("a copy with an altered sub (signature kept) is refused",
        f"{h}.{b64(json.dumps(payload).encode())}.{s}", signing_key.key, jwt.InvalidSignatureError)
try:
    jwt.decode(token, signing_key.key, algorithms=[alg], issuer=issuer, audience="another-service")
    check("the token is refused for another audience", False, "accepted")
except jwt.InvalidAudienceError as e:
    check("the token is refused for another audience", True, f"{type(e).__name__}: {e}")

passed, failed = results.count(True), results.count(False)
print(f"  {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
