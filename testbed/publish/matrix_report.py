"""matrix.md and matrix.html: the interop matrix for people. Every expected failure (xfail) is
listed with its reason, whatever its cell says; nothing the registry declared is left out.

Names and reasons come from the registry and messages from the runs: the HTML escapes all of
them, and the page needs no file besides itself."""

from __future__ import annotations

import html
from collections.abc import Iterable

from testbed.publish.matrix_model import Cell, ImplementationRow, Matrix, PairCell
from testbed.publish.suite import short

STATES = ("passed", "failed", "xfail", "error", "skipped", "untested", "not run")
MARKS = {"passed": "✓", "failed": "✗", "xfail": "x", "error": "!", "skipped": "-", "untested": "·", "not run": "—"}


def _roles(matrix: Matrix) -> list[str]:
    return sorted({row.role for row in matrix.implementations})


def _scenarios(matrix: Matrix) -> list[str]:
    return sorted({pair.scenario for pair in matrix.pairs})


def _pair_keys(matrix: Matrix) -> list[tuple[str, str]]:
    return list(dict.fromkeys((pair.a, pair.b) for pair in matrix.pairs))


def _pair_cell(matrix: Matrix, key: tuple[str, str], scenario: str) -> PairCell | None:
    return next((p for p in matrix.pairs if (p.a, p.b) == key and p.scenario == scenario), None)


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "untested"
    return f"{cell.state} (xfail declared)" if cell.xfail and cell.state != "xfail" else cell.state


def _pair_text(cell: PairCell | None) -> str:
    if cell is None:
        return ""
    if cell.state == "not run":
        return "not run"
    counts = f"{cell.passed}/{cell.passed + cell.failed + cell.error + cell.skipped}"
    return f"{cell.state} ({counts}{f', {cell.xfailed} xfail' if cell.xfailed else ''})"


def expected_failures(matrix: Matrix) -> list[tuple[ImplementationRow, str, str, str]]:
    """(implementation, requirement, its state in the run, reason) for every declared xfail."""
    return [
        (row, requirement, _cell_text(row.cells.get(requirement)), reason)
        for row in matrix.implementations
        for requirement, reason in row.xfail.items()
    ]


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def matrix_markdown(matrix: Matrix) -> str:
    lines = [f"# {_md(matrix.title)}", "", _headline(matrix), ""]
    lines += ["## Implementations", "", "| implementation | vendor | product | version | role | reached by | verdict |"]
    lines += ["| --- | --- | --- | --- | --- | --- | --- |"]
    for row in matrix.implementations:
        verdict = f"[{row.verdict.value}]({row.run}/report.html)" + (f" ({_md(row.error)})" if row.error else "")
        lines.append(
            f"| {row.name} | {_md(row.vendor)} | {_md(row.product)} | {_md(row.version)} | {row.role} | "
            f"{_md(row.reached_by)} | {verdict}: {row.passed} passed, {row.failed} failed ({row.xfailed} xfail) |"
        )
    for role in _roles(matrix):
        rows = matrix.of_role(role)
        lines += ["", f"## {role}: implementation x requirement", ""]
        lines += ["| requirement | level | " + " | ".join(r.name for r in rows) + " |"]
        lines += ["| --- | --- | " + " | ".join("---" for _ in rows) + " |"]
        for requirement in (r for r in matrix.requirements if r.role == role):
            cells = " | ".join(_cell_text(row.cells.get(requirement.id)) for row in rows)
            lines.append(f"| {requirement.id} | {requirement.level.value} | {cells} |")
    lines += _xfail_markdown(matrix)
    lines += _pairs_markdown(matrix)
    return "\n".join(lines) + "\n"


def _headline(matrix: Matrix) -> str:
    suites = sorted({short(row.suite_version) for row in matrix.implementations})
    stopped = " Interrupted: the runs finished before the interrupt only." if matrix.interrupted else ""
    return (
        f"Registry `{matrix.registry}` (sha256 {matrix.registry_sha256[:12]}), {len(matrix.implementations)} "
        f"implementation(s), {len(_pair_keys(matrix))} pair(s), {matrix.runtime} runtime, started "
        f"{matrix.started.isoformat(timespec='seconds')}; profile suite version(s) {', '.join(suites) or 'none'}. "
        f"Exit code {matrix.exit_code}.{stopped}"
    )


def _xfail_markdown(matrix: Matrix) -> list[str]:
    found = expected_failures(matrix)
    if not found:
        return ["", "No expected failures (xfail) are declared."]
    lines = ["", "## Expected failures (xfail), as the registry declares them", ""]
    lines += [f"- {row.name}: **{requirement}** ({state}): {_md(reason)}" for row, requirement, state, reason in found]
    return lines


