"""The active-learning sampler: strategies on hand-made cases, diversity, quotas, runs on a real store, the lock."""

import csv
import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from feedback import ingest_files
from feedback.cli.shell import Shell
from feedback.cli.learn import sample as sample_command, suspects as suspects_command
from feedback.roles import Actor
from feedback.learn import sample, sampler_report, select, uncertainty
from feedback.learn import sampler
from feedback.learn.strategies import COLD_START_LABELS, cold_start_weight
from feedback.errors import FeedbackError
from feedback.learn.jobs import job_lock
from feedback.review import decide, import_labels, item, queue_page, relabel_group
from conftest import REPO, configure

pytestmark = pytest.mark.backends

ALICE = Actor("alice", "reviewer")
# p1 >= 0.5 everywhere, so no item is queued for low confidence on its own.
CASES = {
    "p": {"card_arrival": 0.50, "card_linking": 0.25, "refund_not_showing_up": 0.25},
    "q": {"card_arrival": 0.55, "card_linking": 0.44, "refund_not_showing_up": 0.01},
    "r": {"card_arrival": 0.52, "card_linking": 0.12, "refund_not_showing_up": 0.12, "lost_or_stolen_card": 0.12,
          "other": 0.12},
    "a": {"card_arrival": 0.90, "card_linking": 0.05, "refund_not_showing_up": 0.05},
}
EXPECTED = {"least_confidence": ["p", "r", "q", "a"], "margin": ["q", "p", "r", "a"], "entropy": ["r", "p", "q", "a"]}


def matrix(cases):
    width = max(len(c) for c in cases.values())
    return np.array([sorted(c.values(), reverse=True) + [0.0] * (width - len(c)) for c in cases.values()])


def load(ws, tmp_path, events):
    path = tmp_path / f"events-{len(list(tmp_path.glob('events-*')))}.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert ingest_files(ws, [path]).quarantined == 0
    return ws


def predicted(item_id, probs, *, text=None, version="v1"):
    label = max(probs, key=probs.get)
    return {"type": "prediction", "item_id": item_id, "ts": f"2026-11-0{version[1:]}T10:00:00Z",
            "input": {"text": text or f"text of {item_id}"},
            "prediction": {"label": label, "score": probs[label], "probs": probs, "model": "clf",
                           "model_version": version}}


@pytest.fixture
def pool(open_ws, tmp_path):
    """Four unlabeled items with the hand-made probabilities."""
    return load(open_ws, tmp_path, [predicted(i, p) for i, p in CASES.items()])


def queued(ws, reason="active_learning"):
    return [r["item_id"] for r in ws.store().rows(
        "SELECT item_id FROM queue_reasons WHERE reason = ? ORDER BY item_id", [reason])]


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_each_strategy_ranks_the_hand_made_cases(strategy):
    scores = uncertainty(matrix(CASES), strategy)
    assert [list(CASES)[i] for i in np.argsort(-scores)] == EXPECTED[strategy]
    assert ((0 <= scores) & (scores <= 1)).all()


def test_strategy_formulas_and_truncated_rows():
    top = np.array([[0.9, 0.05, 0.05], [0.5, 0.0, 0.0]])  # the second row stored only its top label
    assert uncertainty(top, "least_confidence") == pytest.approx([0.1, 0.5])
    assert uncertainty(top, "margin") == pytest.approx([0.15, 1.0])  # the missing 0.5 may be one runner-up
    assert uncertainty(top, "margin", classes=6) == pytest.approx([0.15, 0.6])  # or five of 0.1
    assert uncertainty(np.full((1, 4), 0.25), "entropy") == pytest.approx([1.0])


def test_truncated_rows_are_ranked_by_their_real_margin():
    """150 classes, each row stored with its top 10 (the missing mass is most of it): the ranking follows the
    margin of the full rows, and the most uncertain tenth are items the model is unsure of."""
    rng = np.random.default_rng(3)
    full = rng.dirichlet(np.full(150, 0.5), size=2000)  # the top 10 keep a third of the mass
    top = np.sort(full, axis=1)[:, ::-1][:, :10]
    real = uncertainty(full, "margin")
    for classes in (150, None):
        kept = uncertainty(top, "margin", classes=classes)
        assert np.corrcoef(np.argsort(np.argsort(kept)), np.argsort(np.argsort(real)))[0, 1] > 0.95
        unsure = np.argsort(-kept)[:200]
        assert top[unsure, 0].mean() < top[:, 0].mean()
    with pytest.raises(ValueError, match="strategy 'smallest' is not one of"):
        uncertainty(top, "smallest")


