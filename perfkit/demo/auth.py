"""The demo server's optional access token (``perfkit serve-demo --require-token-env VAR``).

With a token set, a request is let in when its ``Authorization`` header is
``Bearer <token>``, or ``Basic`` credentials whose password is the token (or,
with an empty password, whose user is: a bare-token URL ``http://TOKEN@host``
sends that). Comparisons take constant time. The token is read from the
environment, never from the command line, and never printed.
"""
from __future__ import annotations

import base64
import binascii
import hmac

#: Served without a token: what launchers and load balancers poll.
OPEN_PATHS = frozenset({"/health"})
#: The ``WWW-Authenticate`` challenge of a 401.
CHALLENGE = 'Bearer realm="perfkit-demo", Basic realm="perfkit-demo"'


def authorized(header: str | None, token: str) -> bool:
    """Does an ``Authorization`` header value carry ``token`` (Bearer, or Basic as above)?"""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        offered = value
    elif scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        offered = password or user
    else:
        return False
    return hmac.compare_digest(offered.encode(), token.encode())
