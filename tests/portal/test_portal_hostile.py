"""Hostile visitors: every bad form or link gets a clear message and changes nothing.

"Nothing" is checked on the real servers: the bucket's versions (every object ever written) are
the same before and after, and no e-mail went out.
"""
from __future__ import annotations

import datetime as dt

import pytest

from include.campaign.confirmation import CONFIRM, SIGN_IN, TokenSigner

from tests.portal.conftest import PDF, SECRET, form_token, post_registration, registration_fields

BIG = 5 * 1024 * 1024 + 10


def _fields(**changes):
    fields = registration_fields(tasks=["beta"])
    fields.update(changes)
    return fields


# (case id, fields, files, expected status, words of the message)
FORM_CASES = [
    ("crlf-in-team-name", _fields(team_name="Evil\r\nBcc: victim@example.org"), None, 422, "U+000D CARRIAGE RETURN, a control character"),
    ("line-separator-in-team-name", _fields(team_name="Evil\u2028Team"), None, 422, "U+2028 LINE SEPARATOR"),
    ("zero-width-in-team-name", _fields(team_name="Te\u200dam Alpha"), None, 422, "U+200D ZERO WIDTH JOINER, an invisible format character"),
    ("nul-in-affiliation", _fields(affiliation="Uni\x00versity"), None, 422, "U+0000 NULL, a control character"),
    ("header-injection-in-email", _fields(contact_email="a@b.example.org\r\nBcc: c@d.example.org"), None, 422, "U+000D CARRIAGE RETURN"),
    ("look-alike-team-name", _fields(team_name="V\u0456sion Lab"), None, 422, "mixes letters of the scripts Cyrillic, Latin"),
    ("two-addresses", _fields(contact_email="a@b.example.org, c@d.example.org"), None, 422, "is not an e-mail address"),
    ("no-at-sign", _fields(contact_email="nobody"), None, 422, "is not an e-mail address"),
    ("oversized-team-name", _fields(team_name="T" * 5000), None, 422, "at most 400 are accepted"),
    ("team-name-over-schema-limit", _fields(team_name="T" * 81), None, 422, "must be 2 to 80 characters"),
    ("affiliation-over-schema-limit", _fields(affiliation="A" * 201), None, 422, "must be 2 to 200 characters"),
    ("empty-contact-name", _fields(contact_name=""), None, 422, "must be 2 to 120 characters"),
    ("unknown-country", _fields(country="XX"), None, 422, "not an ISO 3166-1 alpha-2 country code"),
    ("markup-as-country", _fields(country="<script>"), None, 422, "not an ISO 3166-1 alpha-2 country code"),
    ("unknown-task", _fields(tasks=["gamma"]), None, 422, "not a task of this campaign"),
    ("path-as-task", _fields(tasks=["../alpha"]), None, 422, "choose one or more tasks"),
    ("no-task", _fields(tasks=[]), None, 422, "choose one or more tasks"),
    ("agreement-missing", _fields(tasks=["alpha"]), None, 422, "requires the signed user agreement"),
    ("agreement-not-a-pdf", _fields(tasks=["alpha"]), {"agreement_alpha": ("agreement.pdf", b"\x89PNG\r\n\x1a\n")}, 422, "is not a PDF"),
    ("agreement-path-name-not-a-pdf", _fields(tasks=["alpha"]), {"agreement_alpha": ("../../registrations/teams/x.json", b"{}")}, 422, "is not a PDF"),
    ("agreement-too-large", _fields(tasks=["alpha"]), {"agreement_alpha": ("big.pdf", PDF + b"0" * BIG)}, 422, "a signed agreement may be at most 5 MiB"),
    ("markup-in-team-name-of-a-refused-form", _fields(team_name="<script>alert(1)</script>", contact_email="x"), None, 422, "is not an e-mail address"),
]


@pytest.mark.parametrize("case, fields, files, status, words", FORM_CASES, ids=[c[0] for c in FORM_CASES])
def test_hostile_registration_forms_change_nothing(client, ctx, store, mailbox, case, fields, files, status, words):
    before = _state(store)
    answer = post_registration(client, fields, files)
    assert answer.status_code == status, answer.text[:2000]
    assert words in answer.text
    assert "<script>" not in answer.text  # whatever was typed comes back escaped
    assert _state(store) == before and mailbox.messages == []


def test_every_hostile_form_keeps_what_was_typed(client, ctx):
    answer = post_registration(client, _fields(team_name="<b>Bold</b> team", country="XX"))
    assert "&lt;b&gt;Bold&lt;/b&gt; team" in answer.text and 'id="error-country"' in answer.text