def test_diversity_step_spreads_a_batch_over_a_pool_of_near_copies():
    copies = [f"where is my new card{'!' * (i % 3)} it has {'still ' * (i % 2)}not arrived {i % 4}" for i in range(40)]
    events = map(json.loads, (REPO / "sample_data" / "events.jsonl").read_text().splitlines())
    others = list(dict.fromkeys(e["input"]["text"] for e in events if e["type"] == "prediction"))[:60]
    texts = copies + others
    scores = np.r_[np.linspace(0.95, 0.9, 40), np.linspace(0.8, 0.5, 60)]  # the near-copies score highest

    plain = select(scores, texts, budget=10, diversity="none")
    diverse = select(scores, texts, budget=10, diversity="kmeans", seed=3)
    assert list(plain) == list(range(10))
    assert len(set(diverse)) == 10 and sum(i < 40 for i in diverse) <= 2
    assert diverse[0] == 0  # the best cluster's best item still comes first


def test_a_cold_start_picks_typical_texts_and_uncertainty_takes_over_as_labels_grow():
    topics = {"card": ["my card has not arrived yet", "my new card has not arrived", "card not arrived yet",
                       "the card has still not arrived", "has my card arrived yet"],
              "refund": ["i want a refund of my money", "refund my money please", "where is my money refund",
                         "i want my money back as a refund", "money refund not received"],
              "pin": ["my pin is blocked", "pin blocked after three tries", "unblock my pin",
                      "my pin is still blocked", "how to unblock a blocked pin"]}
    odd = ["card not arrived yet, courier dropped parcel in rain", "refund money, cheque came in stranger name",
           "pin blocked, cashpoint in lisbon ate it at midnight"]
    texts = [t for group in topics.values() for t in group] + odd
    scores = np.r_[np.linspace(0.5, 0.3, 15), [0.9, 0.9, 0.9]]  # the odd ones out look the most uncertain
    topic = [name for name, group in topics.items() for _ in group] + list(topics)

    warm = select(scores, texts, budget=3, seed=1)
    cold = select(scores, texts, budget=3, seed=1, labels_per_class=0)
    assert len(set(warm) & {15, 16, 17}) >= 2  # with labels enough, the most uncertain lead their clusters
    assert all(i < 15 for i in cold) and {topic[i] for i in cold} == set(topics)
    assert list(select(scores, texts, budget=3, seed=1, labels_per_class=COLD_START_LABELS)) == list(warm)
    assert cold_start_weight(None) == 0 and cold_start_weight(0) == 1 and 0 < cold_start_weight(4) < 1


def test_quotas_cap_the_picks_per_value():
    labels = np.array(["a"] * 6 + ["b"] * 2 + ["c"] * 2)
    picks = select(np.linspace(1, 0, 10), [""] * 10, budget=6, diversity="none", quotas=[(labels, 2)])
    assert list(picks) == [0, 1, 6, 7, 8, 9]


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_a_run_queues_the_top_items_with_their_scores_and_records_itself(pool, strategy):
    run = sample(pool, budget=3, strategy=strategy, diversity="none")
    assert run["status"] == "done" and run["picked"] == 3
    assert [p["item_id"] for p in run["picks"]] == EXPECTED[strategy][:3]
    stored = {r["item_id"]: r for r in pool.store().rows("SELECT * FROM queue_reasons")}
    assert set(stored) == set(EXPECTED[strategy][:3])
    first = run["picks"][0]
    assert stored[first["item_id"]]["score"] == pytest.approx(first["score"])
    assert json.loads(stored[first["item_id"]]["detail"]) == {"run_id": run["run_id"], "strategy": strategy, "rank": 1}
    (record,) = pool.store().rows("SELECT * FROM sampler_runs")
    assert (record["run_id"], record["picked"], record["status"], record["model"]) == (
        run["run_id"], 3, "done", "stored probabilities of model version v1")
    assert json.loads(record["params"])["budget"] == 3


