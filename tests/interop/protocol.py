"""The line protocol between an interop script (a relying party built on one Python library)
and the Rust end-to-end test that runs it (tests/e2e/interop.rs).

The script is the relying party; the Rust test is the person and their browser. One line
per message, UTF-8, on the script's stdout (script -> test) and stdin (test -> script):

    script -> test                      test -> script
    AUTHORIZE <url>                     CALLBACK <url>    Keyward redirected the browser away
                                                          (signing in by email first when it
                                                          showed its login page)
                                        PAGE <status>     Keyward answered with a page, not a
                                                          redirect
    LOGOUT <url>                        LOGGED_OUT <url>  the browser (same cookies) was redirected
                                        PAGE <status>     Keyward answered with a page
    OK <step>                           (no answer)       one checked step passed
    FAIL <step>: <reason>               (no answer)       the step failed (or was not run
                                                          because a step it needs failed)

The script reports every step, then exits 0 only if all passed. The test puts a time limit
on every line it waits for and kills the script when it ends; a script that finds stdin
closed fails the step it was in. Diagnostics go to stderr, never to stdout.

Arguments (both scripts): --issuer --client-id --client-secret --redirect-uri
--post-logout-redirect-uri --id-token-alg.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


class StepFailed(Exception):
    """An assertion about Keyward's behaviour did not hold."""


@dataclass
class Answer:
    """What the browser saw: a redirect away from Keyward (`url`) or a page (`status`)."""

    kind: str
    url: str | None = None
    status: int | None = None

    def query(self) -> dict[str, str]:
        """The redirect URL's query parameters (single-valued)."""
        if self.url is None:
            raise StepFailed(f"expected a redirect, Keyward answered with a page ({self.status})")
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query, keep_blank_values=True).items()}


def parse_args() -> argparse.Namespace:
    """The relying party's registration at the Keyward under test."""
    p = argparse.ArgumentParser(description=__doc__)
    for name in ("issuer", "client-id", "client-secret", "redirect-uri", "post-logout-redirect-uri", "id-token-alg"):
        p.add_argument(f"--{name}", required=True)
    return p.parse_args()


def _send(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def _receive(expected: tuple[str, ...]) -> Answer:
    line = sys.stdin.readline()
    if not line:
        raise StepFailed("the test closed the conversation")
    word, _, rest = line.rstrip("\n").partition(" ")
    if word == "PAGE":
        return Answer("page", status=int(rest))
    if word in expected:
        return Answer(word, url=rest)
    raise StepFailed(f"unexpected answer from the test: {line!r}")


def authorize(url: str) -> Answer:
    """Sends the person's browser to an authorization URL (signing in if Keyward asks)."""
    _send(f"AUTHORIZE {url}")
    return _receive(("CALLBACK",))


def logout(url: str) -> Answer:
    """Sends the person's browser, with its session cookie, to an end-session URL."""
    _send(f"LOGOUT {url}")
    return _receive(("LOGGED_OUT",))


def check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def run(steps) -> None:
    """Runs `(name, function, needs)` steps in order and reports each as OK or FAIL. A step
    whose prerequisites (names in `needs`) did not pass fails without running. Every step is
    reported, so one run shows all that works and all that does not; the exit status is 0
    only if every step passed."""
    passed: set[str] = set()
    for name, step, needs in steps:
        missing = [n for n in needs if n not in passed]
        if missing:
            _send(f"FAIL {name}: not run, it needs {', '.join(missing)}")
            continue
        try:
            step()
        except Exception as e:  # report any failure, the libraries' own errors included
            print(f"--- {name} failed:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            _send(f"FAIL {name}: {type(e).__name__}: {e}")
            continue
        passed.add(name)
        _send(f"OK {name}")
    sys.exit(0 if len(passed) == len(steps) else 1)


def forge(jws: str) -> str:
    """The same token with one claim changed and the original signature."""
    import base64
    import json

    header, payload, signature = jws.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    altered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{altered}.{signature}"


def check_logged_out(answer: Answer, post_logout_redirect_uri: str, state: str) -> None:
    """RP-initiated logout answered with a redirect to the registered URI, echoing `state`."""
    check(answer.kind == "LOGGED_OUT", f"end_session answered with a page ({answer.status}), not a redirect")
    check(answer.url.split("?")[0] == post_logout_redirect_uri, f"redirected to {answer.url}")
    check(answer.query().get("state") == state, "the logout state comes back")


def run_rp(rp) -> None:
    """Runs every step both relying parties implement, in order, each after the steps it needs."""
    run(
        [
            ("discovery", rp.discovery, ()),
            ("prompt-none-without-session", rp.prompt_none_without_session, ("discovery",)),
            ("code-flow-pkce", rp.code_flow, ("discovery",)),
            ("id-token", rp.id_token, ("code-flow-pkce",)),
            ("id-token-forgeries-rejected", rp.id_token_forgeries_rejected, ("id-token",)),
            ("userinfo", rp.userinfo_step, ("id-token",)),
            ("code-reuse", rp.code_reuse, ("userinfo",)),
            ("wrong-pkce-verifier", rp.wrong_pkce_verifier, ("code-flow-pkce",)),
            ("unregistered-redirect-uri", rp.unregistered_redirect_uri, ("code-flow-pkce",)),
            ("refresh-rotation", rp.refresh_rotation, ("id-token",)),
            ("refresh-replay", rp.refresh_replay, ("refresh-rotation",)),
            ("introspection", rp.introspection, ("id-token",)),
            ("revocation", rp.revocation, ("introspection",)),
            ("logout", rp.logout, ("id-token",)),
            ("prompt-none-after-logout", rp.prompt_none_after_logout, ("logout",)),
        ]
    )