@pytest.mark.parametrize("how", ["no-token", "forged-token", "foreign-origin", "no-cookie"])
def test_posts_without_a_valid_form_key_are_refused(client, ctx, store, mailbox, how):
    before = _state(store)
    page = client.get("/c/portallab/register")
    data = {**registration_fields(tasks=["beta"])}
    headers = {}
    if how == "forged-token":
        data["csrf_token"] = "0" * 64
    elif how == "foreign-origin":
        data["csrf_token"] = form_token(page.text)
        headers["origin"] = "https://evil.example.com"
    elif how == "no-cookie":
        data["csrf_token"] = form_token(page.text)
        client.cookies.clear()
    answer = client.post("/c/portallab/register", data=data, files=[("none", ("", b"", "application/octet-stream"))], headers=headers)
    assert answer.status_code == 403 and "Form refused" in answer.text
    for path in ("/c/portallab/sign-in", "/c/portallab/confirm", "/c/portallab/team/download", "/c/portallab/sign-out"):
        assert client.post(path, data={"contact_email": "a@b.example.org", "token": "x"}).status_code in (401, 403), path
    assert _state(store) == before and mailbox.messages == []


def test_a_body_over_the_limit_is_refused_before_it_is_read(client, store, ctx):
    before = _state(store)
    answer = client.post("/c/portallab/sign-in", content=b"x" * (64 * 1024), headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413 and "nothing was stored" in answer.text
    assert _state(store) == before


def test_registrations_and_sign_in_requests_are_rate_limited(client, ctx, store, mailbox):
    for _ in range(10):
        assert post_registration(client, _fields(country="XX")).status_code == 422
    assert post_registration(client, _fields()).status_code == 429
    page = client.get("/c/portallab/sign-in")
    answers = [client.post("/c/portallab/sign-in", data={"csrf_token": form_token(page.text), "contact_email": "nobody@example.org"}).status_code for _ in range(11)]
    assert answers[:10] == [200] * 10 and answers[10] == 429


def _signer() -> TokenSigner:
    return TokenSigner(SECRET)


TOKEN_CASES = [
    ("forged-signature", "confirm", lambda ctx: _signer().sign(CONFIRM, ctx.campaign.id, {"d": "0" * 64, "e": "a@b.example.org"}, dt.timedelta(hours=1), ctx.now())[:-4] + "AAAA", "signature does not match"),
    ("other-secret", "confirm", lambda ctx: TokenSigner("another-secret-" + "y" * 40).sign(CONFIRM, ctx.campaign.id, {"d": "0" * 64, "e": "a@b.example.org"}, dt.timedelta(hours=1), ctx.now()), "not issued by this portal"),
    ("expired-confirmation", "confirm", lambda ctx: _signer().sign(CONFIRM, ctx.campaign.id, {"d": "0" * 64, "e": "a@b.example.org"}, dt.timedelta(hours=1), ctx.now() - dt.timedelta(hours=2)), "has expired"),
    ("sign-in-token-as-confirmation", "confirm", lambda ctx: _signer().sign(SIGN_IN, ctx.campaign.id, {"t": "team-alpha"}, dt.timedelta(hours=1), ctx.now()), "another page"),
    ("garbage", "confirm", lambda ctx: "not-a-token", "incomplete or damaged"),
    ("expired-sign-in", "sign-in", lambda ctx: _signer().sign(SIGN_IN, ctx.campaign.id, {"t": "team-alpha"}, dt.timedelta(days=7), ctx.now() - dt.timedelta(days=8)), "has expired"),
    ("other-campaign-sign-in", "sign-in", lambda ctx: _signer().sign(SIGN_IN, "othercampaign", {"t": "team-alpha"}, dt.timedelta(days=7), ctx.now()), "another campaign"),
    ("unknown-team-sign-in", "sign-in", lambda ctx: _signer().sign(SIGN_IN, ctx.campaign.id, {"t": "../teams/x"}, dt.timedelta(days=7), ctx.now()), "names no registered team"),
]


@pytest.mark.parametrize("case, page, make, words", TOKEN_CASES, ids=[c[0] for c in TOKEN_CASES])
def test_forged_or_expired_links_are_refused(client, ctx, store, mailbox, case, page, make, words):
    before = _state(store)
    answer = client.get(f"/c/portallab/{page}", params={"token": make(ctx)}, follow_redirects=False)
    assert answer.status_code == 400 and words in answer.text
    if page == "confirm":
        form = client.get("/c/portallab/register")
        posted = client.post("/c/portallab/confirm", data={"csrf_token": form_token(form.text), "token": make(ctx)})
        assert posted.status_code == 400 and words in posted.text
    assert "clef_team_portallab" not in client.cookies
    assert _state(store) == before and mailbox.messages == []


def _state(store):
    return [(v.key, v.version_id) for v in store.list_versions("")]
