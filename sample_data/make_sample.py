"""Build a realistic, deterministic production capture log from BANKING77.

Two intent classifiers (TF-IDF word 1-2 grams + logistic regression) play the
production service: "v1" is trained on 30% of the train split and serves the
first 40% of the traffic, "v2" is trained on 60% and serves the rest. The
traffic is the held-out 40% of train plus the whole test split. Users correct
some wrong predictions (a few corrections are themselves wrong, a few arrive in
the file before their prediction) and some requests fail.

The default mode also writes `training_labels.csv` beside the log: the labeled examples v2
was trained on (item_id, text, label), what a team would bring in with `feedback import-labels`.

Modes:
  python sample_data/make_sample.py                      # default sample log and training labels
  python sample_data/make_sample.py --scale N --out F    # N events, benchmark
  python sample_data/make_sample.py --texts N --out F    # N texts, near-dups
"""

import argparse
import csv
import heapq
import itertools
import json
import random
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = Path("/work/shared/data/banking77")

MODEL = "intent-clf"
TRAIN_SHARES = {"v1": 0.3, "v2": 0.6}  # leading share of the shuffled train split
V2_FROM = 0.4  # share of the traffic served by v1 before v2 rolls out
TOP_K = 5

END = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp())
SPAN = 30 * 86400
ERROR_RATE = 0.02
CORRECTION_RATE = 0.3  # of wrong predictions
WRONG_CORRECTION_RATE = 0.1
EARLY_CORRECTION_RATE = 0.05  # corrections written before their prediction
NOTE_RATE = 0.25
MAX_DELAY = 3 * 86400

N_USERS = 300
CHANNELS = ("app", "web", "chat")
CHANNEL_WEIGHTS = (5, 3, 2)
ERRORS = (
    ("timeout", "upstream timed out after 2000 ms"),
    ("model_unavailable", "model intent-clf is unavailable (503), retry later"),
    ("bad_request", "request rejected: text field failed validation"),
)
ERROR_WEIGHTS = (5, 3, 2)
NOTES = ("wrong intent", "customer clarified in chat", "see support ticket",
         "reviewed by ops", "obvious from context")
FILLERS = ("hi", "hello,", "please", "pls", "thanks", "urgent:", "asap", "help")


def load_split(data_dir, split):
    """Return [(text, label)] rows of a BANKING77 split."""
    with open(data_dir / f"{split}.csv", encoding="utf-8", newline="") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def train(rows, seed):
    """Fit the TF-IDF + logistic regression intent classifier."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(C=20, solver="saga", max_iter=1000, random_state=seed),
    )
    return model.fit([t for t, _ in rows], [label for _, label in rows])


def predictions(model, texts, version):
    """Return one `prediction` payload (top-k probabilities) per text."""
    classes = model.classes_
    out = []
    for row in model.predict_proba(texts):
        top = row.argsort()[::-1][:TOP_K]
        probs = {str(classes[j]): round(float(row[j]), 4) for j in top}
        label = str(classes[top[0]])
        out.append({"label": label, "score": probs[label], "probs": probs,
                    "model": MODEL, "model_version": version})
    return out


def build_pool(data_dir, seed):
    """Train both model versions and precompute their outputs on the traffic.

    Returns the shuffled traffic pool, a list of dicts with text, label,
    source and per-version predictions.
    """
    rng = random.Random(seed)
    train_rows = shuffled_train(data_dir, rng)
    cut = training_cuts(train_rows)
    pool = [{"text": t, "label": y, "source": "banking77:train"}
            for t, y in train_rows[cut["v2"]:]]
    pool += [{"text": t, "label": y, "source": "banking77:test"}
             for t, y in load_split(data_dir, "test")]
    rng.shuffle(pool)
    texts = [item["text"] for item in pool]
    for version, n in cut.items():
        preds = predictions(train(train_rows[:n], seed), texts, version)
        for item, pred in zip(pool, preds):
            item.setdefault("preds", {})[version] = pred
    return pool


def shuffled_train(data_dir, rng):
    """The train split in the shuffled order whose leading shares train the model versions."""
    rows = load_split(data_dir, "train")
    rng.shuffle(rows)
    return rows


def training_cuts(train_rows):
    return {v: int(share * len(train_rows)) for v, share in TRAIN_SHARES.items()}


def training_labels(data_dir, seed):
    """The labeled examples the newest model version was trained on, as import-labels rows."""
    rows = shuffled_train(data_dir, random.Random(seed))
    return ({"item_id": f"train-{i:05d}", "text": t, "label": y}
            for i, (t, y) in enumerate(rows[:training_cuts(rows)["v2"]], 1))


def write_csv(path, records):
    """Records (dicts with the same keys) as a CSV file; return how many."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = None
        for n, record in enumerate(records, 1):
            writer = writer or csv.DictWriter(f, fieldnames=list(record))
            if n == 1:
                writer.writeheader()
            writer.writerow(record)
    return n


