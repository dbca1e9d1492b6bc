"""The one JUnit writer (provision/verify/junit.py): verify's merged report, reused suites and
`rigforge ci`'s steps are all made here."""

import xml.etree.ElementTree as ET

from provision.verify import junit


def test_several_documents_merge_into_one_keeping_every_suite_in_order():
    one = '<testsuites><testsuite name="rigforge-verify-rig1"><testcase name="a"/></testsuite></testsuites>'
    two = '<testsuite name="rigforge-verify-rig2"><testcase name="b"/></testsuite>'
    text = junit.merge([one, "", two])
    assert text.startswith("<?xml") and text.endswith("\n")
    merged = ET.fromstring(text)
    assert merged.tag == "testsuites"
    assert [s.get("name") for s in merged] == ["rigforge-verify-rig1", "rigforge-verify-rig2"]
    assert junit.merge([]) == junit.merge(["", ""]) == ""


def test_a_suite_counts_its_cases_as_pytest_does():
    cases = [
        junit.testcase("rigforge.ci", "provision", 12.5),
        junit.testcase("rigforge.ci", "idempotence", 3.0, "changed: Touch a file."),
        ET.fromstring('<testcase classname="x" name="s" time="0.5"><skipped message="gpu"/></testcase>'),
        ET.fromstring('<testcase classname="x" name="e" time="0"><error message="boom"/></testcase>'),
    ]
    suite = junit.testsuite("rigforge-ci", cases, {"rigforge-reused-results-of": "2026-12-01T10:00:00Z"})
    assert {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped", "time")} == {
        "name": "rigforge-ci", "tests": "4", "failures": "1", "errors": "1", "skipped": "1",
        "time": "16.000"}
    assert suite.get("timestamp") and suite.get("hostname")
    assert suite.find("properties/property").attrib == {
        "name": "rigforge-reused-results-of", "value": "2026-12-01T10:00:00Z"}
    assert cases[1].find("failure").get("message") == "changed: Touch a file."
    assert cases[0].find("failure") is None and cases[0].get("time") == "12.5"


def test_a_suite_without_properties_has_no_properties_element():
    assert junit.testsuite("empty", []).find("properties") is None


def test_suites_and_testcases_are_read_from_a_document_or_a_lone_suite():
    lone = junit.to_text(junit.testsuite("s", [junit.testcase("c", "t", 0.1)]))
    assert not lone.startswith("<?xml")
    assert [s.get("name") for s in junit.suites(lone)] == ["s"]
    document = junit.document(junit.suites(lone) * 2)
    assert len(junit.suites(document)) == 2 and len(junit.testcases(document)) == 2
    assert junit.suites("") == [] and junit.testcases("") == []


def test_each_testcase_can_carry_a_property_such_as_its_tier():
    text = junit.document([junit.testsuite("rigforge-verify", [
        junit.testcase("provision.checks.test_nvidia_driver_health", "test_link[ssh://rig1]", 0.1, "x4"),
        junit.testcase("provision.checks.test_base", "test_os[ssh://rig1]", 0.1),
    ])])
    tiers = {"test_nvidia_driver_health": "health"}
    tagged = junit.with_property(text, "rigforge.tier",
                                 lambda classname, name: tiers.get(classname.split(".")[-1]))
    cases = junit.testcases(tagged)
    assert [p.attrib for p in cases[0].iter("property")] == [{"name": "rigforge.tier", "value": "health"}]
    assert cases[0][0].tag == "properties" and cases[0].find("failure").get("message") == "x4"
    assert cases[1].find("properties") is None
    assert junit.with_property("", "rigforge.tier", lambda *a: "install") == ""