def test_runs_never_queue_an_item_twice_and_say_when_there_is_nothing_to_do(pool):
    first = sample(pool, budget=2, diversity="none")
    second = sample(pool, budget=2, diversity="none")
    assert {p["item_id"] for p in first["picks"]} == {"q", "p"}
    assert {p["item_id"] for p in second["picks"]} == {"r", "a"}
    third = sample(pool, budget=2)
    assert third["status"] == "nothing_to_do" and third["picked"] == 0
    assert third["message"].startswith("nothing to do: every item with text is labeled, waiting as an earlier pick")
    assert queued(pool) == ["a", "p", "q", "r"]
    assert pool.store().value("SELECT count(*) FROM sampler_runs") == 3


def test_labeled_items_are_not_picked_and_items_queued_for_other_reasons_gain_the_reason(open_ws, tmp_path):
    ws = load(open_ws, tmp_path, [predicted(i, p) for i, p in CASES.items()] + [
        {"type": "correction", "item_id": "p", "correction": {"label": "card_linking"}}])
    decide(ws, ALICE, "q", "card_linking")
    before = item(ws, "p")
    run = sample(ws, budget=4, diversity="none")
    assert [p["item_id"] for p in run["picks"]] == ["p", "r", "a"]
    after = item(ws, "p")
    assert set(after["reasons"]) == set(before["reasons"]) | {"active_learning"} and "correction" in after["reasons"]
    assert after["priority"] == pytest.approx(before["priority"] + 0.7 * run["picks"][0]["score"])
    assert sample(ws, budget=4)["status"] == "nothing_to_do"  # never twice, however long the picks wait


def test_the_write_leaves_out_picks_another_writer_queued_after_the_read(pool, monkeypatch):
    plan = sampler._plan

    def plan_then_someone_labels_q(*args):
        planned = plan(*args)
        decide(pool, ALICE, "q", "card_arrival")
        return planned

    monkeypatch.setattr(sampler, "_plan", plan_then_someone_labels_q)
    run = sample(pool, budget=2, diversity="none")
    assert [p["item_id"] for p in run["picks"]] == ["p"]
    assert run["message"] == ("queued 1 of 4 scored items (stored probabilities of model version v1); "
                              "1 of the picks were queued or labeled meanwhile and left out")
    assert queued(pool) == ["p"]


def test_a_run_key_makes_a_retried_run_do_nothing(pool):
    first = sample(pool, budget=1, key="2026-11-01T10")
    again = sample(pool, budget=1, key="2026-11-01T10")
    assert again["status"] == "repeat" and again["run_id"] == first["run_id"]
    assert again["message"] == f"run key '2026-11-01T10' already ran as {first['run_id']}; nothing done"
    assert len(queued(pool)) == 1


def test_dry_run_shows_the_picks_and_writes_nothing(pool):
    run = sample(pool, budget=2, dry_run=True, diversity="none")
    assert run["status"] == "dry_run" and [p["item_id"] for p in run["picks"]] == ["q", "p"]
    assert queued(pool) == [] and pool.store().value("SELECT count(*) FROM sampler_runs") == 0


def test_stale_probabilities_are_not_used_and_a_fitted_model_takes_over(open_ws, tmp_path):
    old = [predicted(f"old-{i}", CASES["q"], text=f"card {i} has not arrived yet", version="v1") for i in range(6)]
    new = [predicted(f"new-{i}", CASES["a"], text=f"please refund my order {i}", version="v2") for i in range(2)]
    ws = load(open_ws, tmp_path, old + new)
    stored = sample(ws, budget=5, probabilities="stored", dry_run=True)
    assert (stored["pool"], stored["scored"]) == (8, 2)
    assert {p["item_id"] for p in stored["picks"]} == {"new-0", "new-1"}

    assert sample(ws, budget=5, dry_run=True)["scored"] == 2  # auto: no model to fit yet
    fit = sample(ws, budget=5, probabilities="fit")
    assert fit["status"] == "nothing_to_do"
    assert fit["message"] == ("nothing to do: 0 trusted labels; fitting a model needs 20 in two labels or more "
                              "(label more items, or use the stored probabilities)")

    texts = {"card_arrival": "where is my card {}", "refund_not_showing_up": "my refund {} is not showing"}
    load(ws, tmp_path, [predicted(f"{label}-{i}", CASES["a"], text=text.format(i), version="v1")
                        for label, text in texts.items() for i in range(11)])
    for label in texts:
        relabel_group(ws, ALICE, [f"{label}-{i}" for i in range(11)], label)
    fitted = sample(ws, budget=5, dry_run=True)
    assert fitted["model"] == "tf-idf + logistic regression fitted on 22 trusted labels"
    assert fitted["scored"] == 8 and len(fitted["picks"]) == 5


