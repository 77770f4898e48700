"""The fake token endpoint (Microsoft identity platform v2.0), served at graphsim's root.

MSAL first reads the tenant's OpenID configuration, then posts the refresh-token grant. Endpoints
in the configuration name the real authority host (MSAL accepts only https authorities); tests
hand MSAL an http client that sends those URLs to graphsim on loopback.
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from graphsim.common import sim_state

AUTHORITY_HOST = "https://login.microsoftonline.com"


async def openid_configuration(request: Request) -> JSONResponse:
    tenant = request.path_params["tenant"]
    base = f"{AUTHORITY_HOST}/{tenant}"
    return JSONResponse(
        {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        }
    )


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description, "error_codes": [70000]}, status)


async def token(request: Request) -> JSONResponse:
    # Parsed by hand: Starlette's form() needs python-multipart, which graphsim does not depend on.
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    grant_type = str(form.get("grant_type", ""))
    if grant_type != "refresh_token":
        return _oauth_error("unsupported_grant_type", f"graphsim supports refresh_token grants, not {grant_type!r}.")
    scope = str(form.get("scope", ""))
    grant = sim_state(request).identity.redeem(str(form.get("refresh_token", "")), scope, str(form.get("client_id")))
    if grant is None:
        return _oauth_error("invalid_grant", "AADSTS70000: The provided grant is invalid or expired.")
    return JSONResponse(
        {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": grant.access_token,
            "refresh_token": grant.refresh_token,
        }
    )


def routes() -> list[BaseRoute]:
    """Identity routes, at the root (as on login.microsoftonline.com)."""
    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    ]