def error_rate(pool, version):
    """Share of pool items that `version` predicts wrongly."""
    return sum(i["preds"][version]["label"] != i["label"] for i in pool) / len(pool)


def _typo(text, rng):
    """Swap, drop, double or replace one character."""
    if len(text) < 4:
        return text
    i = rng.randrange(len(text) - 1)
    op = rng.randrange(4)
    if op == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if op == 1:
        return text[:i] + text[i + 1:]
    if op == 2:
        return text[:i] + text[i] + text[i:]
    return text[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + text[i + 1:]


def _case(text, rng):
    """Lower-case, upper-case or capitalise the whole text."""
    return rng.choice((str.lower, str.upper, str.capitalize))(text)


def _words(text, rng):
    """Add a filler word, drop a word or duplicate a word."""
    words = text.split()
    op = rng.randrange(3)
    if op == 0 or not words:
        words.insert(rng.choice((0, len(words))), rng.choice(FILLERS))
    elif op == 1 and len(words) > 3:
        del words[rng.randrange(len(words))]
    else:
        i = rng.randrange(len(words))
        words.insert(i, words[i])
    return " ".join(words)


PERTURBATIONS = (_typo, _typo, _case, _words)  # typos are twice as likely


def perturb(text, rng, ops=1):
    """Apply `ops` random light perturbations to `text`."""
    for _ in range(ops):
        text = rng.choice(PERTURBATIONS)(text, rng)
    return text


def iso(ts):
    """Format epoch seconds as ISO-8601 UTC with a trailing Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def correction_event(item_id, text, truth, pred, ts, meta, rng):
    """A user's correction of a wrong prediction, sometimes itself wrong."""
    label = truth
    if rng.random() < WRONG_CORRECTION_RATE:  # plausible mistake: next best guess
        label = next(c for c in pred["probs"] if c not in (pred["label"], truth))
    correction = {"label": label, "by": meta["user_id"]}
    if rng.random() < NOTE_RATE:
        correction["note"] = rng.choice(NOTES)
    event = {"event_id": None, "type": "correction", "item_id": item_id,
             "ts": iso(ts), "correction": correction, "meta": meta}
    if rng.random() < 0.5:
        event["input"] = {"text": text}
    return event


def request_meta(item, rng):
    """Meta of one request: a user (a few are very active), channel, source."""
    return {"user_id": f"u{int(N_USERS * rng.random() ** 1.5) + 1:04d}",
            "channel": rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0],
            "source": item["source"]}


