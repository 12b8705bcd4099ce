"""Plots (PNG, matplotlib's Agg backend) and Markdown reports of lab results."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pointsman.errors import DataError

Result = dict[str, Any]


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}%"


def write_plot(results: Sequence[Result], path: str | Path) -> Path:
    """One PNG with every router's curve and the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    if results[0]["kind"] == "two-model":
        _plot_two(ax, results)
    else:
        _plot_many(ax, results)
    ax.grid(True, alpha=0.3)
    singles = set(results[0].get("singles") or {})
    handles = [h for h in ax.get_legend_handles_labels()[0]
               if h.get_label() not in {m.split("/")[-1] for m in singles}]
    ax.legend(handles=handles, fontsize=8, loc="lower right" if not singles else "best")
    ax.set_title(f"{results[0]['data']} — {results[0]['protocol']}", fontsize=9)
    out = Path(path).expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", bbox_inches="tight",
                    bbox_extra_artists=[a for a in ax.get_children() if a is not ax.legend_
                                        and type(a).__name__ == "Legend"])
    except OSError as exc:
        raise DataError(f"{out}: cannot write the plot ({exc})") from None
    finally:
        plt.close(fig)
    return out


def _plot_two(ax: Any, results: Sequence[Result]) -> None:
    first = results[0]
    for res in results:
        xs = [p["strong_share"] for p in res["curve"]]
        ys = [p["quality"] for p in res["curve"]]
        label = f"{res['router']} (APGR {_fmt(res['apgr'], 3)})"
        if res.get("fixed"):
            ax.scatter(xs, ys, marker="s", label=res["router"], zorder=3)
        else:
            ax.plot(xs, ys, label=label)
    if not any(res["router"] == "random" for res in results):  # else it is drawn already
        rnd = first["random"]["curve"]
        ax.plot([p["strong_share"] for p in rnd], [p["quality"] for p in rnd], "k--",
                label="random (APGR 0.5)")
    oracle = first["oracle"]
    ax.scatter([oracle["strong_share"]], [oracle["quality"]], marker="*", s=120, c="gold",
               edgecolors="k", label="oracle", zorder=4)
    for role in ("weak", "strong"):
        quality = first[role]["quality"]
        ax.axhline(quality, color="grey", lw=0.8, ls=":")
        ax.annotate(f"{role}: {first[role]['model']} ({_pct(quality)})", (0.01, quality),
                    xycoords=("axes fraction", "data"), xytext=(0, 3),
                    textcoords="offset points", fontsize=7, color="dimgrey")
    ax.set_xlabel(f"share of calls to the strong model ({first['strong']['model']})")
    ax.set_ylabel("quality (mean correctness)")


def _plot_many(ax: Any, results: Sequence[Result]) -> None:
    first = results[0]
    for res in results:
        line = ax.plot([p["cost"] for p in res["pareto"]], [p["quality"] for p in res["pareto"]],
                       label=f"{res['router']} (AIQ {_fmt(res['aiq'], 3)})",
                       marker="s" if len(res["pareto"]) == 1 else None)
        ax.scatter([p["cost"] for p in res["curve"]], [p["quality"] for p in res["curve"]],
                   s=6, color=line[0].get_color(), alpha=0.5)
    _plot_singles(ax, first["singles"])
    oracle = first["oracle"]
    ax.scatter([oracle["cost"]], [oracle["quality"]], marker="*", s=120, c="gold",
               edgecolors="k", label="oracle", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("average cost per request (USD, log scale)")
    ax.set_ylabel("average quality")


SINGLE_MARKERS = "ovD^<>pPXhd*"


def _plot_singles(ax: Any, singles: dict[str, Any]) -> None:
    """Each single model its own marker, named in a legend beside the plot: name labels
    next to the points overlap wherever models cost about the same."""
    import matplotlib.pyplot as plt

    handles = []
    for i, (model, point) in enumerate(singles.items()):
        handles.append(ax.scatter([point["cost"]], [point["quality"]], zorder=3, s=28,
                                  marker=SINGLE_MARKERS[i % len(SINGLE_MARKERS)],
                                  color=plt.get_cmap("tab20")(i % 20), edgecolors="k",
                                  linewidths=0.4, label=model.split("/")[-1]))
    ax.add_artist(ax.legend(handles=handles, title="single models", fontsize=6,
                            title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0)))


def markdown(results: Sequence[Result], plot: str | None = None) -> str:
    first = results[0]
    lines = [f"# Router evaluation: {first['data']}", "",
             f"- protocol: {first['protocol']}", f"- test prompts: {first['n_test']}",
             f"- models: {', '.join(first['models'])}", ""]
    lines += _two_table(results) if first["kind"] == "two-model" else _many_table(results)
    notes = sorted({n for r in results for n in r.get("notes", [])})
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    if plot:
        lines += ["", f"![curves]({plot})"]
    return "\n".join(lines) + "\n"


def _two_table(results: Sequence[Result]) -> list[str]:
    first = results[0]
    out = [f"Weak model {first['weak']['model']}: {_pct(first['weak']['quality'])}; strong "
           f"model {first['strong']['model']}: {_pct(first['strong']['quality'])}; oracle "
           f"{_pct(first['oracle']['quality'])} at {_pct(first['oracle']['strong_share'])} "
           "strong calls.", "",
           "| router | APGR | CPT(20%) | CPT(50%) | CPT(80%) | ROC AUC |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        out.append(f"| {r['router']} | {_fmt(r['apgr'])} | {_pct(r['cpt20'])} | "
                   f"{_pct(r['cpt50'])} | {_pct(r['cpt80'])} | {_fmt(r['auc'])} |")
    out.append("| random (baseline) | 0.5000 | 20.0% | 50.0% | 80.0% | 0.5 |")
    return out


def _many_table(results: Sequence[Result]) -> list[str]:
    first = results[0]
    best = first["best_single"]
    out = [f"Best single model {best['model']}: quality {best['quality']:.4f} at "
           f"${best['cost']:.6f}/request; oracle {first['oracle']['quality']:.4f} at "
           f"${first['oracle']['cost']:.6f}; AIQ of the single models' front "
           f"{first['singles_aiq']:.4f} over ${first['cost_range'][0]:.6f}–"
           f"${first['cost_range'][1]:.6f}.", "",
           "| router | AIQ | $ to 90% of best | $ to 95% | $ to 100% | policy |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        reach = r["cost_to_reach"]
        out.append(f"| {r['router']} | {_fmt(r['aiq'])} | {_fmt(reach['90%'], 6)} | "
                   f"{_fmt(reach['95%'], 6)} | {_fmt(reach['100%'], 6)} | {r['policy']} |")
    out += ["", "| model | avg cost ($) | quality |", "| --- | --- | --- |"]
    out += [f"| {m} | {p['cost']:.6f} | {p['quality']:.4f} |"
            for m, p in first["singles"].items()]
    return out


def write_report(results: Sequence[Result], path: str | Path, plot: str | None) -> Path:
    """The Markdown report; the plot is linked relative to the report, so both can move."""
    out = Path(path).expanduser()
    if plot:
        plot = os.path.relpath(Path(plot).expanduser().absolute(), out.absolute().parent)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown(results, plot), encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{out}: cannot write the report ({exc})") from None
    return out
