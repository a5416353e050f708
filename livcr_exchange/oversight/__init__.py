"""Oversight reports: a verified log counted, suppressed, signed, summed over cells (§16)."""

from .build import cell_report, regional_report
from .evidence import Evidence, VerifiedLog, decode_evidence, verify_evidence
from .model import Auditor, Report, canonical_json, decode_report, sign_report, verify_report
from .render import render_html

__all__ = [
    "Auditor",
    "Evidence",
    "Report",
    "VerifiedLog",
    "canonical_json",
    "cell_report",
    "decode_evidence",
    "decode_report",
    "regional_report",
    "render_html",
    "sign_report",
    "verify_evidence",
    "verify_report",
]
