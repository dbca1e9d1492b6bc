"""The one JUnit (xunit2) writer: verify's report, the suites of reused results, and
``rigforge ci``'s steps, in documents that CI systems read."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime


def testcase(classname: str, name: str, seconds: float, failure: str | None = None) -> ET.Element:
    """A ``<testcase>``, with a ``<failure>`` carrying ``failure`` as its message if given."""
    case = ET.Element("testcase", {"classname": classname, "name": name, "time": str(seconds)})
    if failure is not None:
        ET.SubElement(case, "failure", {"message": failure})
    return case


def testsuite(name: str, cases: list[ET.Element], properties: dict[str, str] | None = None) -> ET.Element:
    """A ``<testsuite>`` of ``cases``, counted as pytest counts its own."""
    import socket

    counts = {tag: sum(1 for c in cases if c.find(tag) is not None)
              for tag in ("failure", "error", "skipped")}
    suite = ET.Element("testsuite", {
        "name": name,
        "errors": str(counts["error"]),
        "failures": str(counts["failure"]),
        "skipped": str(counts["skipped"]),
        "tests": str(len(cases)),
        "time": f"{sum(float(c.get('time') or 0) for c in cases):.3f}",
        "timestamp": datetime.now(UTC).isoformat(),
        "hostname": socket.gethostname(),
    })
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", {"name": key, "value": value})
    suite.extend(cases)
    return suite


def with_property(text: str, name: str, value_of) -> str:
    """The document with ``<property name=NAME value=...>`` in each ``<testcase>`` for which
    ``value_of(classname, name)`` gives a value (JUnit readers show a case's properties; those
    that know none skip them)."""
    if not text:
        return text
    root = ET.fromstring(text)
    for case in root.iter("testcase"):
        value = value_of(case.get("classname") or "", case.get("name") or "")
        if value:
            props = case.find("properties")
            if props is None:
                props = ET.Element("properties")
                case.insert(0, props)
            ET.SubElement(props, "property", {"name": name, "value": value})
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def to_text(element: ET.Element) -> str:
    """One element as text, without an XML declaration."""
    return ET.tostring(element, encoding="unicode")


def suites(text: str) -> list[ET.Element]:
    """Every ``<testsuite>`` of a document (or the one a ``<testsuite>`` root is)."""
    return list(ET.fromstring(text).iter("testsuite")) if text else []


def testcases(text: str) -> list[ET.Element]:
    """Every ``<testcase>`` of a document."""
    return list(ET.fromstring(text).iter("testcase")) if text else []


def document(parts: list[ET.Element]) -> str:
    """One ``<testsuites>`` document holding ``parts`` (suites) in order."""
    root = ET.Element("testsuites")
    root.extend(parts)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def merge(documents: list[str]) -> str:
    """One document holding every suite of ``documents`` (empty ones skipped); "" if none."""
    found = [s for text in documents for s in suites(text)]
    return document(found) if found else ""
