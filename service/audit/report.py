"""Turn an AuditReport into what people and machines read: JSON, Markdown or HTML.

One function, :func:`render`, serves `rulebook audit --format`, the gRPC AuditService and
`rulebook diff`, so the three always say the same thing. JSON is checked against the published
schema (``report.schema.json``) before it leaves, so a consumer can rely on the schema rather than
on this code. Markdown is for a merge request of a rules repository; HTML is one self-contained
file (inline CSS, charts as inline SVG, nothing fetched from the network) for a policy reader who
never saw the code. Every piece of text that came from a rulebook, the catalogue or an event is
escaped, because rulebooks and events are input, not markup.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from service.audit.finding import SEVERITY_ORDER, VERDICT_ORDER, AuditReport, Finding

FORMATS = ("json", "md", "html")
SCHEMA_PATH = Path(__file__).resolve().parent / "report.schema.json"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
SCHEMA_VERSION = 1

#: What each verdict means, in the words the reports use to explain themselves.
VERDICT_MEANING: dict[str, str] = {
    "violation": "The rule breaks the criterion: the harm described can happen under it.",
    "warning": "The rule may break the criterion, or comes close to its threshold; a person "
               "should look at it.",
    "pass": "The rule meets the criterion.",
    "not_applicable": "The criterion does not concern this rulebook, or the data needed to "
                      "judge it (events, a projection) was not given.",
}

#: What each severity means for the merchants the rule governs.
SEVERITY_MEANING: dict[str, str] = {
    "critical": "Threatens merchants' survival or forces sales below cost; act before adoption.",
    "high": "Shifts significant cost or risk onto merchants, or removes a legal safeguard.",
    "medium": "A real but bounded burden, or a missing safeguard with a workaround.",
    "low": "A small burden or a transparency gap.",
    "info": "For the record; no harm on its own.",
}

KIND_MEANING: dict[str, str] = {
    "static": "read from the rulebook text",
    "dynamic": "measured on recorded events",
    "projected": "projected by the simulator",
}


class ReportError(ValueError):
    """A report that cannot be rendered: unknown format, or JSON that breaks the schema."""


# -- plain data -------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON-safe data: numpy scalars to numbers, non-finite floats to null, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _plain(item())
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    return str(value)


def summary(report: AuditReport) -> dict[str, Any]:
    """Counts by verdict and the worst violation: the first thing a reader (or CI) looks at."""
    by_verdict = {v: 0 for v in VERDICT_ORDER}
    for f in report.findings:
        by_verdict[f.verdict] = by_verdict.get(f.verdict, 0) + 1
    return {"total": len(report.findings), "by_verdict": by_verdict,
            "worst_violation": report.worst("violation")}


def to_json_data(report: AuditReport) -> dict[str, Any]:
    """The report as the published schema describes it (see report.schema.json)."""
    data = _plain(report.to_dict())
    for finding in data["findings"]:
        # Series values are per simulated day; an undefined day is null, never NaN.
        finding["series"] = {k: [None if v is None else float(v) for v in vals]
                             for k, vals in (finding.get("series") or {}).items()}
    return {"schema_version": SCHEMA_VERSION, **data, "summary": summary(report)}


@functools.cache
def schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of the JSON report."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Any:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    return jsonschema.Draft202012Validator(schema())


def validate(data: Mapping[str, Any]) -> None:
    """Raise ReportError naming every place `data` breaks the published schema."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
                 for e in errors[:20]]
        raise ReportError("the JSON report does not match report.schema.json:\n  "
                          + "\n  ".join(lines))


# -- grouping for the human formats ------------------------------------------------------------
def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Violations first, then warnings, passes and n/a; worst severity first within each."""
    return sorted(findings, key=lambda f: (VERDICT_ORDER.index(f.verdict),
                                           -SEVERITY_ORDER.index(f.severity), f.criterion,
                                           f.rule or ""))


def grouped(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """[{verdict, meaning, groups: [{severity, findings}]}], reading order, empty ones left out."""
    out = []
    findings = list(findings)
    for verdict in VERDICT_ORDER:
        of_verdict = [f for f in findings if f.verdict == verdict]
        if not of_verdict:
            continue
        groups = []
        for severity in reversed(SEVERITY_ORDER):
            these = ordered(f for f in of_verdict if f.severity == severity)
            if these:
                groups.append({"severity": severity, "findings": these})
        out.append({"verdict": verdict, "meaning": VERDICT_MEANING[verdict], "count":
                    len(of_verdict), "groups": groups})
    return out


def severity_table(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Rows per verdict, columns per severity (worst first): the summary's count table."""
    findings = list(findings)
    rows = []
    for verdict in VERDICT_ORDER:
        counts = {s: sum(1 for f in findings if f.verdict == verdict and f.severity == s)
                  for s in SEVERITY_ORDER}
        rows.append({"verdict": verdict, "counts": [counts[s] for s in reversed(SEVERITY_ORDER)],
                     "total": sum(counts.values())})
    return rows


