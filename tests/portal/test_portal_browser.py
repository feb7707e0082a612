"""A real browser (Playwright driving Debian's /usr/bin/chromium) registers, signs in, uploads and reads its receipt.

The portal runs under uvicorn on loopback, the store is the moto server, mail is aiosmtpd; the
test plays the organizers' DAGs by calling intake, release and the submission check. Screenshots of
the public page, the registration form, the team page and a receipt go to ``docs/screenshots/``.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest

from include.campaign import submission_check
from include.campaign.registration import intake

from tests.conftest import SCREENSHOTS as SHOTS, chromium_page
from tests.portal.conftest import link_to, stage_and_release, valid_run

EMAIL = "lead@browser.example.org"



@pytest.fixture
def portal_server(settings, monkeypatch):
    import uvicorn

    from include.portal.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("CLEF_PORTAL_URL", address)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the portal did not start within 20 s"
        time.sleep(0.05)
    yield address
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser_page():
    with chromium_page(1100, "America/New_York") as page:
        yield page


def test_register_sign_in_upload_and_read_the_receipt(portal_server, browser_page, ctx, store, mailbox, tmp_path):
    page = browser_page

    page.goto(f"{portal_server}/c/portallab")
    assert page.locator("h1").inner_text() == "Portal Lab 2026"
    assert "America/New_York" in page.locator(".local").first.inner_text()  # the visitor's zone, filled in by the page
    page.screenshot(path=str(SHOTS / "portal-campaign.png"), full_page=True)

    page.get_by_role("link", name="Register a team").click()
    page.fill("#team_name", "Browser Team")
    page.fill("#affiliation", "University of Browsers")
    page.select_option("#country", "ES")
    page.fill("#contact_name", "Ada Browser")
    page.fill("#contact_email", "not-an-address")
    page.check("input[name=tasks][value=beta]")
    page.get_by_role("button", name="Register").click()
    assert "is not an e-mail address" in page.locator("#error-contact_email").inner_text()
    assert page.input_value("#team_name") == "Browser Team"  # nothing typed is lost
    page.fill("#contact_email", EMAIL)
    page.screenshot(path=str(SHOTS / "portal-register.png"), full_page=True)
    page.get_by_role("button", name="Register").click()
    assert "confirm your address" in page.locator("h1").inner_text()

    page.goto(link_to(mailbox, EMAIL, "confirm"))
    page.get_by_role("button", name="Confirm").click()
    assert page.locator("h1").inner_text() == "Address confirmed"
    team_id = intake(ctx)["accepted"][0]["team_id"]
    stage_and_release(ctx, "beta", "test")

    page.goto(link_to(mailbox, EMAIL, "sign-in"))
    assert page.url.endswith("/c/portallab/team")
    run = tmp_path / "run.csv"
    run.write_bytes(valid_run())
    slot = page.locator("form.upload").first
    slot.locator("input[type=file]").set_input_files(str(run))
    page.screenshot(path=str(SHOTS / "portal-team.png"), full_page=True)
    slot.get_by_role("button", name="Upload to run-01").click()
    page.wait_for_selector("#uploaded")
    assert store.get_bytes(ctx.layout.submissions("beta", team_id) + "run-01") == valid_run()

    submission_check.check(ctx, "beta")
    page.reload()
    page.get_by_role("link", name="receipt").first.click()
    assert page.locator("#verdict").inner_text() == "valid"
    page.screenshot(path=str(SHOTS / "portal-receipt.png"), full_page=True)
    assert any("run-01 received, valid" in m.subject for m in mailbox.messages)
