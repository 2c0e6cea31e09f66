"""Who may call what: the client address limits count, the moderator token check, and the
FastAPI dependencies guarding the moderator API (sessions, JSON bodies, same origin, CSRF)."""

import math
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from .security import CSRF_HEADER, SESSION_COOKIE, Session, client_key, from_origin, is_json
from .service import Service, ServiceDep


def client(request: Request) -> str:
    """The caller's address as the rate limits count it."""
    return client_key(request.client.host if request.client else "unknown")


def too_many(what: str, wait: float) -> HTTPException:
    """429 with the seconds to wait before trying again."""
    return HTTPException(429, f"too many {what} from this address; try again later",
                         headers={"Retry-After": str(math.ceil(wait))})


def checked_token(service: Service, request: Request, presented: str) -> bool:
    """The token check, refused (429) after too many wrong guesses from one address."""
    wait = service.guesses.retry_after(client(request), count=False)
    if wait:
        raise too_many("wrong tokens", wait)
    if service.token.check(presented):
        return True
    service.guesses.retry_after(client(request))
    return False


def signed_in(service: Service, request: Request) -> Session | None:
    """The session of the request's cookie, if it is a live one."""
    return service.sessions.get(request.cookies.get(SESSION_COOKIE))


def moderator(request: Request, service: ServiceDep) -> Session | None:
    """The caller's session (None when they sent the token as a bearer); 401 for anyone else."""
    bearer = request.headers.get("authorization", "")
    if bearer.lower().startswith("bearer ") and checked_token(service, request, bearer[7:]):
        return None
    session = signed_in(service, request)
    if session is None:
        raise HTTPException(401, "moderator token required", headers={"WWW-Authenticate": "Bearer"})
    return session


def json_body(request: Request) -> None:
    """415 unless the body is declared JSON."""
    if not is_json(request.headers):
        raise HTTPException(415, "send Content-Type: application/json")


def same_origin(request: Request) -> bool:
    return from_origin(request.headers, f"{request.url.scheme}://{request.headers.get('host', '')}")


def sign_in_guard(request: Request) -> None:
    """Sign-in is for the moderation page only: JSON, from this origin."""
    json_body(request)
    if not same_origin(request):
        raise HTTPException(403, "cross-origin request refused")


def csrf_guard(request: Request, session: Session) -> None:
    """A change made with the session cookie comes from this origin with the session's CSRF token."""
    if not (same_origin(request) and session.has_csrf(request.headers.get(CSRF_HEADER))):
        raise HTTPException(403, "cross-origin request, or CSRF token missing or wrong")


def moderator_change(request: Request, session: Annotated[Session | None, Depends(moderator)]) -> str:
    """A moderator's decision: JSON, and CSRF-guarded when made with the session cookie
    (browsers never add a bearer token by themselves)."""
    json_body(request)
    if session is not None:
        csrf_guard(request, session)
    return "moderator"


def own_session(session: Annotated[Session | None, Depends(moderator)]) -> Session:
    """The caller's session cookie's session; 401 for a bearer token (it has none)."""
    if session is None:
        raise HTTPException(401, "no session (the bearer token needs none)")
    return session


Moderator = Annotated[Session | None, Depends(moderator)]
ModeratorChange = Annotated[str, Depends(moderator_change)]
OwnSession = Annotated[Session, Depends(own_session)]

#: OpenAPI ``responses``: status → description (and content).
Responses = dict[int | str, dict[str, Any]]

moderator_responses: Responses = {401: {"description": "moderator token required"},
                       429: {"description": "too many wrong tokens"}}
moderator_change_responses: Responses = moderator_responses | {403: {"description": "cross-origin, or no CSRF token"},
                                                    415: {"description": "not JSON"}}
