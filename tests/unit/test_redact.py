"""Secrets never reach a log record's final text."""

from __future__ import annotations

import logging

import pytest

from docfs.redact import Redactor, redact_url


def test_registered_secrets_are_blanked(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor()
    redactor.add("hunter2-long-password", None, "")
    caplog.handler.addFilter(redactor)
    log = logging.getLogger("docfs.test")
    with caplog.at_level(logging.INFO):
        log.info("login with %s failed", "hunter2-long-password")
        try:
            raise ValueError("token hunter2-long-password rejected")
        except ValueError:
            log.exception("boom")
    assert "hunter2-long-password" not in caplog.text
    assert "***" in caplog.text


def test_secret_shaped_pairs_are_blanked_even_if_unregistered() -> None:
    redactor = Redactor()
    assert "abc123" not in redactor.redact("Cookie: JSESSIONID=abc123")
    assert "xyz" not in redactor.redact("Authorization: Bearer xyz")
    assert "pw1" not in redact_url("http://h/login?email=a@b&password=pw1")
    assert "p4ss" not in redact_url("http://user:p4ss@host/rest")
