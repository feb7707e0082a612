"""The validation report: a JSON-able dict, and its plain-text rendering for e-mail.

Every value taken from a run is passed through ``findings.shown`` before it is written into a
message, so spreadsheet-formula text appears with a leading ``'`` and control characters escaped.
"""
from __future__ import annotations

from include.campaign.validation.findings import Findings, shown
from include.campaign.validation.limits import RunLimits
from include.campaign.validation.schema import RunSchema


def build_report(schema: RunSchema, run_name: str, counts: dict, findings: Findings, warnings: Findings,
                 limits: RunLimits) -> dict:
    verdict = "invalid" if findings else "valid"
    counts = {**counts, "rules_broken": len(findings.rules()), "problems": findings.total(),
              "warnings": warnings.total()}
    return {
        "format": schema.format,
        "task": schema.task,
        "run_file": run_name,
        "verdict": verdict,
        "summary": summary(verdict, counts, schema),
        "counts": counts,
        "rules_broken": [finding.as_dict() for finding in findings],
        "warnings": [finding.as_dict() for finding in warnings],
        "limits": limits.as_dict(),
    }


def plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("x", "s", "ch")) else "s")


def summary(verdict: str, counts: dict, schema: RunSchema) -> str:
    label = schema.ids.label
    coverage = ""
    if "ids_expected" in counts:
        coverage = f"; {counts.get('ids_covered', 0)} of {counts['ids_expected']} test {plural(label)} covered"
        if "subset" in counts:
            (group, value), = counts["subset"].items()
            coverage += f" ({group} {value})"
    rows = f"{counts.get('rows', 0)} rows read{coverage}"
    if verdict == "valid":
        return f"The run is valid: {rows}."
    rules = counts["rules_broken"]
    problems = counts["problems"]
    return (f"The run is invalid: {rules} rule{'s' if rules != 1 else ''} broken, {problems} "
            f"problem{'s' if problems != 1 else ''} ({rows}). It cannot be scored until they are fixed.")


def _where(example: dict) -> str:
    if example.get("line") is not None:
        return f"{example['file']} line {example['line']}"
    if example.get("member") is not None:
        return f"{example['file']}: member {shown(example['member'])}"
    return example["file"]


def _render_findings(findings: list[dict], lines: list[str]) -> None:
    for number, finding in enumerate(findings, start=1):
        count = finding["count"]
        lines.append(f"{number}. {finding['description']} [{finding['rule']}]: {count} time{'s' if count != 1 else ''}")
        for example in finding["examples"]:
            lines.append(f"   - {_where(example)}: {example['message']}")
        hidden = count - len(finding["examples"])
        if hidden > 0:
            lines.append(f"   ... and {hidden} more")
        lines.append("")


def render_text(report: dict) -> str:
    """The report as plain text: verdict first, then each broken rule with its examples."""
    lines = [
        f"Validation report for {shown(report['run_file'])}",
        f"Task: {report['task']} (run format {report['format']})",
        f"Verdict: {report['verdict'].upper()}",
        report["summary"],
        "",
    ]
    if report["rules_broken"]:
        lines.append("Broken rules (up to ten examples each):")
        lines.append("")
        _render_findings(report["rules_broken"], lines)
    if report["warnings"]:
        lines.append("Warnings (they do not make the run invalid):")
        lines.append("")
        _render_findings(report["warnings"], lines)
    return "\n".join(lines).rstrip() + "\n"