def events(pool, rng, n_requests, endless=False):
    """Yield events in file order for `n_requests` requests spread over SPAN.

    Request i draws pool item i (cyclically; texts are perturbed after the
    first pass). With `endless`, requests continue past `n_requests` (their
    timestamps are clamped to END) until the consumer stops.
    """
    seq = itertools.count(1)
    pending = []  # heap of (ts, request index, correction event)

    def stamp(event):
        event["event_id"] = f"evt-{next(seq):06d}"
        return event

    requests = itertools.count() if endless else range(n_requests)
    for i in requests:
        ts = min(END, END - SPAN + int((i + rng.random()) * SPAN / n_requests))
        while pending and pending[0][0] <= ts:
            yield stamp(heapq.heappop(pending)[2])
        item = pool[i % len(pool)]
        text = item["text"] if i < len(pool) else perturb(item["text"], rng)
        item_id = f"req-{i + 1:06d}"
        meta = request_meta(item, rng)
        event = {"event_id": None, "type": None, "item_id": item_id,
                 "ts": iso(ts), "input": {"text": text}}
        if rng.random() < ERROR_RATE:
            kind, message = rng.choices(ERRORS, ERROR_WEIGHTS)[0]
            event.update(type="error", error={"kind": kind, "message": message},
                         meta=meta)
            yield stamp(event)
            continue
        pred = item["preds"]["v1" if i < V2_FROM * n_requests else "v2"]
        event.update(type="prediction", prediction=pred, meta=meta)
        if pred["label"] != item["label"] and rng.random() < CORRECTION_RATE:
            fix_ts = ts + 60 + min(int(rng.expovariate(1 / 7200)), MAX_DELAY)
            if fix_ts <= END:  # later corrections fall after the log's cut
                fix = correction_event(item_id, text, item["label"], pred,
                                       fix_ts, meta, rng)
                if rng.random() < EARLY_CORRECTION_RATE:
                    yield stamp(fix)  # arrives before its prediction
                else:
                    heapq.heappush(pending, (fix_ts, i, fix))
        yield stamp(event)
    while pending:
        yield stamp(heapq.heappop(pending)[2])


def write_jsonl(path, records):
    """Stream records to `path` as JSON lines; return counts by `type`."""
    counts = Counter()
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for record in records:
            counts[record.get("type", "text")] += 1
            f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            f.write("\n")
    return counts


def texts(data_dir, n, rng):
    """BANKING77 texts plus perturbed near-copies, shuffled, as id/text records.

    Up to half of the `n` texts are originals; each copy perturbs an original
    drawn with a skew, so a few clusters are large and many are small.
    """
    base = [t for split in ("train", "test") for t, _ in load_split(data_dir, split)]
    rng.shuffle(base)
    base = base[:max(1, n // 2)]
    copies = [perturb(base[int(len(base) * rng.random() ** 2)], rng, rng.randint(1, 3))
              for _ in range(n - len(base))]
    out = (base + copies)[:n]
    rng.shuffle(out)
    return ({"id": f"txt-{i:06d}", "text": t} for i, t in enumerate(out, 1))


def parse_args():
    """Parse and check the command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, help="default: sample_data/events.jsonl")
    p.add_argument("--limit", type=int, default=3000,
                   help="number of production requests (default 3000)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--scale", type=int, metavar="N",
                      help="write N events, cycling perturbed requests")
    mode.add_argument("--texts", type=int, metavar="N",
                      help="write N texts with near-duplicate clusters")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="BANKING77 directory (train.csv, test.csv)")
    args = p.parse_args()
    if (args.scale or args.texts) and args.out is None:
        p.error("--scale and --texts need an explicit --out")
    args.out = args.out or HERE / "events.jsonl"
    return args


def main():
    """Write the requested file and report counts on stderr."""
    args = parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    if args.texts:
        counts = write_jsonl(args.out, texts(args.data, args.texts, rng))
    else:
        pool = build_pool(args.data, args.seed)
        for version in TRAIN_SHARES:
            print(f"{version} accuracy on traffic: {1 - error_rate(pool, version):.4f}",
                  file=sys.stderr)
        if args.scale:
            wrong = (V2_FROM * error_rate(pool, "v1")
                     + (1 - V2_FROM) * error_rate(pool, "v2"))
            per_request = 1 + (1 - ERROR_RATE) * CORRECTION_RATE * wrong
            # 0.1% margin: corrections still pending at the cut are never written
            n_requests = round(1.001 * args.scale / per_request)
            stream = events(pool, rng, n_requests, endless=True)
            counts = write_jsonl(args.out, itertools.islice(stream, args.scale))
        else:
            if not 0 < args.limit <= len(pool):
                sys.exit(f"--limit must be in 1..{len(pool)}")
            counts = write_jsonl(args.out, events(pool, rng, args.limit))
            labels = write_csv(args.out.parent / "training_labels.csv", training_labels(args.data, args.seed))
            print(f"wrote {labels} training labels to {args.out.parent / 'training_labels.csv'}", file=sys.stderr)
    print(f"wrote {sum(counts.values())} records to {args.out} "
          f"({dict(sorted(counts.items()))}) in {time.perf_counter() - started:.1f}s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
