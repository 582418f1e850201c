"""The whole feedback.toml `config_file.render` writes: every section, every key at its default, each with a comment."""

import re
import subprocess
import sys
import tomllib

import pytest
from conftest import LABELS, REPO, configure

from feedback import Workspace
from feedback.config_file import COMMENTS, EXAMPLES, SECTIONS, defaults, render

def _section(config: dict, name: str) -> dict:
    """The keys of section `name` ("release.gates" too), without its sub-sections."""
    for part in name.split("."):
        config = config.get(part, {})
    return {key: value for key, value in config.items() if f"{name}.{key}" not in defaults()}


def _written(values: dict) -> dict:
    return {key: value for key, value in values.items() if value is not None}


def written(root, *args) -> Workspace:
    """A workspace folder whose feedback.toml is `render(*args)` (the store is made on first use)."""
    root.mkdir()
    (root / "feedback.toml").write_text(render(*args))
    return Workspace(root)


def test_the_file_parses_back_to_every_default(tmp_path):
    open_ws = written(tmp_path / "w", "default", [])
    parsed = tomllib.loads((open_ws.root / "feedback.toml").read_text())
    for name, values in defaults().items():
        expected = _written(values) if name != "taxonomy" else {"mode": "open"}
        assert _section(parsed, name) == expected, name
        assert {**values, **_section(open_ws.config, name)} == values, name  # what each reader makes of it
    assert open_ws.config["taxonomy"] == {"mode": "open", "labels": []} and open_ws.store_url is None


def test_the_readers_see_their_defaults(tmp_path):
    from feedback.capture.items import DEFAULT_WEIGHTS, weights
    from feedback.hooks import DEFAULTS as HOOKS
    from feedback.learn.drift import DEFAULTS as DRIFT, drift_config
    from feedback.learn.model import model_factory
    from feedback.release.gates import DEFAULTS as GATES
    from feedback.release.releases import DEFAULTS as RELEASE, release_config
    from feedback.review.state import REVIEW_DEFAULTS, review_config
    from feedback.roles import SIGN_IN_DEFAULTS, sign_in_config

    open_ws = written(tmp_path / "w", "test", [])
    assert review_config(open_ws) == REVIEW_DEFAULTS and weights(open_ws) == DEFAULT_WEIGHTS
    assert release_config(open_ws) == {**RELEASE, "gates": GATES}
    assert drift_config(open_ws) == DRIFT and sign_in_config(open_ws) == SIGN_IN_DEFAULTS
    assert {**HOOKS, **open_ws.config["hooks"]} == HOOKS and model_factory(open_ws.config)[0] is None


def test_every_key_has_a_comment_and_every_unset_key_an_example():
    missing = [f"{name}.{key}" for name, values in defaults().items() for key in values
               if key not in COMMENTS.get(name, {})]
    assert not missing, f"add a comment for {', '.join(missing)} to feedback.config_file.COMMENTS"
    unset = [f"{name}.{key}" for name, values in defaults().items() for key, value in values.items()
             if value is None and (name, key) not in EXAMPLES]
    assert not unset, f"add an example for {', '.join(unset)} to feedback.config_file.EXAMPLES"
    assert set(SECTIONS) == set(defaults())


def test_every_section_and_key_the_code_reads_is_in_the_file():
    sections, keys = defaults(), set()
    for path in (REPO / "feedback").rglob("*.py"):
        source = path.read_text()
        keys |= {(a or b, "") for a, b in re.findall(r'ws\.config\["(\w+)"\]|config\.get\("(\w+)", \{\}\)', source)}
        keys |= set(re.findall(r'config\.get\("(\w+)", \{\}\)\.get\("(\w+)"', source))
    known = {*sections, *(name.split(".")[0] for name in sections)}
    missing = [f"{s}.{k}" if k else s for s, k in sorted(keys)
               if s not in known or k and f"{s}.{k}" not in sections and k not in sections.get(s, {})]
    assert not missing, f"read from feedback.toml but not in feedback.config_file.defaults(): {', '.join(missing)}"


def test_each_key_has_its_comment_above_it():
    text = render("intents", [{"name": "refund"}, {"name": "card_lost"}])
    assert "[release.gates]\n# the least Krippendorff's alpha between reviewers\nmin_agreement = 0.6\n" in text
    assert '# on_release = "./train.sh"' in text and '# url = "postgresql://' in text


@pytest.mark.backends
def test_a_workspace_with_labels_and_a_store_url(tmp_path, store_url):
    ws = written(tmp_path / "w", "test", [{"name": name} for name in LABELS], store_url)
    assert [label.name for label in ws.taxonomy.labels] == LABELS and ws.taxonomy.mode == "fixed"
    assert ws.store_url == store_url
    with ws.store().connect() as tx:
        assert tx.value("SELECT count(*) FROM events") == 0


def test_labels_with_descriptions_and_hotkeys(tmp_path):
    entries = [{"name": "refund", "description": "asks for \"money\" back", "hotkey": "r"}, {"name": "café"}]
    ws = written(tmp_path / "w", "test", entries)
    assert [(la.name, la.description, la.hotkey) for la in ws.taxonomy.labels] == [
        ("refund", 'asks for "money" back', "r"), ("café", "", "")]


def test_configure_sets_keys_in_their_section(tmp_path):
    ws = configure(written(tmp_path / "w", "test", []), "release", splits={"train": 0.5, "test": 0.5}, license="cc-by-4.0")
    ws = configure(ws, "review", overlap_share=1.0)
    ws = configure(ws, "queue.weights", error=5.0)
    ws = configure(ws, "extra", flag=True)
    assert ws.config["release"]["splits"] == {"train": 0.5, "test": 0.5} and ws.config["release"]["license"] == "cc-by-4.0"
    assert ws.config["review"]["overlap_share"] == 1.0 and ws.config["queue"]["weights"]["error"] == 5.0
    assert ws.config["extra"] == {"flag": True} and ws.config["sign_in"] == defaults()["sign_in"]


def test_a_label_added_later_lands_in_the_taxonomy(tmp_path):
    from feedback.roles import add_label, local_actor

    ws = add_label(written(tmp_path / "w", "test", []), local_actor(), "refund", hotkey="r")
    assert [(la.name, la.hotkey) for la in ws.taxonomy.labels] == [("refund", "r")]
    assert ws.config["sign_in"] == defaults()["sign_in"]


def test_importing_the_module_stays_light():
    code = "import sys, feedback.config_file; print(sorted({'pandas', 'pyarrow', 'sklearn', 'numpy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_feedback_init_writes_every_section(tmp_path, cli):
    done = cli("init", tmp_path / "ws", "--label", "refund", "--label", "card_lost")
    assert done.exit_code == 0, done.output
    text = (tmp_path / "ws" / "feedback.toml").read_text()
    assert [line[1:-1] for line in re.findall(r"^\[[a-z_.]+\]$", text, flags=re.M)] == list(defaults())
    assert "gold_labels = true" in text and "# on_release = " in text
    assert Workspace(tmp_path / "ws").taxonomy.offered == ("refund", "card_lost")
