"""A browser without a screen for Keycloak's login page, usable as `lakests login
--browser-command`: `python form_browser.py URL` opens the authorization URL, fills in the login
form with LAKESTS_TEST_FORM_USER / LAKESTS_TEST_FORM_PASSWORD, submits it, and follows the
redirect back to the callback (the login's loopback server), as a browser would. It prints no
URL: those carry the code.

Only the standard library and requests: it runs outside pytest too."""

import html
import os
import re
import sys
import urllib.parse

import requests


class Browser:
    """requests with a browser's cookie rule for loopback: Chromium and Firefox treat
    http://127.0.0.1 as a secure context and keep `Secure` cookies there (Keycloak sets its login
    cookies `Secure; SameSite=None`), which Python's cookie jar refuses over http. One jar for the
    loopback host, as cookies ignore ports; enough for one login."""

    def __init__(self):
        self.session = requests.Session()
        self.session.trust_env = False
        self.jar = {}

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        resp = self.session.request(method, url, headers=headers, allow_redirects=False, timeout=30, **kwargs)
        for cookie in resp.raw.headers.getlist("Set-Cookie"):
            pair = cookie.split(";", 1)[0]
            name, _, value = pair.partition("=")
            if "max-age=0" in cookie.lower().replace(" ", ""):
                self.jar.pop(name.strip(), None)
            else:
                self.jar[name.strip()] = value.strip()
        self.session.cookies.clear()
        return resp


def sign_in(authorize_url: str, username: str, password: str) -> str:
    """What a user does in the browser: open the authorization URL, fill in Keycloak's login
    form, submit it. Follows redirects (keeping cookies) until one leaves Keycloak, and returns
    that URL (the redirect URI with code, state and iss). Keycloak's login page needs no
    JavaScript."""
    browser = Browser()
    origin = urllib.parse.urlsplit(authorize_url)[:2]
    resp = browser.request("GET", authorize_url)
    assert resp.status_code == 200, f"login page: {resp.status_code} {resp.text[:500]}"
    m = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', resp.text)
    assert m, f"no login form on Keycloak's page:\n{resp.text[:2000]}"
    resp = browser.request("POST", html.unescape(m.group(1)),
                           data={"username": username, "password": password, "credentialId": ""})
    for _ in range(10):
        assert resp.status_code in (302, 303), f"after the form: {resp.status_code} {resp.text[:300]}"
        location = urllib.parse.urljoin(resp.url, resp.headers["Location"])
        if urllib.parse.urlsplit(location)[:2] != origin:
            return location
        resp = browser.request("GET", location)
    raise AssertionError("Keycloak kept redirecting to itself")


def main() -> int:
    callback = sign_in(sys.argv[-1], os.environ["LAKESTS_TEST_FORM_USER"], os.environ["LAKESTS_TEST_FORM_PASSWORD"])
    session = requests.Session()
    session.trust_env = False
    resp = session.get(callback, allow_redirects=False, timeout=60)
    print(f"callback answered {resp.status_code}", file=sys.stderr)
    return 0 if resp.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
