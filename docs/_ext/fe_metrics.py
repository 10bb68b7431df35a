"""The table of metrics, generated from the metric registry (``fairensemble.metrics``): every
registered metric with its scope, which way it is better, what it needs and its one-line
definition, linked to its function (whose docstring holds the formula). A metric registered
in the code appears here on its own. Nothing here needs Sphinx."""

from __future__ import annotations

from fe_cli import rst_text


def metrics_rst() -> str:
    from fairensemble import metrics as M

    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 18 10 10 16 46",
             "   :class: fe-formats", "",
             "   * - metric", "     - scope", "     - better", "     - needs",
             "     - definition"]
    for name in M.names():
        m = M.get(name)
        scope = "per group" if m.scope == "group" else "between groups"
        needs = ", ".join(sorted(m.needs))
        binary = " (binary tasks only)" if m.classes == "binary" else ""
        lines += [f"   * - :py:func:`{name} <fairensemble.metrics.{name}>`", f"     - {scope}",
                  f"     - {m.direction}", f"     - {needs}",
                  f"     - {rst_text(m.summary)}{binary}"]
    return "\n".join(lines) + "\n"


__all__ = ["metrics_rst"]
