"""The data card (README.md) of a release, generated from its manifest.

The YAML header is the Hugging Face dataset-card header (license, splits as data files),
so `datasets` and the Hub read the release as it is. License and credit of the source
data come from `[release] license` and `credit` in feedback.toml; without them, examples
from a known public source (BANKING77, the sample data's origin) get that source's
license, and the credit text of `sample_data/README.md` when it is there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..review.taxonomy import describe

SAMPLE_README = Path(__file__).resolve().parents[2] / "sample_data" / "README.md"  # in a source checkout

KNOWN_SOURCES = {
    "banking77": {
        "license": "cc-by-4.0",
        "credit": "BANKING77 (CC BY 4.0). Casanueva, Temčinas, Gerz, Henderson, Vulić. \"Efficient Intent "
                  "Detection with Dual Sentence Encoders\". Proceedings of the 2nd Workshop on NLP for ConvAI, "
                  "ACL 2020.",
        "readme": SAMPLE_README,
    },
}


def license_and_credit(config: dict, sources: list[str]) -> dict:
    """The license and credit for a release whose examples come from `sources`."""
    if config.get("license") or config.get("credit"):
        return {"license": config.get("license") or "other", "credit": config.get("credit") or ""}
    for prefix, known in KNOWN_SOURCES.items():
        if any(s and s.startswith(prefix) for s in sources):
            return {"license": known["license"], "credit": _credit_section(known["readme"]) or known["credit"]}
    return {"license": "unknown", "credit": ""}


def render_card(manifest: dict) -> str:
    """README.md for a release."""
    m = manifest
    splits = [name for name, info in m["splits"].items() if info["rows"]]
    sections = [
        _header(m, splits),
        f"# {m['dataset']} {m['version']}\n\n{m['examples']:,} labeled text examples of `{m['dataset']}`: "
        f"{_origin(m['examples'], m['provenance'].get('imported', 0))}.\n\n"
        f"- release_id: `{m['release_id']}`\n- parent: {_parent(m)}\n- built: {m['created_at'][:19].replace('T', ' ')} UTC"
        f"{' by ' + m['created_by'] if m['created_by'] else ''}, from the store at event {m['recipe']['watermark']['event_seq']}"
        f"\n- files: `data/<split>-*.parquet` (id, text, label), `index.parquet` (split, row hash, duplicate group, "
        f"the decision behind each example), `manifest.json`, `diff.json`, `SHA256SUMS`",
        _loading(m, splits),
        _counts(m),
        _decisions(m),
        _splits(m),
        _gates(m),
        _caveats(m),
        _changes(m),
        _taxonomy_changes(m),
        f"## License and credit\n\nLicense: {m['license']['license']}\n\n{m['license']['credit'] or 'No credit recorded.'}",
    ]
    return "\n\n".join(sections) + "\n"


def _header(m: dict, splits: list[str]) -> str:
    q = json.dumps  # JSON strings are YAML strings
    lines = ["---", f"license: {m['license']['license']}", f"pretty_name: {q(m['dataset'] + ' ' + m['version'])}",
             "task_categories:", "- text-classification", "configs:", "- config_name: default", "  data_files:"]
    for name in splits:
        lines += [f"  - split: {q(name)}", f"    path: {q('data/' + name + '-*.parquet')}"]
    lines += ["dataset_info:", "  features:", "  - name: id", "    dtype: string", "  - name: text", "    dtype: string",
              "  - name: label", "    dtype:", "      class_label:", "        names:"]
    lines += [f"          {q(str(number))}: {q(name)}" for number, name in enumerate(m.get("class_names", []))]
    return "\n".join(lines + ["---"])


def _loading(m: dict, splits: list[str]) -> str:
    first = m["splits"][splits[0]]["files"][0] if splits else "data/train-00000-of-00001.parquet"
    return ("## Loading\n\n```python\nimport pandas as pd\n"
            f"{splits[0] if splits else 'train'} = pd.read_parquet({json.dumps(first)})  # each split's files: manifest.json\n\n"
            "from datasets import load_dataset\n"
            f"ds = load_dataset(\".\")  # this folder; splits: {', '.join(splits)}; labels as ClassLabel\n\n"
            "import duckdb\nduckdb.sql(\"SELECT label, count(*) FROM 'data/*.parquet' GROUP BY label\")\n```\n\n"
            "Check a copy with `sha256sum -c SHA256SUMS`.")


def _origin(examples: int, imported: int) -> str:
    reviewed = examples - imported
    parts = [f"{imported:,} imported from labeled data the team already had"] * bool(imported)
    parts += [f"{reviewed:,} reviewed by people in feedback-workbench from production traffic"] * bool(reviewed)
    return " and ".join(parts) or "none"


def _parent(m: dict) -> str:
    return f"{m['parent']['version']} (`{m['parent']['release_id']}`)" if m["parent"] else "none (first release)"


def _counts(m: dict) -> str:
    names = list(m["splits"])
    rows = [f"| {label} | " + " | ".join(f"{c.get(s, 0):,}" for s in names) + f" | {sum(c.values()):,} |"
            for label, c in sorted(m["labels"].items())]
    total = "| **total** | " + " | ".join(f"{m['splits'][s]['rows']:,}" for s in names) + f" | {m['examples']:,} |"
    return "\n".join([f"## Counts\n\n| label | {' | '.join(names)} | total |",
                      "|---" * (len(names) + 2) + "|", *rows, total])


def _decisions(m: dict) -> str:
    p = m["provenance"]
    agreement = m["agreement"]
    measured = (f"Krippendorff's alpha {agreement['alpha']:.3f} over {agreement['items_with_overlap']} items decided by "
                f"two or more reviewers." if agreement and agreement["alpha"] is not None
                else "No items were decided by two or more reviewers, so agreement was not measured.")
    return ("## How labels were decided\n\nEvery label is a reviewer's decision in the workbench, or was imported "
            "from labeled data the team already had; a user's correction in production only sent the item to review. "
            f"{p.get('imported', 0):,} labels were imported (provenance `import`: the decision's note names the file "
            "and row) and stand until a reviewer decides the item; "
            f"{p['one_reviewer']:,} labels come from the decision of the one reviewer who saw the item, "
            f"{p['several_reviewers']:,} from items two or more reviewers decided (by the rule in feedback.review.state), "
            f"{p['adjudicated']:,} from a lead's adjudication; {p['reviewers']} people set the labels. "
            f"{measured}")


def _splits(m: dict) -> str:
    policy = m["split_policy"]
    ratios = ", ".join(f"{k} {v:g}" for k, v in policy["ratios"].items())
    group = {"near_duplicate": f"near-duplicate group (similarity >= {policy.get('threshold')})",
             "exact": "exact-duplicate group (identical text)",
             "source": "source", "item": "example"}[policy["group_by"]]
    return (f"## Splits\n\nA new example's split comes from a salted hash (salt `{policy['salt']}`) of its "
            f"{group}, over the ratios {ratios}; an example keeps the split it had in earlier releases, and a "
            "new near-copy joins its group's split, so test examples never leak into train as data grows.")


def _gates(m: dict) -> str:
    rows = [f"| {g['gate']} | {g['status']}{' (overridden)' if g.get('overridden') else ''} | "
            f"{g['detail'].replace('|', '/')} |" for g in m["gates"]]
    return "\n".join(["## Quality gates\n\n| gate | result | detail |", "|---|---|---|", *rows])


def _caveats(m: dict) -> str:
    notes = [f"Gate {g['gate']} was overridden: {g['detail']} Reason: {m['overrides']['reason']}"
             for g in m["gates"] if g.get("overridden")]
    notes += [f"Gate {g['gate']} warns: {g['detail']}" for g in m["gates"] if g["status"] == "warn"]
    if m["missing_labels"]:
        notes.append(f"Taxonomy labels without examples: {', '.join(m['missing_labels'])}.")
    if m["excluded"]["no_text"]:
        notes.append(f"{m['excluded']['no_text']:,} labeled items were left out because they have no text "
                     "(purged, or captured with features only).")
    notes.append("Examples come from production traffic that reviewers chose to look at (corrections, errors, "
                 "low-confidence predictions, active learning), so the label distribution is not the traffic's.")
    if m["license"]["license"] == "unknown":
        notes.append("The source data's license is not recorded: set [release] license and credit in feedback.toml.")
    return "## Known caveats\n\n" + "\n".join(f"- {n}" for n in notes)


def _changes(m: dict) -> str:
    d = m["diff"]
    matrix = ", ".join(f"{r['from']} -> {r['to']} ({r['count']})" for r in d["relabel_matrix"][:10])
    return (f"## Changes from the parent\n\n{d['added']:,} added, {d['removed']:,} removed, {d['relabeled']:,} "
            f"relabeled{': ' + matrix if matrix else ''}; {d['split_moves']} split moves. Details in `diff.json`.")


def _taxonomy_changes(m: dict) -> str:
    names = m.get("class_names", [])
    retired = [f"{names.index(n)} {n}" for n in m.get("retired_classes", [])]
    lines = [f"- `{c['change_id']}` {describe(c)} by {c['by']} on {c['changed_at'][:10]}: {c['examples']:,} examples "
             f"of this release touched{' (undone ' + c['undone_at'][:10] + ')' if c['undone_at'] else ''}"
             f"{'; ' + c['note'] if c['note'] else ''}" for c in m.get("taxonomy_changes", [])]
    text = "\n".join(lines) or "None since the parent release."
    if retired:
        text += (f"\n\nRetired classes (ids kept, no examples): {', '.join(retired)}. A retired id is never given to "
                 "another label; a model trained on an earlier release may still predict it.")
    return f"## Taxonomy changes\n\n{text}"


def _credit_section(readme) -> str:
    """The 'Licence and credit' section of a README, as one paragraph, if the file has one."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return ""
    found = re.search(r"^## Licen[cs]e and credit\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    return " ".join(found.group(1).split()) if found else ""
