"""The lab's Table 2: gradient-based similarity of PRM-chosen responses (`prmbench.similarity`).

Four response sets, from the search runs' records at the largest budget: ``MathPRM`` (the
solutions best-of-N with the math-trained PRM chose on lab_math), ``CodePRM`` (the code-trained
PRM's choices on lab_code), ``Math`` and ``Code`` (best-of-N with the random reward model: plain
samples of each domain). S of the paper's four pairs is computed with each domain's annotator-a
policy as the reference model (the paper uses one reference LM; here neither policy has seen the
other domain, so both are shown).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

PAIRS = (("MathPRM", "CodePRM"), ("MathPRM", "Code"), ("Math", "CodePRM"), ("Math", "Code"))


def response_sets(cells: Mapping[str, Any]) -> dict[str, list[str]]:
    """Set name -> chosen texts, from `cells` (set name -> CellResult)."""
    return {name: [r["chosen_text"] for r in cell.records if isinstance(r.get("chosen_text"), str)]
            for name, cell in cells.items()}


def similarity_table(sets: Mapping[str, list[str]], references: Mapping[str, Path]) -> dict[str, Any]:
    """S for every pair of `PAIRS` under every reference model (name -> model folder)."""
    from prmbench.similarity import activation_similarity, load_reference_model

    out: dict[str, Any] = {"pairs": [list(p) for p in PAIRS], "sizes": {k: len(v) for k, v in sets.items()},
                           "S": {}}
    for ref, folder in references.items():
        model, tok = load_reference_model(str(folder), device="cpu")
        out["S"][ref] = {f"{a} vs {b}": round(activation_similarity(model, tok, sets[a], sets[b], batch_size=16).S, 4)
                         for a, b in PAIRS}
    return out
