"""JUnit XML: one test case per gate item, so any CI shows the checklist as tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..scrub import scrub

if TYPE_CHECKING:
    from .run import GateRun

JUNIT_NAME = "junit.xml"


def write(run: GateRun) -> Path:
    items = [{"item": item.item, "label": item.label, "status": str(item.status or "PENDING"),
              "summary": item.summary, "required": item.required,
              "duration_s": run.results[item.item].duration_s if item.item in run.results
              else 0.0} for item in run.items]
    return write_items(run.output_dir / JUNIT_NAME, f"{run.gate}.{run.project}", items)


def write_items(path: Path, suite_name: str, items: list[dict[str, Any]]) -> Path:
    """Write ``items`` (dicts with item, label, status, summary) as one JUnit test suite.

    FAIL becomes a failure; ERROR and UNAVAILABLE an error, since the item could not be
    judged; SKIPPED, WAIVED and a sign-off still PENDING are skipped with the reason.
    """
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    suite = ET.Element("testsuite", name=suite_name, tests=str(len(items)))
    for entry in items:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=entry["item"],
                             time=f"{entry.get('duration_s', 0.0):.3f}")
        message = scrub(entry["summary"])
        status = entry["status"]
        if status == "FAIL":
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=message, type="FAIL").text = message
        elif status in ("ERROR", "UNAVAILABLE"):
            counts["errors"] += 1
            ET.SubElement(case, "error", message=message, type=status).text = message
        elif status in ("SKIPPED", "WAIVED", "PENDING"):
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=f"{status}: {message}")
        ET.SubElement(case, "system-out").text = f"{entry['label']}: {status}"
    for key, value in counts.items():
        suite.set(key, str(value))

    tree = ET.ElementTree(ET.Element("testsuites"))
    tree.getroot().append(suite)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