def test_a_flooded_queue_does_not_starve_the_sampler(open_ws, tmp_path):
    configure(open_ws, "review", low_confidence=0.99)  # every prediction is queued for low confidence
    ws = load(open_ws.__class__(open_ws.root), tmp_path,
              [predicted(f"i{n}", CASES["pqra"[n % 4]], text=f"request number {n}") for n in range(40)])
    assert all("low_confidence" in r["reasons"] for r in queue_page(ws, limit=100)) and len(queue_page(ws, limit=100)) == 40
    run = sample(ws, budget=30, diversity="none")
    assert (run["pool"], run["picked"]) == (40, 30)


def test_score_only_logs_are_sampled_by_least_confidence_before_there_are_labels_to_fit(open_ws, tmp_path):
    events = [{"type": "prediction", "item_id": f"s{n}", "input": {"text": f"question {n}"},
               "prediction": {"label": "card_arrival", "score": score}} for n, score in enumerate([0.9, 0.3, 0.6, 0.1])]
    events.append({"type": "item", "item_id": "no-score", "input": {"text": "an unlabeled request"}})
    ws = load(open_ws, tmp_path, events)
    run = sample(ws, budget=2, diversity="none")
    assert run["status"] == "done" and [p["item_id"] for p in run["picks"]] == ["s3", "s1"]
    assert run["model"] == "least confidence on the logged top-1 scores (too few labels to fit)" and run["scored"] == 4


def test_a_first_run_with_nothing_but_texts_picks_typical_ones_and_a_few_labels_are_enough_to_fit(open_ws, tmp_path):
    topics = {"card_arrival": ["my card delivery has not arrived {}", "card delivery has not arrived yet {}",
                               "has my card delivery arrived {}"],
              "refund_not_showing_up": ["my refund is not showing {}", "refund is not showing yet {}"],
              "lost_or_stolen_card": ["a thief stole my wallet {}", "thief stole my wallet on the train {}"]}
    events = [{"type": "item", "item_id": f"{label}-{k}-{n}", "input": {"text": text.format(n)}}
              for label, texts in topics.items() for k, text in enumerate(texts) for n in range(8)]
    ws = load(open_ws, tmp_path, events)
    first = sample(ws, budget=3, dry_run=True)
    assert first["model"] == "typical texts of the pool (no labels, probabilities or scores yet)"
    assert {p["item_id"].rsplit("-", 2)[0] for p in first["picks"]} == set(topics)  # one per topic, not 3 of one
    for label in topics:
        for n in range(2):
            decide(ws, ALICE, f"{label}-0-{n}", label)
    run = sample(ws, budget=3)
    assert run["status"] == "done" and run["model"] == "tf-idf + logistic regression fitted on 6 trusted labels"


def test_a_round_covers_as_many_true_classes_as_random_picks_would(open_ws, tmp_path):
    rows = list(csv.DictReader((REPO / "sample_data" / "training_labels.csv").open(encoding="utf-8")))[:2400]
    by_label = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    seed_rows = [r for group in by_label.values() for r in group[:2]]
    pool = [r for r in rows if r not in seed_rows]
    load(open_ws, tmp_path, [{"type": "item", "item_id": r["item_id"], "input": {"text": r["text"]}} for r in pool])
    labels_file = tmp_path / "seed.csv"
    with labels_file.open("w", newline="", encoding="utf-8") as out:
        csv.DictWriter(out, ["item_id", "text", "label"]).writerows([{"item_id": "item_id", "text": "text", "label": "label"},
                                                                     *seed_rows])
    import_labels(open_ws, [labels_file], by=Actor("lena", "lead"))
    truth = {r["item_id"]: r["label"] for r in pool}
    picks = [truth[p["item_id"]] for p in sample(open_ws, budget=150)["picks"]]

    rng = np.random.default_rng(0)
    draws = [np.unique(rng.choice(list(truth.values()), 150, replace=False), return_counts=True)[1] for _ in range(200)]
    random_covered, random_most = np.mean([len(d) for d in draws]), np.mean([d.max() for d in draws])
    assert len(picks) == 150 and len(set(picks)) >= random_covered  # measured: 70 classes, random 64.5
    assert max(picks.count(label) for label in set(picks)) <= 1.5 * random_most  # 6, random 6.3


