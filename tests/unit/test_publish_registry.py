"""The implementations registry: what it accepts, and every rule that refuses one, each refusal
naming the file and line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.publish.registry import apply_xfail, load_registry
from testbed.report.model import Outcome, RegisteredImplementation
from testbed.topology import ImageImplementation, UrlImplementation
from tests.conftest import ROOT
from tests.unit.test_report_writers import make_results

VALID = """\
title: Consent services
implementations:
  - name: acme-consent
    vendor: Acme Health
    product: Acme Consent
    version: "2.4"
    role: consent
    implementation:
      url: https://127.0.0.1:8443
      internal_url: https://127.0.0.1:8081
      ca_bundle: acme-ca.pem
    xfail:
      CONSENT-XACML-04: purpose of use is read from 2.5 on
  - name: other-consent
    vendor: Other
    product: Other Consent
    version: "1"
    role: consent
    implementation: {image: health-testbed-node:latest}
"""


def entry(**fields: str) -> str:
    """One implementation's entry, with fields replaced (a value of "" leaves the field out)."""
    base = {
        "name": "acme",
        "vendor": "Acme",
        "product": "Acme Consent",
        "version": '"1.0"',
        "role": "consent",
        "implementation": "{image: health-testbed-node:latest}",
    }
    base.update(fields)
    lines = [f"    {key}: {value}" for key, value in base.items() if value]
    return "implementations:\n  - " + "\n".join(lines)[4:] + "\n"


