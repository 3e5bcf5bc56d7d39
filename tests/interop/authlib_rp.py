"""A relying party built on Authlib (`authlib.integrations.requests_client.OAuth2Session`,
with requests) that runs Keyward's protocol end to end and checks every answer.

Keyward's endpoints all come from its discovery document. ID tokens are checked the way
Authlib's own OpenID client does it: the signature against the keys at `jwks_uri` with the
algorithms discovery announces (joserfc, Authlib's JOSE layer), then Authlib's `CodeIDToken`
claim validation (iss, aud, exp, iat, nonce, azp, at_hash). Token errors are Authlib's
`OAuthError`; the HTTP status behind each token answer is read from Authlib's compliance
hooks. The person's part (signing in) is done by the Rust test: see protocol.py.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

import protocol
from protocol import check

TIMEOUT = 30  # seconds, for every HTTP request the relying party makes


class Flow:
    """One authorization request and what came of it."""

    def __init__(self, session: OAuth2Session, url: str, state: str, nonce: str, verifier: str):
        self.session, self.url, self.state, self.nonce, self.verifier = session, url, state, nonce, verifier
        self.callback: str | None = None
        self.token: dict | None = None


class AuthlibRp:
    def __init__(self, args):
        self.args = args
        self.meta: dict = {}
        self.keys: KeySet | None = None
        self.last_status: int | None = None  # HTTP status of the last token endpoint answer
        self.last_body: dict = {}  # and its JSON body, before Authlib's processing
        self.sub: str | None = None
        self.first: Flow | None = None
        self.offline: Flow | None = None
        self.live: Flow | None = None
        self.old_refresh_token: str | None = None
        self.new_refresh_token: str | None = None
        self.latest_id_token: str | None = None

    # --- helpers ---

    def _record(self, resp):
        self.last_status = resp.status_code
        try:
            self.last_body = resp.json()
        except ValueError:
            self.last_body = {}
        return resp

    def session(self, scope: str, redirect_uri: str | None = None) -> OAuth2Session:
        s = OAuth2Session(
            client_id=self.args.client_id,
            client_secret=self.args.client_secret,
            scope=scope,
            redirect_uri=redirect_uri or self.args.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",
            revocation_endpoint_auth_method="client_secret_basic",
        )
        s.register_compliance_hook("access_token_response", self._record)
        s.register_compliance_hook("refresh_token_response", self._record)
        return s

    def begin(self, scope: str = "openid email", redirect_uri: str | None = None, **extra) -> Flow:
        """Builds an authorization request with PKCE S256 and a nonce."""
        s = self.session(scope, redirect_uri)
        nonce, verifier = generate_token(32), generate_token(64)
        url, state = s.create_authorization_url(self.meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier, **extra)
        q = protocol.Answer("", url=url).query()
        check(q.get("code_challenge_method") == "S256" and len(q.get("code_challenge", "")) == 43, f"Authlib sent no S256 challenge: {url}")
        return Flow(s, url, state, nonce, verifier)

    def sign_in(self, flow: Flow) -> Flow:
        """Sends the browser to the authorization URL; redeems the code in the callback."""
        answer = protocol.authorize(flow.url)
        q = answer.query()
        check(answer.url.startswith(self.args.redirect_uri + "?"), f"not sent back to the app: {answer.url}")
        check("error" not in q, f"authorization failed: {q}")
        check(q.get("state") == flow.state, "the state comes back unchanged")
        check(q.get("iss") == self.args.issuer, f"RFC 9207 iss in the callback: {q.get('iss')!r}")
        flow.callback = answer.url
        flow.token = flow.session.fetch_token(
            self.meta["token_endpoint"], authorization_response=answer.url, state=flow.state, code_verifier=flow.verifier, timeout=TIMEOUT
        )
        check(self.last_status == 200, f"token endpoint answered {self.last_status}")
        self.latest_id_token = flow.token.get("id_token") or self.latest_id_token
        return flow

    def validate_id_token(self, id_token: str, nonce: str, access_token: str | None, client_id: str | None = None) -> CodeIDToken:
        """Authlib's ID token validation: signature with the JWKS, then the claims."""
        client_id = client_id or self.args.client_id
        token = jwt.decode(id_token, self.keys, algorithms=self.meta["id_token_signing_alg_values_supported"])
        options = {
            "iss": {"essential": True, "value": self.meta["issuer"]},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        params = {"nonce": nonce, "client_id": client_id, "access_token": access_token}
        claims = CodeIDToken(token.claims, token.header, options, params)
        claims.validate(leeway=30)
        check("nonce" in claims, "the ID token carries the request's nonce")
        return claims

    def token_error(self, call) -> tuple[int | None, str]:
        """Runs a token endpoint call that must fail; returns (HTTP status, OAuth error)."""
        self.last_status = None
        try:
            result = call()
        except OAuthError as e:
            return self.last_status, e.error
        raise protocol.StepFailed(f"the token endpoint accepted it: {result!r}")

    def userinfo(self, access_token: str) -> requests.Response:
        return requests.get(self.meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT)

    def refresh(self, flow: Flow, refresh_token: str) -> dict:
        return flow.session.refresh_token(self.meta["token_endpoint"], refresh_token=refresh_token, timeout=TIMEOUT)

    def endpoint(self, name: str) -> str:
        url = self.meta.get(name)
        check(bool(url), f"discovery has no {name}")
        return url

    # --- steps ---

    def discovery(self):
        url = self.args.issuer + "/.well-known/openid-configuration"
        resp = requests.get(url, timeout=TIMEOUT)
        check(resp.status_code == 200, f"discovery answered {resp.status_code}")
        self.meta = resp.json()
        check(self.meta.get("issuer") == self.args.issuer, f"issuer {self.meta.get('issuer')!r}")
        check("S256" in self.meta.get("code_challenge_methods_supported", []), "discovery announces PKCE S256")
        check(self.args.id_token_alg in self.meta.get("id_token_signing_alg_values_supported", []), "the client's ID token alg is announced")
        jwks = requests.get(self.meta["jwks_uri"], timeout=TIMEOUT)
        check(jwks.status_code == 200, f"jwks_uri answered {jwks.status_code}")
        self.keys = KeySet.import_key_set(jwks.json())

    def prompt_none_without_session(self):
        flow = self.begin(prompt="none")
        answer = protocol.authorize(flow.url)
        q = answer.query()
        check(answer.url.startswith(self.args.redirect_uri + "?"), f"the error goes back to the app: {answer.url}")
        check(q.get("error") == "login_required", f"error={q.get('error')!r}")
        check(q.get("state") == flow.state, "the state comes back with the error")
        check("code" not in q, "no code without a session")

    def code_flow(self):
        self.first = self.sign_in(self.begin())
        check(self.first.token.get("token_type", "").lower() == "bearer", f"token_type {self.first.token.get('token_type')!r}")
        check("id_token" in self.first.token and "access_token" in self.first.token, "ID and access tokens")

    def id_token(self):
        t = self.first.token
        claims = self.validate_id_token(t["id_token"], self.first.nonce, t["access_token"])
        header = json.loads(base64.urlsafe_b64decode(t["id_token"].split(".")[0] + "=="))
        check(header.get("alg") == self.args.id_token_alg, f"alg {header.get('alg')!r}")
        check(claims["aud"] in (self.args.client_id, [self.args.client_id]), f"aud {claims['aud']!r}")
        self.sub = claims["sub"]

    def id_token_forgeries_rejected(self):
        """A positive control: the same validation refuses a wrong nonce, another audience
        and an altered payload, so the passes above mean something."""
        t = self.first.token
        for what, call in [
            ("a wrong nonce", lambda: self.validate_id_token(t["id_token"], "not-the-nonce", t["access_token"])),
            ("another audience", lambda: self.validate_id_token(t["id_token"], self.first.nonce, t["access_token"], "someone-else")),
            ("an altered payload", lambda: self.validate_id_token(protocol.forge(t["id_token"]), self.first.nonce, t["access_token"])),
        ]:
            try:
                call()
            except Exception:
                continue
            raise protocol.StepFailed(f"an ID token with {what} was accepted")

    def userinfo_step(self):
        resp = self.userinfo(self.first.token["access_token"])
        check(resp.status_code == 200, f"userinfo answered {resp.status_code}: {resp.text}")
        check(resp.json().get("sub") == self.sub, "userinfo's sub is the ID token's")

    def code_reuse(self):
        f = self.first
        status, error = self.token_error(
            lambda: f.session.fetch_token(
                self.meta["token_endpoint"], authorization_response=f.callback, state=f.state, code_verifier=f.verifier, timeout=TIMEOUT
            )
        )
        check((status, error) == (400, "invalid_grant"), f"a second redemption got {status} {error}")
        resp = self.userinfo(f.token["access_token"])
        check(resp.status_code == 401, f"the access token from a replayed code still works ({resp.status_code})")

    def wrong_pkce_verifier(self):
        flow = self.begin()
        answer = protocol.authorize(flow.url)  # the session signs in without asking again
        check(answer.query().get("state") == flow.state and "code" in answer.query(), f"no code: {answer.url}")
        status, error = self.token_error(
            lambda: flow.session.fetch_token(
                self.meta["token_endpoint"], authorization_response=answer.url, state=flow.state, code_verifier=generate_token(64), timeout=TIMEOUT
            )
        )
        check((status, error) == (400, "invalid_grant"), f"a wrong verifier got {status} {error}")

    def unregistered_redirect_uri(self):
        parts = urlsplit(self.args.redirect_uri)
        flow = self.begin(redirect_uri=f"{parts.scheme}://{parts.netloc}/not-registered")
        answer = protocol.authorize(flow.url)
        check(answer.kind == "page", f"Keyward redirected to an unregistered URI: {answer.url}")
        check(answer.status == 400, f"the error page answered {answer.status}")

    def refresh_rotation(self):
        self.offline = self.sign_in(self.begin("openid email offline_access"))
        t = self.offline.token
        self.validate_id_token(t["id_token"], self.offline.nonce, t["access_token"])
        check(bool(t.get("refresh_token")), f"no refresh_token for offline_access: {sorted(t)}")
        self.old_refresh_token = t["refresh_token"]
        new = self.refresh(self.offline, self.old_refresh_token)
        check(self.last_status == 200, f"refresh answered {self.last_status}")
        raw = self.last_body.get("refresh_token")  # Authlib keeps the old one when none comes back
        check(bool(raw) and raw != self.old_refresh_token, "refreshing returns a new refresh token")
        check(new["access_token"] != t["access_token"], "and a new access token")
        resp = self.userinfo(new["access_token"])
        check(resp.status_code == 200 and resp.json().get("sub") == self.sub, f"the refreshed access token works ({resp.status_code})")
        self.new_refresh_token = raw

    def refresh_replay(self):
        status, error = self.token_error(lambda: self.refresh(self.offline, self.old_refresh_token))
        check((status, error) == (400, "invalid_grant"), f"replaying a rotated refresh token got {status} {error}")
        status, error = self.token_error(lambda: self.refresh(self.offline, self.new_refresh_token))
        check((status, error) == (400, "invalid_grant"), f"after a replay, the newest refresh token got {status} {error}")

    def introspection(self):
        endpoint = self.endpoint("introspection_endpoint")
        self.live = self.sign_in(self.begin("openid email offline_access"))
        resp = self.live.session.introspect_token(endpoint, token=self.live.token["access_token"], timeout=TIMEOUT)
        check(resp.status_code == 200, f"introspection answered {resp.status_code}: {resp.text}")
        body = resp.json()
        check(body.get("active") is True, f"a live access token is active: {body}")
        check(body.get("sub") == self.sub, f"sub {body.get('sub')!r}")
        check(body.get("client_id") == self.args.client_id, f"client_id {body.get('client_id')!r}")
        check(set(str(body.get("scope", "")).split()) == {"openid", "email", "offline_access"}, f"scope {body.get('scope')!r}")

    def revocation(self):
        revoke, introspect = self.endpoint("revocation_endpoint"), self.endpoint("introspection_endpoint")
        s, t = self.live.session, self.live.token
        resp = s.revoke_token(revoke, token=t["access_token"], token_type_hint="access_token", timeout=TIMEOUT)
        check(resp.status_code == 200, f"revoking the access token answered {resp.status_code}: {resp.text}")
        after = s.introspect_token(introspect, token=t["access_token"], timeout=TIMEOUT)
        check(after.status_code == 200 and after.json() == {"active": False}, f"after revocation: {after.status_code} {after.text}")
        resp = self.userinfo(t["access_token"])
        check(resp.status_code == 401, f"userinfo still accepts the revoked access token ({resp.status_code})")
        resp = s.revoke_token(revoke, token=t["refresh_token"], token_type_hint="refresh_token", timeout=TIMEOUT)
        check(resp.status_code == 200, f"revoking the refresh token answered {resp.status_code}: {resp.text}")
        status, error = self.token_error(lambda: self.refresh(self.live, t["refresh_token"]))
        check((status, error) == (400, "invalid_grant"), f"a revoked refresh token got {status} {error}")
        resp = s.revoke_token(revoke, token="not-a-token-" + generate_token(20), timeout=TIMEOUT)
        check(resp.status_code == 200, f"RFC 7009 2.2: an unknown token is answered 200, got {resp.status_code}")

    def logout(self):
        state = generate_token(20)
        url = add_params_to_uri(
            self.endpoint("end_session_endpoint"),
            {"id_token_hint": self.latest_id_token, "post_logout_redirect_uri": self.args.post_logout_redirect_uri, "state": state},
        )
        answer = protocol.logout(url)
        protocol.check_logged_out(answer, self.args.post_logout_redirect_uri, state)

    def prompt_none_after_logout(self):
        self.prompt_none_without_session()


def main():
    protocol.run_rp(AuthlibRp(protocol.parse_args()))


if __name__ == "__main__":
    main()