def counterexample_file(report: AuditReport, finding: Finding) -> str:
    """The file name the replay command reads, so "save as" and "run" agree."""
    command = replay_command(report, finding)
    named = [w for w in command.split() if w.endswith(".jsonl")]
    return named[-1] if named else f"{finding.criterion}.jsonl"


def replay_command(report: AuditReport, finding: Finding) -> str:
    """The command that replays a finding's counterexample, saved as `<criterion>.jsonl`."""
    if finding.counterexample and finding.counterexample.replay_command:
        return finding.counterexample.replay_command
    where = report.path or report.rulebook_set
    return f"rulebook replay --rulebooks {where} {finding.criterion}.jsonl"


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True)
    return str(value)


# -- Markdown escaping --------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_text(value: Any) -> str:
    """Text safe in Markdown prose and table cells: no markup, no raw HTML, one line."""
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())


def md_code(value: Any) -> str:
    """An inline code span that holds any text, backticks included."""
    text = " ".join(str(value).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_fence(value: Any, info: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside it."""
    text = str(value).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


# -- charts -------------------------------------------------------------------------------------
_BAND_SUFFIXES = (("_p5", "_p95"), ("_p05", "_p95"), ("_p10", "_p90"), ("_p25", "_p75"),
                  ("_lower", "_upper"), ("_lo", "_hi"))
#: Series that are a criterion's limits, drawn as dashed lines rather than as measurements.
_LIMIT_NAMES = ("bound", "limit", "threshold", "tau_low", "tau_high")
_SVG_STRIP = (re.compile(r"<\?xml[^>]*\?>\s*"), re.compile(r"<!DOCTYPE[^>]*>\s*"),
              re.compile(r"<!--.*?-->", re.S), re.compile(r"<metadata>.*?</metadata>\s*", re.S),
              re.compile(r'\s+xmlns(:\w+)?="[^"]*"'))


def _bands(series: Mapping[str, list[Any]]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Split series into (label, low key, high key) bands and the remaining lines."""
    keys = list(series)
    bands: list[tuple[str, str, str]] = []
    used: set[str] = set()
    for key in keys:
        for low, high in _BAND_SUFFIXES:
            bare_low, bare_high = low[1:], high[1:]
            if key.endswith(low) and key[: -len(low)] + high in series:
                bands.append((key[: -len(low)], key, key[: -len(low)] + high))
                used |= {key, key[: -len(low)] + high}
            elif key == bare_low and bare_high in series:
                bands.append(("", key, bare_high))
                used |= {key, bare_high}
    return bands, [k for k in keys if k not in used]


def _numbers(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
        out.append(f)
    return out


#: matplotlib's rc settings are process-wide; charts are drawn one at a time so that concurrent
#: renders (gRPC worker threads) cannot see each other's settings.
_CHART_LOCK = threading.Lock()


def _is_limit(name: str) -> bool:
    return name in _LIMIT_NAMES or name.startswith(("threshold", "tau_", "bound"))


def draw_chart(finding: Finding) -> Any:
    """A matplotlib Figure of a projected finding's series: measurements as lines, the band
    across replications shaded, the criterion's limits dashed (series such as `bound` or
    `tau_low`, and numeric `threshold*` evidence)."""
    import matplotlib
    from matplotlib.figure import Figure

    series = finding.series or {}
    bands, lines = _bands(series)
    with matplotlib.rc_context({"font.size": 9}):
        fig = Figure(figsize=(6.4, 2.8), dpi=100)
        ax = fig.subplots()
        for label, low, high in bands:
            lo, hi = _numbers(series[low]), _numbers(series[high])
            n = min(len(lo), len(hi))
            ax.fill_between(range(n), lo[:n], hi[:n], alpha=0.25,
                            label=f"{label + ' ' if label else ''}{low.rsplit('_', 1)[-1]}"
                                  f"-{high.rsplit('_', 1)[-1]} band")
        for key in lines:
            ys = _numbers(series[key])
            if _is_limit(key):
                ax.plot(range(len(ys)), ys, linestyle="--", linewidth=1, color="#b00020",
                        label=key)
            else:
                ax.plot(range(len(ys)), ys, linewidth=1.6, label=key)
        for key, value in sorted(finding.evidence.items()):
            if key.startswith("threshold") and isinstance(value, int | float) \
                    and not isinstance(value, bool) and math.isfinite(value):
                ax.axhline(float(value), linestyle="--", linewidth=1, color="#b00020",
                           label=f"{key} = {value:g}")
        ax.set_xlabel("simulated day")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=7, frameon=False)
        fig.tight_layout()
    return fig


def chart_svg(finding: Finding, prefix: str = "") -> str:
    """An inline SVG line chart of a projected finding's series (see draw_chart).

    Rendered with matplotlib's object API on the SVG backend (no pyplot global state, and a lock
    around the rc settings, so it is safe in gRPC worker threads); text is drawn as paths, and
    the XML prolog, comments, metadata and namespace URLs are stripped so the page references
    nothing outside itself.
    """
    import matplotlib

    if not finding.series:
        return ""
    with _CHART_LOCK, matplotlib.rc_context({"svg.fonttype": "path",
                                             "svg.hashsalt": "rulebook-audit"}):
        fig = draw_chart(finding)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None,
                                                  "Format": None, "Type": None})
    svg = buf.getvalue()
    for pattern in _SVG_STRIP:
        svg = pattern.sub("", svg)
    if prefix:  # several charts on one page: keep their element ids (and clip paths) apart
        svg = svg.replace(' id="', f' id="{prefix}').replace("url(#", f"url(#{prefix}") \
            .replace('xlink:href="#', f'xlink:href="#{prefix}')
    return svg.replace("xlink:href", "href").strip()