def refused(write_yaml, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_registry(write_yaml(text, "implementations.yaml"))
    return str(caught.value)


def test_a_valid_registry_is_read_with_its_ca_bundle_made_absolute(write_yaml, tmp_path: Path) -> None:
    (tmp_path / "acme-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    loaded = load_registry(write_yaml(VALID, "implementations.yaml"))
    first, second = loaded.registry.implementations
    assert isinstance(first.implementation, UrlImplementation)
    assert first.implementation.ca_bundle == str(tmp_path / "acme-ca.pem")
    assert first.reached_by == "url https://127.0.0.1:8443"
    assert isinstance(second.implementation, ImageImplementation) and second.reached_by.startswith("image ")
    assert first.registered("consent") == RegisteredImplementation(
        name="acme-consent",
        vendor="Acme Health",
        product="Acme Consent",
        version="2.4",
        role="consent",
        node="consent",
        reached_by="url https://127.0.0.1:8443",
        xfail={"CONSENT-XACML-04": "purpose of use is read from 2.5 on"},
    )


def test_a_must_requirement_can_never_be_declared_expected_to_fail(write_yaml) -> None:
    text = entry() + "    xfail:\n      CONSENT-XACML-04: fine, a SHOULD\n      CONSENT-DEC-01: not fine, a MUST\n"
    message = refused(write_yaml, text)
    line = text.splitlines().index("      CONSENT-DEC-01: not fine, a MUST") + 1
    assert re.search(rf"implementations\.yaml:{line}: xfail CONSENT-DEC-01: a MUST requirement", message), message
    assert "can never be declared expected to fail" in message and "XACML-04" not in message


def test_an_expected_failure_names_a_requirement_of_its_own_role(write_yaml) -> None:
    message = refused(write_yaml, entry() + "    xfail:\n      VAULT-AUTH-01: another role's\n")
    assert "xfail VAULT-AUTH-01: a requirement of the vault role, not of consent" in message
    message = refused(write_yaml, entry() + "    xfail:\n      CONSENT-NOPE-99: a made-up one\n")
    assert "implementations.yaml:9: xfail CONSENT-NOPE-99: not a requirement of the catalogue" in message


def test_an_expected_failure_gives_its_reason(write_yaml) -> None:
    message = refused(write_yaml, entry() + "    xfail:\n      CONSENT-XACML-04: ''\n")
    assert "implementations.yaml:9: implementations[0].xfail.CONSENT-XACML-04" in message


def test_an_unknown_role_is_refused_at_its_line(write_yaml) -> None:
    message = refused(write_yaml, entry(role="mailbox"))
    assert "implementations.yaml:6: implementations[0].role: Input should be 'trust'" in message
    assert "(got 'mailbox')" in message


@pytest.mark.parametrize(
    ("implementation", "expected"),
    [
        ("{ca_bundle: ca.pem}", "say how to reach it: `url`"),
        ("{url: http://plain.example}", "String should match pattern '^https://'"),
        ("", "implementations[0].implementation: this field is required"),
        ("{image: 'Not An Image!'}", "String should match pattern"),
    ],
)
def test_how_to_reach_it_is_required_and_checked(write_yaml, implementation: str, expected: str) -> None:
    assert expected in refused(write_yaml, entry(implementation=implementation))


def test_names_are_unique_and_versions_are_texts(write_yaml) -> None:
    twice = entry() + entry()[len("implementations:\n") :]
    assert "implementations.yaml:8: duplicate implementation name 'acme'" in refused(write_yaml, twice)
    assert "version: Input should be a valid string" in refused(write_yaml, entry(version="2.4"))


def test_a_missing_ca_bundle_and_a_wrong_file_are_refused(write_yaml) -> None:
    missing = entry(implementation="{url: 'https://127.0.0.1:8443', ca_bundle: nowhere.pem}")
    assert "ca_bundle nowhere.pem does not exist" in refused(write_yaml, missing)
    assert "not an implementations registry: a mapping" in refused(write_yaml, "- just\n- a list\n")
    assert "implementations: List should have at least 1 item" in refused(write_yaml, "implementations: []\n")
    assert "unknown field" in refused(write_yaml, entry(colour="blue"))


def test_expected_failures_mark_checks_and_requirements_but_keep_outcomes() -> None:
    results = make_results()
    check = next(c for _, c in results.all_checks() if c.id == "introspect-expired")  # NUTS-AUTH-002 and -004
    results.registered = [
        RegisteredImplementation(
            name="acme",
            vendor="Acme",
            product="P",
            version="1",
            role="authorization-server",
            node="nuts-a",
            reached_by="url https://a",
            xfail={"NUTS-AUTH-004": "not yet"},
        )
    ]
    apply_xfail(results)
    assert check.outcome is Outcome.FAILED and check.xfail == {"NUTS-AUTH-004": "not yet"}
    assert not check.expected_failure  # it verifies NUTS-AUTH-002 too, which nobody expects to fail
    assert results.summary.xfailed == 0
    assert {r.id: r.xfail for r in results.requirements if r.xfail} == {"NUTS-AUTH-004": "not yet"}
    results.registered[0].xfail["NUTS-AUTH-002"] = "the other one too"
    apply_xfail(results)
    assert check.expected_failure and results.summary.xfailed == 1


def test_the_example_registry_names_the_reference_consent_service_twice() -> None:
    loaded = load_registry(ROOT / "implementations.yaml")
    entries = loaded.registry.implementations
    assert [e.role.value for e in entries] == ["consent", "consent"]
    assert [type(e.implementation) for e in entries] == [UrlImplementation, ImageImplementation]
    assert entries[0].xfail and not entries[1].xfail


def test_the_matrix_command_refuses_a_wrong_registry_before_anything_starts(write_yaml, tmp_path: Path) -> None:
    registry = write_yaml(entry() + "    xfail:\n      CONSENT-DEC-01: a MUST\n", "implementations.yaml")
    command = [sys.executable, "-m", "testbed.cli", "matrix", str(registry), "--out", str(tmp_path / "out")]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "300"}
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "implementations.yaml:9: xfail CONSENT-DEC-01: a MUST requirement of the consent role" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "matrix.json").write_text("{}", encoding="utf-8")
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert again.returncode == 2 and "holds a matrix already" in again.stderr