def test_labels_decided_since_the_model_started_make_the_sampler_refit(open_ws, tmp_path):
    texts = {"card_arrival": "where is my card {}", "refund_not_showing_up": "my refund {} is not showing"}
    ws = load(open_ws, tmp_path, [predicted(f"{label}-{i}", CASES["a"], text=text.format(i))
                                  for label, text in texts.items() for i in range(14)])
    assert sample(ws, budget=3, dry_run=True)["model"] == "stored probabilities of model version v1"
    for label in texts:
        relabel_group(ws, ALICE, [f"{label}-{i}" for i in range(11)], label)
    refit = sample(ws, budget=3, dry_run=True)
    assert refit["model"] == "tf-idf + logistic regression fitted on 22 trusted labels" and refit["pool"] == 6


def test_yield_is_the_share_of_reviewed_picks_relabeled_away_from_the_prediction(pool):
    run = sample(pool, budget=3, diversity="none")
    q, p, _ = [pick["item_id"] for pick in run["picks"]]
    decide(pool, ALICE, q, "card_arrival")  # as predicted
    decide(pool, ALICE, p, "card_linking")  # relabeled
    (row,) = sampler_report(pool)["runs"]
    assert (row["picked"], row["reviewed"], row["relabeled"], row["yield"]) == (3, 2, 1, 0.5)
    assert sampler_report(pool)["total"]["yield"] == 0.5


def test_a_run_finds_the_lock_held_and_does_nothing(pool):
    with job_lock(pool, "sample"):
        run = sample(pool, budget=2)
    assert run["status"] == "busy"
    assert re.match(r"another `feedback sample` run is in progress \((feedback sample )?pid \d+", run["message"])
    assert queued(pool) == []


RUN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from feedback import Workspace
    from feedback.learn.sampler import sample
    ws, go = Workspace(sys.argv[1]), Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.001)
    run = sample(ws, budget=10)
    print(json.dumps({"status": run["status"], "picks": [p["item_id"] for p in run["picks"]]}))
