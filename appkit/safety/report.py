"""The audit report: audit.md for people, audit.json for machines, audit.png for a glance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.safety.audit import Gate


def write_report(out_dir: Path, sections: dict[str, Any], gates: list[Gate]) -> tuple[Path, Path]:
    """Write audit.md, audit.json and audit.png into ``out_dir``; returns (report, chart) paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = out_dir / "audit.png"
    _chart(chart, sections)
    data = {**sections, "gates": [{"name": g.name, "limit": g.limit, "value": g.value, "passed": g.passed} for g in gates]}
    (out_dir / "audit.json").write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    report = out_dir / "audit.md"
    report.write_text(_markdown(sections, gates))
    return report, chart


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _markdown(s: dict[str, Any], gates: list[Gate]) -> str:
    passed = all(g.passed for g in gates)
    lines = [f"# Bias and toxicity audit: {s['app']}", "",
             f"{s['created_at']} - model: {s.get('model', 'none')} - toxicity backend: {s['backend']['name']} "
             f"({s['backend']['reason']})", "",
             f"**Result: {'PASS' if passed else 'FAIL'}**", "", "| gate | value | limit | result |", "|---|---|---|---|"]
    for g in gates:
        value = "skipped" if g.value is None else f"{g.value:.3f}"
        result = "**FAIL**" if not g.passed else ("allowed (--allow-skipped)" if g.skipped else "pass")
        lines.append(f"| {g.name} | {value} | {g.limit:g} | {result} |")
    for note in s.get("notes", []):
        lines += ["", f"> {note}"]

    fpr = s["identity_fpr"]
    lines += ["", "## Toxicity classifier on neutral identity statements", "",
              "Share of statements such as \"I am a Muslim woman\" that the input policy does not simply allow "
              "(templates never used in training). Lower is better; 0% is the goal.", ""]
    names = list(fpr)
    lines += ["| group | " + " | ".join(fpr[n]["backend"] for n in names) + " |", "|---|" + "---|" * len(names)]
    for group in fpr["active"]["groups"]:
        row = [_pct(fpr[n]["groups"].get(group, {}).get("fpr")) for n in names]
        lines.append(f"| {group} | " + " | ".join(row) + " |")
    lines.append("| **all** | " + " | ".join(f"**{_pct(fpr[n]['fpr'])}**" for n in names) + " |")
    if fpr["active"]["examples"]:
        lines += ["", "False positives (first few):", ""] + [f"- {e}" for e in fpr["active"]["examples"]]

    lines += ["", "## Toxicity classifiers on your labelled data", ""]
    if s.get("classifier_eval"):
        lines += [s["classifier_eval"]["title"], "", *s["classifier_eval"]["markdown"]]
    else:
        lines.append("Not measured (pass --data FILE: texts labelled toxic or not, as for `appkit safety eval`).")

    swap = s.get("identity_swap")
    lines += ["", "## Counterfactual identity swap", ""]
    if swap:
        lines += [f"{swap['messages']} customer messages, identical except for the identity term; the bot's replies "
                  "compared per group (sentiment is a rough word count, -1..1).", "",
                  "| group | replies | toxic | refusal/escalation | sentiment | words |", "|---|---|---|---|---|---|"]
        for name, g in swap["groups"].items():
            lines.append(f"| {name} | {g['n']} | {_pct(g['toxicity_rate'])} | {_pct(g['escalation_rate'])} | "
                         f"{g['sentiment']:+.2f} | {g['length']:.1f} |")
        lines += ["", f"Counterfactual flips: in {swap['flips']} of {swap['comparisons']} (message, axis) sets "
                  f"({_pct(swap['flip_rate'])}) the toxic or escalation decision changes with the identity term alone.",
                  "", "Largest gaps between groups of one axis:", ""]
        for gap in swap["largest_gaps"]:
            value = f"{gap['gap']:.1f} words" if gap["metric"] == "length" else (
                f"{gap['gap']:.2f}" if gap["metric"] == "sentiment" else _pct(gap["gap"]))
            lines.append(f"- {gap['metric']} ({gap['axis']}): {value} between {gap['high']} and {gap['low']}")
    else:
        lines.append("Skipped (see the note above).")

    crows = s.get("crows_pairs")
    lines += ["", "## CrowS-Pairs", ""]
    if crows:
        lines += [f"{crows['pairs']} pairs: the model gives the more stereotyping sentence the higher log-likelihood "
                  f"in **{_pct(crows['stereotype_share'])}** of pairs (50% is unbiased; a small model trained on "
                  "support tickets has seen little of either sentence, so expect noise of a few points).", "",
                  "| bias type | pairs | prefers stereotype |", "|---|---|---|"]
        for t, v in crows["by_type"].items():
            lines.append(f"| {t} | {v['pairs']} | {_pct(v['stereotype_share'])} |")
    else:
        lines.append("Skipped (see the note above).")
    lines += ["", "![audit chart](audit.png)", ""]
    return "\n".join(lines)


def _chart(path: Path, s: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + bool(s.get("identity_swap")) + bool(s.get("crows_pairs"))
    height = max(4.0, 0.16 * len(s["identity_fpr"]["active"]["groups"]) + 1.5)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, height), squeeze=False)
    ax = axes[0][0]
    fpr = s["identity_fpr"]
    groups = list(fpr["active"]["groups"])
    width = 0.8 / len(fpr)
    for i, (name, data) in enumerate(fpr.items()):
        ax.barh([y + i * width for y in range(len(groups))],
                [100 * data["groups"].get(g, {}).get("fpr", 0.0) for g in groups], height=width, label=data["backend"])
    ax.set_yticks([y + width * (len(fpr) - 1) / 2 for y in range(len(groups))])
    ax.set_yticklabels([g.split("/", 1)[-1] for g in groups], fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("false-positive rate on neutral statements (%)")
    ax.set_title("toxicity classifier")
    ax.legend(fontsize=7)
    k = 1
    if s.get("identity_swap"):
        ax = axes[0][k]
        k += 1
        swap = s["identity_swap"]["groups"]
        names = list(swap)
        ax.barh(range(len(names)), [100 * swap[n]["escalation_rate"] for n in names], height=0.4,
                label="refusal/escalation")
        ax.barh([y + 0.4 for y in range(len(names))], [100 * swap[n]["toxicity_rate"] for n in names], height=0.4,
                label="toxic reply")
        ax.set_yticks([y + 0.2 for y in range(len(names))])
        ax.set_yticklabels([n.split("/", 1)[-1] for n in names], fontsize=7)
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of replies")
        ax.set_title("identity swap: bot replies")
        ax.legend(fontsize=7)
    if s.get("crows_pairs"):
        ax = axes[0][k]
        by = s["crows_pairs"]["by_type"]
        ax.barh(list(by), [100 * v["stereotype_share"] for v in by.values()])
        ax.axvline(50, color="black", linestyle="--", linewidth=1)
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of pairs preferring the stereotype (50 = unbiased)")
        ax.set_title("CrowS-Pairs")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
