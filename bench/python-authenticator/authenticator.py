"""What a lakeFS user would write instead of lakests' authenticator (issue 14, target 6).

lakeFS's documentation leaves the remote authenticator to the user: a small web service that
answers lakeFS's authentication API (`POST /api/v1/sts/login` with `{code, state,
redirect_uri}`, answering `{"claims": {...}}` with every claim a string) by redeeming the code
at the OpenID Provider and validating the ID token. This is that service, written the usual
way: FastAPI on uvicorn (uvloop and httptools, the fast options), httpx for the token request,
Authlib's JOSE for the ID token. Discovery and the JWKS are fetched once at start-up and kept,
as lakests does, so the comparison is of the per-login work only.

It follows lakests' state-mode convention (the PKCE code_verifier is the `state`), the rules
of OpenID Connect Core §3.1.3.7 that Authlib checks (iss, aud, exp, iat, with 60 s of leeway)
and lakests' flattening of claim values to strings. It is run by `bench/run.sh` only.

Configuration from the environment: ISSUER, CLIENT_ID, and CLIENT_SECRET (optional).
Authlib 1.9 marks `authlib.jose` deprecated in favour of joserfc (a warning at start-up); it is
still the JOSE API of Authlib 1.x and works unchanged.
"""

import contextlib
import json
import os

import httpx
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import JoseError
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

ISSUER = os.environ["ISSUER"]
CLIENT_ID = os.environ["CLIENT_ID"]
CLIENT_SECRET = os.environ.get("CLIENT_SECRET")
LEEWAY_SECONDS = 60
MAX_FIELD = 4096

STATE = {}


class StsAuthRequest(BaseModel):
    code: str = Field(min_length=1, max_length=MAX_FIELD)
    state: str = Field(min_length=1, max_length=MAX_FIELD)
    redirect_uri: str = Field(min_length=1, max_length=MAX_FIELD)


@contextlib.asynccontextmanager
async def lifespan(_app):
    async with httpx.AsyncClient(timeout=10.0) as client:
        meta = (await client.get(f"{ISSUER}/.well-known/openid-configuration")).json()
        if meta.get("issuer") != ISSUER:
            raise RuntimeError("the discovery document names another issuer")
        jwks = (await client.get(meta["jwks_uri"])).json()
        algs = [
            a
            for a in meta.get("id_token_signing_alg_values_supported", ["RS256"])
            if a != "none" and not a.startswith("HS")
        ]
        STATE.update(
            client=client,
            token_endpoint=meta["token_endpoint"],
            keys=JsonWebKey.import_key_set(jwks),
            jwt=JsonWebToken(algs),
        )
        yield


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


def refused(status, message):
    return JSONResponse(status_code=status, content={"message": message})


@app.exception_handler(RequestValidationError)
async def bad_request(_request: Request, _exc: RequestValidationError):
    return refused(400, "the request must be JSON with non-empty code, state and redirect_uri")


def flatten(value):
    """lakests' rule: strings as they are, arrays of strings joined with commas, else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return json.dumps(value, separators=(",", ":"))


@app.post("/api/v1/sts/login")
async def sts_login(req: StsAuthRequest):
    form = {
        "grant_type": "authorization_code",
        "code": req.code,
        "redirect_uri": req.redirect_uri,
        "code_verifier": req.state,
        "client_id": CLIENT_ID,
    }
    if CLIENT_SECRET:
        form["client_secret"] = CLIENT_SECRET
    try:
        r = await STATE["client"].post(STATE["token_endpoint"], data=form)
    except httpx.HTTPError:
        return refused(502, "the identity provider could not be used")
    if r.status_code != 200:
        return refused(401, "the code was refused by the identity provider")
    id_token = r.json().get("id_token")
    if not isinstance(id_token, str):
        return refused(502, "the identity provider returned no ID token")
    try:
        claims = STATE["jwt"].decode(
            id_token,
            STATE["keys"],
            claims_options={
                "iss": {"essential": True, "value": ISSUER},
                "aud": {"essential": True, "value": CLIENT_ID},
                "exp": {"essential": True},
                "iat": {"essential": True},
                "sub": {"essential": True},
            },
        )
        claims.validate(leeway=LEEWAY_SECONDS)
    except (JoseError, ValueError):
        return refused(401, "the ID token is not valid")
    return {"claims": {k: flatten(v) for k, v in claims.items()}}


@app.get("/api/v1/healthcheck")
async def healthcheck():
    return Response(status_code=204)