""")


def test_two_processes_started_at_once_never_double_queue(open_ws, tmp_path):
    rng = np.random.default_rng(0)
    events = []
    for i in range(30):
        top = rng.uniform(0.5, 0.9)
        events.append(predicted(f"item-{i:02}", {"card_arrival": top, "card_linking": (1 - top) * 0.7},
                                text=f"message number {i} about topic {i % 7}"))
    ws = load(open_ws, tmp_path, events)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RUN, str(ws.root), str(go)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    done = [r for r in results if r["status"] == "done"]
    assert sorted(r["status"] for r in results) in (["busy", "done"], ["done", "done"])
    picked = [i for r in done for i in r["picks"]]
    assert len(picked) == len(set(picked)) == 10 * len(done)
    assert sorted(queued(ws)) == sorted(picked)
    assert ws.store().value("SELECT count(*) FROM sampler_runs") == len(done)


@pytest.fixture
def shell():
    group = Shell(commands=[sample_command, suspects_command])

    def run(*args):
        return CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)

    return run


def test_cli_dry_run_run_report_and_nothing_to_do(shell, pool):
    dry = shell("sample", "-w", pool.root, "--budget", 2, "--diversity", "none", "--dry-run")
    assert dry.exit_code == 0
    assert dry.output.splitlines()[0] == ("Dry run, nothing queued or recorded. Picked 2 of 4 scored items "
                                          "(stored probabilities of model version v1).")
    assert "q" in dry.output.splitlines()[1]
    done = json.loads(shell("sample", "-w", pool.root, "--budget", 4, "--json").output)
    assert done["status"] == "done" and done["picked"] == 4
    nothing = shell("sample", "-w", pool.root)
    assert nothing.exit_code == 0 and nothing.output.startswith("Nothing to do: every item with text is labeled")
    table = shell("sample", "-w", pool.root, "--report").output.splitlines()
    assert table[0].split() == ["run", "started", "(UTC)", "status", "strategy", "picked", "reviewed", "relabeled",
                                "yield"]
    assert table[1].split()[3:] == ["nothing_to_do", "margin", "0", "0", "0", "-"]
    assert table[2].startswith(done["run_id"]) and table[2].split()[3:] == ["done", "margin", "4", "0", "0", "-"]
    assert table[3].split() == ["total", "4", "0", "0", "-"] and len(table) == 5


def test_cli_options_are_checked_and_documented(shell, pool):
    bad = shell("sample", "-w", pool.root, "--quota", "colour=3")
    assert bad.exit_code == 2
    assert "'colour=3' is not FIELD=N with FIELD one of pred_label, model_version, source" in bad.output
    for command in ("sample", "suspects"):
        assert "Example" in shell(command, "--help").output


def test_the_text_model_is_configurable_and_a_bad_one_is_named(open_ws, tmp_path, monkeypatch):
    (tmp_path / "team_models.py").write_text(
        "from sklearn.feature_extraction.text import CountVectorizer\n"
        "from sklearn.naive_bayes import MultinomialNB\n"
        "from sklearn.pipeline import make_pipeline\n"
        "def bayes():\n    return make_pipeline(CountVectorizer(), MultinomialNB())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    texts = {"card_arrival": "where is my card {}", "refund_not_showing_up": "my refund {} is not showing"}
    ws = load(open_ws, tmp_path, [predicted(f"{label}-{i}", CASES["a"], text=text.format(i))
                                  for label, text in texts.items() for i in range(14)])
    for label in texts:
        relabel_group(ws, ALICE, [f"{label}-{i}" for i in range(11)], label)
    configure(ws, "learn", model="team_models:bayes")
    ws = ws.__class__(ws.root)
    assert sample(ws, budget=3, dry_run=True)["model"] == "team_models:bayes fitted on 22 trusted labels"
    path = ws.root / "feedback.toml"
    path.write_text(path.read_text().replace("team_models:bayes", "team_models:nope"))
    with pytest.raises(FeedbackError, match=r"\[learn\] model = 'team_models:nope': cannot load it"):
        sample(ws.__class__(ws.root), budget=3, dry_run=True)


def test_a_text_that_shares_no_word_with_the_trusted_labels_is_not_picked_first(open_ws, tmp_path):
    """Its vector is empty, so the fitted model's probabilities are flat: the most "uncertain" of all, and
    nothing to learn from. It goes last."""
    texts = {"card_arrival": "my card has not arrived", "card_linking": "link my card to the app"}
    events = [predicted(f"t{i}", {label: 0.9}, text=f"{texts[label]} {i}") for i, label in enumerate(list(texts) * 15)]
    events += [predicted(f"u{i}", {"card_arrival": 0.6}, text=f"{texts['card_arrival']} or link it {i}")
               for i in range(5)]
    events += [predicted(f"z{i}", {"card_arrival": 0.6}, text=f"qwzx vbnm {i}") for i in range(5)]
    ws = load(open_ws, tmp_path, events)
    relabel_group(ws, ALICE, [f"t{i}" for i in range(0, 30, 2)], "card_arrival")
    relabel_group(ws, ALICE, [f"t{i}" for i in range(1, 30, 2)], "card_linking")
    run = sample(ws, budget=5, probabilities="fit", diversity="none", dry_run=True)
    assert [p["item_id"][0] for p in run["picks"]] == ["u"] * 5


def test_the_same_data_gives_the_same_picks_whether_labels_were_imported_before_or_after_the_log(tmp_path, store_url):
    from feedback import Client, ingest_spool, init_workspace
    from feedback.review.imports import import_labels

    train = tmp_path / "train.csv"
    train.write_text("item_id,text,label\n" + "".join(
        f"s{i},{'my card has not arrived' if i % 2 else 'link my card to the app'} {i},"
        f"{'card_arrival' if i % 2 else 'card_linking'}\n" for i in range(30)))

    def log(ws):
        with Client(ws) as client:
            for i in range(20):
                p = 0.5 + i / 50
                client.prediction(f"p{i}", text=f"card question number {i}", label="card_arrival", score=p,
                                  probs={"card_arrival": p, "card_linking": 1 - p}, model_version="v1")
        ingest_spool(ws)

    picks = []
    for order in ("import first", "log first"):
        ws = init_workspace(tmp_path / order.replace(" ", "-"), store=store_url)
        steps = [lambda: import_labels(ws, [train], by=Actor("lena", "lead")), lambda: log(ws)]
        for step in steps if order == "import first" else steps[::-1]:
            step()
        run = sample(ws, budget=5, dry_run=True)
        picks.append((run["model"], [p["item_id"] for p in run["picks"]]))
    assert picks[0] == picks[1] and picks[0][0] == "stored probabilities of model version v1"
