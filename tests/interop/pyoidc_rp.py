"""A relying party built on pyoidc (the `oic` package) that runs Keyward's protocol end to end
and checks every answer.

`oic.oic.Client` reads Keyward's discovery document (`provider_config`, which also loads the
keys at `jwks_uri`), is registered statically (`store_registration_info`, as an app whose
client was configured by hand), and makes PKCE S256 requests (`add_code_challenge`). pyoidc
verifies each ID token in a token response by itself (signature with the provider's keys,
iss, aud, azp, exp, iat) and checks its nonce against the request's; the flow also calls
`verify_id_token` with the request for the nonce. Revocation and introspection use pyoidc's
`oic.extension.client.Client` (RFC 7009, RFC 7662), set up from the same discovery document.
The HTTP status behind each answer is read from the requests session pyoidc is given. The
person's part (signing in) is done by the Rust test: see protocol.py.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from oic import rndstr
from oic.extension.client import Client as ExtensionClient
from oic.oauth2.message import ErrorResponse
from oic.oic import Client
from oic.oic.message import AccessTokenResponse, AuthorizationResponse, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from oic.utils.settings import OauthClientSettings, OicClientSettings

import protocol
from protocol import check

TIMEOUT = 30  # seconds, for every HTTP request the relying party makes


class Flow:
    """One authorization request and what came of it."""

    def __init__(self, url: str, state: str, nonce: str, verifier: str):
        self.url, self.state, self.nonce, self.verifier = url, state, nonce, verifier
        self.code: str | None = None
        self.token: AccessTokenResponse | None = None


class PyoidcRp:
    def __init__(self, args):
        self.args = args
        self.http = requests.Session()
        self.http.hooks["response"].append(self._record)
        self.last_status: int | None = None  # HTTP status of the last answer pyoidc received
        self.client: Client | None = None
        self.ext: ExtensionClient | None = None
        self.sub: str | None = None
        self.first: Flow | None = None
        self.offline: Flow | None = None
        self.live: Flow | None = None
        self.old_refresh_token = None
        self.new_refresh_token = None
        self.latest_id_token: str | None = None

    # --- helpers ---

    def _record(self, resp, *args, **kwargs):
        self.last_status = resp.status_code

    def registration(self) -> RegistrationResponse:
        return RegistrationResponse(
            client_id=self.args.client_id,
            client_secret=self.args.client_secret,
            redirect_uris=[self.args.redirect_uri],
            post_logout_redirect_uris=[self.args.post_logout_redirect_uri],
            token_endpoint_auth_method="client_secret_basic",
            id_token_signed_response_alg=self.args.id_token_alg,
        )

    def begin(self, scope: str = "openid email", redirect_uri: str | None = None, **extra) -> Flow:
        """Builds an authorization request with PKCE S256 and a nonce."""
        pkce, verifier = self.client.add_code_challenge()
        check(pkce["code_challenge_method"] == "S256", f"pyoidc's PKCE method {pkce}")
        state, nonce = rndstr(32), rndstr(32)
        request_args = {
            "response_type": "code",
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "redirect_uri": redirect_uri or self.args.redirect_uri,
            **pkce,
            **extra,
        }
        url, _, _, _ = self.client.authorization_request_info(request_args=request_args)
        check(self.client.state2nonce.get(state) == nonce, "pyoidc remembers the nonce to check it")
        return Flow(url, state, nonce, verifier)

    def callback(self, flow: Flow, url: str) -> AuthorizationResponse:
        check(url.startswith(self.args.redirect_uri + "?"), f"not sent back to the app: {url}")
        resp = self.client.parse_response(AuthorizationResponse, info=url, sformat="urlencoded")
        check(isinstance(resp, AuthorizationResponse), f"authorization failed: {resp.to_dict()}")
        check(resp["state"] == flow.state, "the state comes back unchanged")
        check(resp.get("iss") == self.args.issuer, f"RFC 9207 iss in the callback: {resp.get('iss')!r}")
        return resp

    def redeem(self, flow: Flow, code: str, verifier: str):
        return self.client.do_access_token_request(
            state=flow.state,
            request_args={"code": code, "code_verifier": verifier, "redirect_uri": self.args.redirect_uri},
            authn_method="client_secret_basic",
        )

    def sign_in(self, flow: Flow) -> Flow:
        """Sends the browser to the authorization URL; redeems the code in the callback."""
        answer = protocol.authorize(flow.url)
        check(answer.kind == "CALLBACK", f"Keyward answered with a page ({answer.status})")
        flow.code = self.callback(flow, answer.url)["code"]
        token = self.redeem(flow, flow.code, flow.verifier)
        check(self.last_status == 200, f"token endpoint answered {self.last_status}: {token.to_dict()}")
        check(isinstance(token, AccessTokenResponse), f"no token response: {token.to_dict()}")
        # pyoidc verified the ID token while parsing; this checks it against the request too.
        self.client.verify_id_token(token["id_token"], {"nonce": flow.nonce, "response_type": "code"})
        flow.token = token
        self.latest_id_token = token["id_token_jwt"]
        return flow

    def token_error(self, response) -> tuple[int | None, str | None]:
        """The (HTTP status, OAuth error) of an answer that must be an error."""
        if not isinstance(response, ErrorResponse):
            raise protocol.StepFailed(f"the token endpoint accepted it: {response.to_dict()}")
        return self.last_status, response.get("error")

    def refresh(self, flow: Flow, token):
        """pyoidc's refresh, with the given token (a `Token` of the flow's grant)."""
        self.last_status = None
        return self.client.do_access_token_refresh(state=flow.state, token=token, authn_method="client_secret_basic")

    def userinfo(self, access_token: str):
        """pyoidc's userinfo request; an error answer is returned (or raised) by pyoidc, so
        callers check `last_status` first."""
        self.last_status = None
        try:
            return self.client.do_user_info_request(method="GET", token=access_token)
        except Exception as e:  # pyoidc raises on an error answer without a JSON body
            return e

    def endpoint(self, name: str) -> str:
        url = self.client.provider_info.get(name)
        check(bool(url), f"discovery has no {name}")
        return url

    # --- steps ---

    def discovery(self):
        self.client = Client(
            client_authn_method=CLIENT_AUTHN_METHOD, settings=OicClientSettings(requests_session=self.http, timeout=TIMEOUT)
        )
        info = self.client.provider_config(self.args.issuer)
        check(info["issuer"] == self.args.issuer, f"issuer {info['issuer']!r}")
        check("S256" in info.get("code_challenge_methods_supported", []), "discovery announces PKCE S256")
        check(self.args.id_token_alg in info["id_token_signing_alg_values_supported"], "the client's ID token alg is announced")
        check(len(self.client.keyjar.get_issuer_keys(self.args.issuer)) > 0, "pyoidc loaded Keyward's keys from jwks_uri")
        self.client.store_registration_info(self.registration())
        self.client.redirect_uris = [self.args.redirect_uri]

    def prompt_none_without_session(self):
        flow = self.begin(prompt="none")
        answer = protocol.authorize(flow.url)
        check(answer.kind == "CALLBACK", f"Keyward answered with a page ({answer.status})")
        check(answer.url.startswith(self.args.redirect_uri + "?"), f"the error goes back to the app: {answer.url}")
        resp = self.client.parse_response(AuthorizationResponse, info=answer.url, sformat="urlencoded")
        check(isinstance(resp, ErrorResponse), f"an error response: {resp.to_dict()}")
        check(resp["error"] == "login_required", f"error={resp['error']!r}")
        check(resp.get("state") == flow.state, "the state comes back with the error")

    def code_flow(self):
        self.first = self.sign_in(self.begin())
        check(self.first.token["token_type"].lower() == "bearer", f"token_type {self.first.token['token_type']!r}")

    def id_token(self):
        idt = self.first.token["id_token"]  # pyoidc's verified IdToken
        check(idt.jws_header["alg"] == self.args.id_token_alg, f"alg {idt.jws_header['alg']!r}")
        check(idt["iss"] == self.args.issuer and self.args.client_id in idt["aud"], f"iss/aud {idt['iss']!r} {idt['aud']!r}")
        check(idt["nonce"] == self.first.nonce, "the nonce is the request's")
        self.sub = idt["sub"]

    def id_token_forgeries_rejected(self):
        """A positive control: the same verification refuses a wrong nonce, another audience
        and an altered payload, so the passes above mean something."""
        t = self.first.token
        jwt = t["id_token_jwt"]

        def verify(id_token_jwt: str, client_id: str):
            AccessTokenResponse(access_token=t["access_token"], token_type="Bearer", id_token=id_token_jwt).verify(
                keyjar=self.client.keyjar, iss=self.args.issuer, client_id=client_id
            )

        for what, call in [
            ("a wrong nonce", lambda: self.client.verify_id_token(t["id_token"], {"nonce": "not-the-nonce"})),
            ("another audience", lambda: verify(jwt, "someone-else")),
            ("an altered payload", lambda: verify(protocol.forge(jwt), self.args.client_id)),
        ]:
            try:
                call()
            except Exception:
                continue
            raise protocol.StepFailed(f"an ID token with {what} was accepted")
        verify(jwt, self.args.client_id)  # and the untouched token still passes

    def userinfo_step(self):
        info = self.userinfo(self.first.token["access_token"])
        check(self.last_status == 200, f"userinfo answered {self.last_status}: {info!r}")
        check(info["sub"] == self.sub, "userinfo's sub is the ID token's")

    def code_reuse(self):
        status, error = self.token_error(self.redeem(self.first, self.first.code, self.first.verifier))
        check((status, error) == (400, "invalid_grant"), f"a second redemption got {status} {error}")
        info = self.userinfo(self.first.token["access_token"])
        check(self.last_status == 401, f"the access token from a replayed code still works ({self.last_status}: {info!r})")

    def wrong_pkce_verifier(self):
        flow = self.begin()
        answer = protocol.authorize(flow.url)  # the session signs in without asking again
        check(answer.kind == "CALLBACK", f"Keyward answered with a page ({answer.status})")
        code = self.callback(flow, answer.url)["code"]
        _, other_verifier = self.client.add_code_challenge()
        status, error = self.token_error(self.redeem(flow, code, other_verifier))
        check((status, error) == (400, "invalid_grant"), f"a wrong verifier got {status} {error}")

    def unregistered_redirect_uri(self):
        parts = urlsplit(self.args.redirect_uri)
        flow = self.begin(redirect_uri=f"{parts.scheme}://{parts.netloc}/not-registered")
        answer = protocol.authorize(flow.url)
        check(answer.kind == "page", f"Keyward redirected to an unregistered URI: {answer.url}")
        check(answer.status == 400, f"the error page answered {answer.status}")

    def refresh_rotation(self):
        self.offline = self.sign_in(self.begin("openid email offline_access"))
        check(bool(self.offline.token.get("refresh_token")), f"no refresh_token for offline_access: {sorted(self.offline.token.keys())}")
        self.old_refresh_token = self.client.get_token(state=self.offline.state)
        check(self.old_refresh_token.refresh_token == self.offline.token["refresh_token"], "pyoidc's grant holds the refresh token")
        new = self.refresh(self.offline, self.old_refresh_token)
        check(self.last_status == 200 and isinstance(new, AccessTokenResponse), f"refresh answered {self.last_status}: {new.to_dict()}")
        check(bool(new.get("refresh_token")) and new["refresh_token"] != self.old_refresh_token.refresh_token, "a new refresh token")
        check(new["access_token"] != self.offline.token["access_token"], "and a new access token")
        info = self.userinfo(new["access_token"])
        check(self.last_status == 200 and info["sub"] == self.sub, f"the refreshed access token works ({self.last_status})")
        self.new_refresh_token = self.client.get_token(state=self.offline.state)
        check(self.new_refresh_token.refresh_token == new["refresh_token"], "pyoidc's grant now holds the new refresh token")

    def refresh_replay(self):
        status, error = self.token_error(self.refresh(self.offline, self.old_refresh_token))
        check((status, error) == (400, "invalid_grant"), f"replaying a rotated refresh token got {status} {error}")
        status, error = self.token_error(self.refresh(self.offline, self.new_refresh_token))
        check((status, error) == (400, "invalid_grant"), f"after a replay, the newest refresh token got {status} {error}")

    def extension_client(self) -> ExtensionClient:
        """pyoidc's OAuth extension client (revocation, introspection) for the same registration."""
        if self.ext is None:
            self.endpoint("introspection_endpoint")
            self.ext = ExtensionClient(
                client_authn_method=CLIENT_AUTHN_METHOD, settings=OauthClientSettings(requests_session=self.http, timeout=TIMEOUT)
            )
            self.ext.handle_provider_config(self.client.provider_info, self.args.issuer)
            self.ext.store_registration_info(self.registration())
        return self.ext

    def introspect(self, token: str):
        return self.extension_client().do_token_introspection(
            request_args={"token": token, "token_type_hint": "access_token"}, authn_method="client_secret_basic"
        )

    def introspection(self):
        self.live = self.sign_in(self.begin("openid email offline_access"))
        self.last_status = None
        body = self.introspect(self.live.token["access_token"]).to_dict()
        check(self.last_status == 200, f"introspection answered {self.last_status}: {body}")
        check(body.get("active") is True, f"a live access token is active: {body}")
        check(body.get("sub") == self.sub, f"sub {body.get('sub')!r}")
        check(body.get("client_id") == self.args.client_id, f"client_id {body.get('client_id')!r}")
        check(set(str(body.get("scope", "")).split()) == {"openid", "email", "offline_access"}, f"scope {body.get('scope')!r}")

    def revocation(self):
        self.endpoint("revocation_endpoint")
        ext, t = self.extension_client(), self.live.token

        def revoke(token: str, hint: str | None = None):
            args = {"token": token, **({"token_type_hint": hint} if hint else {})}
            result = ext.do_token_revocation(request_args=args, authn_method="client_secret_basic")
            check(result == 200, f"revoking a {hint or 'unknown'} token answered {self.last_status}: {result}")

        revoke(t["access_token"], "access_token")
        self.last_status = None
        body = self.introspect(t["access_token"]).to_dict()
        check(self.last_status == 200 and body == {"active": False}, f"after revocation: {self.last_status} {body}")
        self.userinfo(t["access_token"])
        check(self.last_status == 401, f"userinfo still accepts the revoked access token ({self.last_status})")
        refresh = self.client.get_token(state=self.live.state)
        revoke(refresh.refresh_token, "refresh_token")
        status, error = self.token_error(self.refresh(self.live, refresh))
        check((status, error) == (400, "invalid_grant"), f"a revoked refresh token got {status} {error}")
        revoke("not-a-token-" + rndstr(20))  # RFC 7009 2.2: unknown tokens are answered 200

    def logout(self):
        state = rndstr(20)
        self.endpoint("end_session_endpoint")
        request = self.client.construct_EndSessionRequest(
            request_args={
                "id_token_hint": self.latest_id_token,
                "post_logout_redirect_uri": self.args.post_logout_redirect_uri,
                "state": state,
            }
        )
        answer = protocol.logout(request.request(self.client.end_session_endpoint))
        protocol.check_logged_out(answer, self.args.post_logout_redirect_uri, state)

    def prompt_none_after_logout(self):
        self.prompt_none_without_session()


def main():
    protocol.run_rp(PyoidcRp(protocol.parse_args()))


if __name__ == "__main__":
    main()