def _pairs_markdown(matrix: Matrix) -> list[str]:
    if not matrix.pairs:
        return ["", "No pairs of registered implementations talk to each other in a use case."]
    scenarios = _scenarios(matrix)
    lines = ["", "## Pairs: pair x scenario (passed/checks)", ""]
    lines += [
        "| pair | roles | " + " | ".join(scenarios) + " |",
        "| --- | --- | " + " | ".join("---" for _ in scenarios) + " |",
    ]
    for key in _pair_keys(matrix):
        first = next(p for p in matrix.pairs if (p.a, p.b) == key)
        cells = " | ".join(_pair_text(_pair_cell(matrix, key, s)) for s in scenarios)
        lines.append(f"| {key[0]} → {key[1]} | {' → '.join(first.roles)} | {cells} |")
    notes = [p for p in matrix.pairs if p.note]
    lines += ["", *(f"- {p.a} → {p.b}, {p.scenario}: {_md(p.note)}" for p in notes)] if notes else []
    return lines


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1d232a; }
table { border-collapse: collapse; margin: .6rem 0 1.4rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
td.s { text-align: center; white-space: nowrap; }
.passed { background: #dff3e4; } .failed { background: #fbdada; } .xfail { background: #fdebc8; }
.error { background: #ecdcf5; } .skipped, .untested, .not-run { background: #f3f3f3; color: #57606a; }
.declared { outline: 2px dashed #b7791f; outline-offset: -3px; }
.mono { font-family: ui-monospace, monospace; } .muted { color: #57606a; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _state_td(state: str, text: str, *, title: str = "", declared: bool = False, href: str | None = None) -> str:
    classes = f"s {state.replace(' ', '-')}" + (" declared" if declared else "")
    shown = f"{MARKS.get(state, '')} {_e(text)}"
    inner = f'<a href="{_e(href)}">{shown}</a>' if href else shown
    return f'<td class="{classes}" title="{_e(title)}">{inner}</td>'


def matrix_html(matrix: Matrix) -> str:
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(matrix.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(matrix.title)}</h1><p>{_e(_headline(matrix))}</p>",
        _implementations_html(matrix),
        *(_role_html(matrix, role) for role in _roles(matrix)),
        _xfail_html(matrix),
        _pairs_html(matrix),
        '<p class="muted">Each run\'s own reports are under runs/&lt;name&gt;/ next to this page; '
        "matrix.json holds the same matrix for tools.</p></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _table(head: Iterable[str], rows: Iterable[str]) -> str:
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _implementations_html(matrix: Matrix) -> str:
    rows = []
    for row in matrix.implementations:
        state = {"conforms": "passed", "passes": "passed", "incomplete": "skipped", "fails": "failed"}
        summary = f"{row.verdict.value}: {row.passed} passed, {row.failed} failed, {row.xfailed} xfail"
        cells = [
            row.name,
            row.vendor,
            row.product,
            row.version,
            row.role,
            row.reached_by,
            row.reported or "not reported",
        ]
        rows.append(
            "<tr>"
            + "".join(f"<td>{_e(c)}</td>" for c in cells)
            + _state_td(
                state.get(row.verdict.value, "error"), summary, title=row.error or "", href=f"{row.run}/report.html"
            )
            + f'<td class="mono">{_e(short(row.suite_version))}</td></tr>'
        )
    head = [
        "implementation",
        "vendor",
        "product",
        "version",
        "role",
        "reached by",
        "reports itself as",
        "verdict",
        "suite",
    ]
    return "<h2>Implementations</h2>" + _table(head, rows)


def _role_html(matrix: Matrix, role: str) -> str:
    implementations = matrix.of_role(role)
    rows = []
    for requirement in (r for r in matrix.requirements if r.role == role):
        cells = []
        for row in implementations:
            cell = row.cells.get(requirement.id) or Cell(state="untested")
            title = f"declared expected to fail: {cell.xfail}" if cell.xfail else ", ".join(cell.checks)
            cells.append(_state_td(cell.state, _cell_text(cell), title=title, declared=bool(cell.xfail)))
        rows.append(
            f'<tr><td class="mono" title="{_e(requirement.statement)}">{_e(requirement.id)}</td>'
            f"<td>{_e(requirement.level.value)}</td>{''.join(cells)}</tr>"
        )
    head = ["requirement", "level", *(row.name for row in implementations)]
    return f"<h2>{_e(role)}: implementation x requirement</h2>" + _table(head, rows)


def _xfail_html(matrix: Matrix) -> str:
    found = expected_failures(matrix)
    if not found:
        return "<h2>Expected failures (xfail)</h2><p>None are declared.</p>"
    rows = [
        f'<tr><td>{_e(row.name)}</td><td class="mono">{_e(req)}</td><td>{_e(state)}</td><td>{_e(reason)}</td></tr>'
        for row, req, state, reason in found
    ]
    return "<h2>Expected failures (xfail), as the registry declares them</h2>" + _table(
        ["implementation", "requirement", "in its run", "reason"], rows
    )


def _pairs_html(matrix: Matrix) -> str:
    if not matrix.pairs:
        return "<h2>Pairs</h2><p>No pairs of registered implementations talk to each other in a use case.</p>"
    scenarios = _scenarios(matrix)
    rows = []
    for key in _pair_keys(matrix):
        first = next(p for p in matrix.pairs if (p.a, p.b) == key)
        cells = []
        for scenario in scenarios:
            cell = _pair_cell(matrix, key, scenario)
            if cell is None:
                cells.append("<td></td>")
                continue
            href = f"{cell.run}/report.html" if cell.run else None
            title = cell.note or f"{cell.a} as {cell.a_node}, {cell.b} as {cell.b_node}"
            cells.append(_state_td(cell.state, _pair_text(cell), title=title, href=href))
        label, roles = f"{key[0]} → {key[1]}", " → ".join(first.roles)
        rows.append(f'<tr><td>{_e(label)}</td><td title="{_e(first.how)}">{_e(roles)}</td>{"".join(cells)}</tr>')
    return "<h2>Pairs: pair x scenario (passed/checks)</h2>" + _table(["pair", "roles", *scenarios], rows)
