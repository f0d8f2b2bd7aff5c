"""Twilio's request signature, and the media-stream route refusing unsigned handshakes."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from switchboard.telephony import twilio_signature

from switchboard import serve
from tests.helpers import run_within

# Twilio's published example (its security docs and every official library's tests).
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
          "From": "+14158675309", "To": "+18005551212"}
SIGNED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_the_published_vector_is_reproduced_and_any_change_breaks_it():
    assert twilio_signature.signature(TOKEN, URL, PARAMS) == SIGNED
    assert twilio_signature.valid(TOKEN, URL, SIGNED, PARAMS)
    assert not twilio_signature.valid("54321", URL, SIGNED, PARAMS)
    assert not twilio_signature.valid(TOKEN, URL + "&x=1", SIGNED, PARAMS)
    assert not twilio_signature.valid(TOKEN, URL, SIGNED, PARAMS | {"Digits": "9999"})
    assert not twilio_signature.valid(TOKEN, URL, None, PARAMS)
    assert not twilio_signature.valid("", URL, SIGNED, PARAMS)
    # The parameters are signed in name order, whatever order the form sent them in.
    assert twilio_signature.signature(TOKEN, URL, dict(reversed(PARAMS.items()))) == SIGNED


def test_a_default_port_added_or_dropped_by_a_proxy_still_validates():
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert twilio_signature.valid(TOKEN, with_port, SIGNED, PARAMS)
    other_port = "https://mycompany.com:8443/myapp.php?foo=1&bar=2"
    assert not twilio_signature.valid(TOKEN, other_port, SIGNED, PARAMS)


@pytest.mark.slow
def test_with_a_token_only_a_signed_handshake_gets_a_call(server_settings, bundle):
    server_settings.carrier.twilio_auth_token = "test-token-" + "x" * 20

    async def handshake(url: str, headers: dict[str, str]) -> int | str:
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(url, headers=headers) as ws:
                    await ws.send_str(json.dumps({"event": "connected", "protocol": "Call",
                                                  "version": "1.0.0"}))
                    return "upgraded"
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    async def main():
        running = await serve.start(server_settings, bundle)
        try:
            url = running.media_stream_url
            token = server_settings.carrier.twilio_auth_token
            good = twilio_signature.signature(token, url)
            return (await handshake(url, {}),
                    await handshake(url, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}),
                    await handshake(url, {"X-Twilio-Signature":
                                          twilio_signature.signature("other", url)}),
                    await handshake(url, {"X-Twilio-Signature": good}),
                    len(running.media_streams.edges))
        finally:
            await asyncio.wait_for(serve.stop(running), 30)

    unsigned, garbage, wrong_token, signed, streams = run_within(main(), 60)
    assert (unsigned, garbage, wrong_token) == (403, 403, 403)
    assert signed == "upgraded" and streams == 1
