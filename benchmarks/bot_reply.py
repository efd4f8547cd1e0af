"""Bot replies per second: the shipped knowledge base and large synthetic ones.

    python benchmarks/bot_reply.py [--entries 1000 10000] [--queries 2000] [--seed 1]

Measures, in one run so the ratios hold on a noisy machine:
- `PhraseBot` (hand-off phrases only): the floor, a bot that does no matching at all;
- `KnowledgeBot` on the shipped knowledge_base.yaml with realistic questions;
- `KnowledgeBot` on synthetic knowledge bases of N entries (5 phrasings each), with paraphrases,
  typos and unrelated questions;
- the naive alternative on the same synthetic base: rapidfuzz `process.extractOne(..., WRatio)`
  over every phrasing for every message.
"cold" is the first pass over the messages (fresh bot, every typo looked up in the vocabulary),
"warm" a second pass. Building the index is timed too: it is what a reload on SIGHUP costs.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.bot import PhraseBot, normalise  # noqa: E402
from actors.knowledge_bot import KnowledgeBase, KnowledgeBot, parse_knowledge_base  # noqa: E402
from actors.settings import load_settings  # noqa: E402

SHIPPED_QUESTIONS = [
    "How long will shipping take to arrive?",
    "is delivery free",
    "where is my parcel",
    "I'd like to cancel my order",
    "what's your returns policy",
    "do you accept paypal",
    "why did my card get declined",
    "what time do you open",
    "the item i received is damaged",
    "wher is my oder",
    "my parcle hasnt arived",
    "what's the weather like today",
    "can you recommend a good pizza place",
    "hi",
    "Good morning team",
    "can I talk to a human please",
    "Hi! Where is my order? It has been two weeks now and nothing has arrived.",
]
SYLLABLES = ["ka", "lo", "mi", "ru", "te", "zan", "vor", "pel", "dis", "qua", "nor", "bix", "sa"]
FILLERS = ["how do i", "can you tell me", "where is my", "what about", "please help with"]


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    return word[:i] + word[i + 1 :] if len(word) > 4 else word


def synthetic(entries: int, rng: random.Random) -> tuple[KnowledgeBase, list[list[str]]]:
    """N entries over a Zipf-like vocabulary, so common words are shared by many entries."""
    vocabulary = sorted({"".join(rng.choices(SYLLABLES, k=3)) for _ in range(4 * entries)})
    rng.shuffle(vocabulary)
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(vocabulary))]
    topics = []
    seen: set[str] = set()
    lines = ["entries:"]
    for i in range(entries):
        words = list(dict.fromkeys(rng.choices(vocabulary, weights, k=6)))[:5]
        topics.append(words)
        phrasings = [" ".join(words[:4])] + [" ".join(rng.sample(words, k=3)) for _ in range(4)]
        phrasings = [p for p in dict.fromkeys(phrasings) if p not in seen]  # no duplicates
        seen.update(phrasings)
        lines.append(f"  - question: '{rng.choice(FILLERS)} {' '.join(words)} {i}'")
        lines.append("    alternatives:")
        lines.extend(f"      - '{rng.choice(FILLERS)} {p}'" for p in phrasings)
        lines.append(f"    answer: 'answer {i}'")
    return parse_knowledge_base("\n".join(lines), source="synthetic"), topics


def synthetic_queries(topics: list[list[str]], count: int, rng: random.Random) -> list[str]:
    queries = []
    for n in range(count):
        kind = n % 10
        if kind < 5:  # a paraphrase: shuffled, a word dropped, maybe a typo
            words = rng.sample(rng.choice(topics), k=3)
            words[0] = _typo(words[0], rng)
            queries.append(f"{rng.choice(FILLERS)} {' '.join(words)}?")
        elif kind < 8:  # unrelated words
            queries.append(" ".join("".join(rng.choices("etaoinshrdlu", k=6)) for _ in range(5)))
        elif kind == 8:
            queries.append("hello there")
        else:
            queries.append(f"{rng.choice(topics)[0]} can I talk to a human")
    return queries


def rate(reply: Callable[[str], object], queries: list[str]) -> float:
    start = time.perf_counter()
    for q in queries:
        reply(q)
    return len(queries) / (time.perf_counter() - start)


def naive(kb: KnowledgeBase) -> Callable[[str], object]:
    choices = [normalise(p) for e in kb.entries for p in e.phrasings]
    return lambda q: process.extractOne(normalise(q), choices, scorer=fuzz.WRatio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    settings = load_settings(ROOT / "settings.yaml").bot
    shipped_text = (ROOT / settings.knowledge_base).read_text(encoding="utf-8")
    phrases = settings.handoff_phrases

    rows: list[tuple[str, float, float, float]] = []

    def measure(name: str, build: Callable[[], Callable[[str], object]], qs: list[str]) -> None:
        start = time.perf_counter()
        reply = build()
        built = time.perf_counter() - start
        rows.append((name, built * 1000, rate(reply, qs), rate(reply, qs)))

    def knowledge_bot(kb: KnowledgeBase) -> Callable[[], Callable[[str], object]]:
        return lambda: KnowledgeBot(kb, phrases).reply

    shipped_queries = [rng.choice(SHIPPED_QUESTIONS) for _ in range(args.queries)]
    measure("PhraseBot (no matching)", lambda: PhraseBot(phrases).reply, shipped_queries)
    shipped = parse_knowledge_base(shipped_text)
    name = f"KnowledgeBot, shipped KB ({len(shipped.entries)} entries)"
    measure(name, knowledge_bot(shipped), shipped_queries)
    for n in args.entries:
        kb, topics = synthetic(n, rng)
        qs = synthetic_queries(topics, args.queries, rng)
        measure(f"KnowledgeBot, synthetic {n} entries", knowledge_bot(kb), qs)
        slow_qs = qs[: max(50, args.queries // 20)]
        measure(f"naive extractOne WRatio, {n} entries", partial(naive, kb), slow_qs)

    print(f"{'':50} {'build ms':>9} {'cold /s':>10} {'warm /s':>10}")
    for name, built, cold, warm in rows:
        print(f"{name:50} {built:9.1f} {cold:10.0f} {warm:10.0f}")
    shipped_warm = rows[1][3]
    for i, n in enumerate(args.entries):
        _, _, cold, warm = rows[2 + 2 * i]
        _, _, naive_cold, naive_warm = rows[3 + 2 * i]
        print(
            f"{n} entries: warm {warm / shipped_warm:.3f}x the shipped KB's rate;"
            f" {warm / naive_warm:.0f}x (warm) and {cold / naive_cold:.0f}x (cold) the naive scan"
        )


if __name__ == "__main__":
    main()