# -- rendering ----------------------------------------------------------------------------------
@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        # HTML is escaped by jinja2; Markdown escapes through the md/code/fence filters.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(md=md_text, code=md_code, fence=md_fence, value=_fmt_value)
    return env


def _context(report: AuditReport, charts: bool) -> dict[str, Any]:
    ordered_findings = ordered(report.findings)
    anchors: dict[int, str] = {}
    used: dict[str, int] = {}
    for f in ordered_findings:  # unique per page, stable across runs of the same audit
        base = _anchor(f)
        used[base] = used.get(base, 0) + 1
        anchors[id(f)] = base if used[base] == 1 else f"{base}-{used[base]}"
    svgs = {id(f): markupsafe.Markup(chart_svg(f, prefix=f"chart{i}-"))
            for i, f in enumerate(ordered_findings)
            if charts and f.kind == "projected" and f.series}
    return {
        "report": report,
        "summary": summary(report),
        "findings": ordered_findings,
        "grouped": grouped(report.findings),
        "severity_table": severity_table(report.findings),
        "severities": list(reversed(SEVERITY_ORDER)),
        "verdict_meaning": VERDICT_MEANING,
        "severity_meaning": SEVERITY_MEANING,
        "kind_meaning": KIND_MEANING,
        "replay": lambda f: replay_command(report, f),
        "replay_file": lambda f: counterexample_file(report, f),
        "anchor": lambda f: anchors[id(f)],
        "chart_for": lambda f: svgs.get(id(f)),
        "inputs": sorted(_plain(report.inputs).items()),
    }


def _anchor(finding: Finding) -> str:
    raw = f"{finding.criterion}-{finding.rule or 'set'}"
    return re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-")


def render(report: AuditReport, fmt: str) -> str:
    """The report as text in `fmt` ("json", "md" or "html")."""
    if fmt == "json":
        data = to_json_data(report)
        validate(data)
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "md":
        return _environment().get_template("report.md").render(_context(report, charts=False))
    if fmt == "html":
        return _environment().get_template("report.html").render(_context(report, charts=True))
    raise ReportError(f"unknown report format '{fmt}': use one of {', '.join(FORMATS)}")
