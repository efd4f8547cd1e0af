"""The knowledge-base bot on the shipped knowledge base and settings, and knowledge base loading."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.bot import Bot, BotAnswer, HandOff
from actors.knowledge_bot import (
    MAX_CHARS,
    KnowledgeBase,
    KnowledgeBot,
    load_knowledge_base,
    parse_knowledge_base,
)
from actors.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = load_settings(ROOT / "settings.yaml").bot
THRESHOLD = SHIPPED.confidence_threshold
KB = load_knowledge_base(ROOT / SHIPPED.knowledge_base)
BOT = KnowledgeBot(KB, SHIPPED.handoff_phrases, greeting=SHIPPED.greeting)


def entry_answer(question: str) -> str:
    (entry,) = [e for e in KB.entries if e.question == question]
    return entry.answer


def test_the_shipped_knowledge_base_is_a_small_store_with_alternative_phrasings() -> None:
    assert 15 <= len(KB.entries) <= 30
    assert all(entry.alternatives for entry in KB.entries)
    assert THRESHOLD == 0.6


def test_a_knowledge_bot_is_a_bot() -> None:
    bot: Bot = BOT
    assert isinstance(bot.reply("hello"), BotAnswer)


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("How long will shipping take to arrive?", "How long does shipping take?"),
        ("delivery takes how many days?", "How long does shipping take?"),
        ("is delivery free", "How much does shipping cost?"),
        ("what's the cost of delivery", "How much does shipping cost?"),
        ("where is my parcel", "Where is my order?"),
        ("tracking number for my order", "Where is my order?"),
        ("I'd like to cancel my order", "Can I change or cancel my order?"),
        ("what's your returns policy", "What is your return policy?"),
        (
            "i need to exchange a jacket for a smaller size",
            "Can I exchange an item for a different size or colour?",
        ),
        ("do the jackets run small", "How do I find my size?"),
        ("do you accept paypal", "What payment methods do you accept?"),
        ("why did my card get declined", "Why was my payment declined?"),
        ("do you have gift cards", "Do you sell gift cards?"),
        ("is there a student discount", "Do you have a discount code?"),
        ("what time do you open", "What are your opening hours?"),
        ("the item i received is damaged", "My item arrived damaged or wrong"),
        ("how should i wash my down jacket", "How do I wash my waterproof jacket?"),
        ("when will you restock", "When will an item be back in stock?"),
        ("how do i contact customer service", "How can I contact you?"),
        ("Hi! Where is my order?", "Where is my order?"),
    ],
)
def test_a_paraphrase_of_a_question_answers_above_the_threshold(text: str, question: str) -> None:
    answer = BOT.reply(text)
    assert isinstance(answer, BotAnswer)
    assert answer.text == entry_answer(question)
    assert THRESHOLD < answer.confidence <= 1.0
    assert answer.kind == "answer"


@pytest.mark.parametrize(
    "text",
    [
        "shiping cost",
        "wher is my oder",
        "my parcle hasnt arived",
        "do you acept paypal",
    ],
)
def test_typos_still_match(text: str) -> None:
    answer = BOT.reply(text)
    assert isinstance(answer, BotAnswer)
    assert answer.confidence > THRESHOLD


@pytest.mark.parametrize(
    "text",
    [
        "what's the weather like today",
        "can you recommend a good pizza place",
        "who won the football game last night",
        "tell me a joke",
        "asdfghjkl",
        "how do I reset my router",
        "how long does it take to cook pasta",
        "is it going to rain tomorrow",
        "do you sell cars",
        "where can I buy groceries",
        "can you track my phone",
        "how much does a car cost",
        "i want a refund for my flight",
        "what size is the moon",
        "is the store on fire",
        "return of the jedi",
        "🙂",
        "",
    ],
)
def test_an_unrelated_message_answers_below_the_threshold(text: str) -> None:
    answer = BOT.reply(text)
    assert isinstance(answer, BotAnswer)
    assert 0.0 <= answer.confidence < THRESHOLD


def test_a_message_sharing_no_word_with_the_knowledge_base_gets_the_fallback_at_zero() -> None:
    assert BOT.reply("my cat is sick") == BotAnswer(BOT.fallback_text, 0.0)
    assert BOT.match("my cat is sick") is None


def test_every_phrasing_of_the_knowledge_base_answers_its_own_entry_with_full_confidence() -> None:
    for entry in KB.entries:
        for phrasing in entry.phrasings:
            assert BOT.reply(phrasing) == BotAnswer(entry.answer, 1.0), phrasing
            assert BOT.reply(phrasing.upper() + "?!") == BotAnswer(entry.answer, 1.0), phrasing


def test_match_tells_which_phrasing_matched() -> None:
    match = BOT.match("how do i track my parcel?")
    assert match is not None
    assert match.entry.question == "Where is my order?"
    assert match.phrasing in match.entry.phrasings
    assert THRESHOLD < match.confidence <= 1.0


@pytest.mark.parametrize("phrase", SHIPPED.handoff_phrases)
def test_every_shipped_handoff_phrase_hands_off(phrase: str) -> None:
    assert BOT.reply(phrase) == HandOff("asked")
    assert BOT.reply(f"Hi, can I {phrase.upper()}, please?!") == HandOff("asked")
    assert BOT.wants_person(f"where is my order... {phrase}")


@pytest.mark.parametrize("text", ["humanity is great", "what is your agency", "humans"])
def test_a_handoff_word_inside_another_word_does_not_hand_off(text: str) -> None:
    assert isinstance(BOT.reply(text), BotAnswer)
    assert not BOT.wants_person(text)


def test_a_handoff_phrase_beyond_the_matched_length_still_hands_off() -> None:
    text = "blah " * (2 * MAX_CHARS) + "I want a human"
    assert BOT.reply(text) == HandOff("asked")


@pytest.mark.parametrize(
    "text",
    [
        "hi",
        "Hello!",
        "hey there :)",
        "Good morning team",
        "good evening, everyone",
        "Bonjour",
        "HIYA",
    ],
)
def test_a_greeting_gets_the_greeting_text_with_full_confidence(text: str) -> None:
    assert BOT.is_greeting(text)
    assert BOT.reply(text) == BotAnswer(SHIPPED.greeting, 1.0, kind="greeting")
    assert BOT.greeting_text == SHIPPED.greeting


@pytest.mark.parametrize(
    "text", ["hi, where is my order?", "say hi to the team", "good", "high heels", "history", ""]
)
def test_a_message_with_more_than_a_greeting_is_not_a_greeting(text: str) -> None:
    assert not BOT.is_greeting(text)
    reply = BOT.reply(text)
    assert isinstance(reply, BotAnswer)
    assert reply.kind == "answer"


def test_a_handoff_phrase_wins_over_a_greeting() -> None:
    assert BOT.reply("hello, I'd like to talk to a human") == HandOff("asked")


def test_the_knowledge_base_can_add_greetings() -> None:
    kb = parse_knowledge_base(
        "greetings: [ahoy, top of the morning]\nentries: [{question: q, answer: a}]"
    )
    bot = KnowledgeBot(kb, (), greeting="Ahoy!")
    assert bot.reply("Ahoy there!") == BotAnswer("Ahoy!", 1.0, kind="greeting")
    assert bot.is_greeting("Top of the morning, everyone!")
    assert bot.is_greeting("hello")


def test_a_question_made_only_of_common_words_can_still_match() -> None:
    assert BOT.reply("How are you?") == BotAnswer(entry_answer("How are you?"), 1.0)
    answer = BOT.reply("how are you doing?")
    assert isinstance(answer, BotAnswer)
    assert answer.text == entry_answer("How are you?")
    assert answer.confidence > THRESHOLD
    answer = BOT.reply("how")
    assert isinstance(answer, BotAnswer)
    assert answer.confidence < THRESHOLD


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_reply_never_raises_and_confidence_is_in_range(text: str) -> None:
    reply = BOT.reply(text)
    if isinstance(reply, BotAnswer):
        assert 0.0 <= reply.confidence <= 1.0
        assert isinstance(reply.text, str)
    match = BOT.match(text)
    assert match is None or 0.0 <= match.confidence <= 1.0


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=50), st.integers(min_value=1_000, max_value=20_000))
def test_huge_messages_are_answered(chunk: str, times: int) -> None:
    reply = BOT.reply(chunk * times)
    assert isinstance(reply, HandOff) or 0.0 <= reply.confidence <= 1.0


def _synthetic_kb(entries: int, seed: int) -> tuple[KnowledgeBase, list[list[str]]]:
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ru", "te", "zan", "vor", "pel", "dis", "qua", "nor", "bix"]
    vocabulary = sorted({"".join(rng.choices(syllables, k=3)) for _ in range(3 * entries)})
    questions = [rng.sample(vocabulary, 4) for _ in range(entries)]
    lines = ["entries:"]
    for i, words in enumerate(questions):
        lines.append(f"  - question: how do I {' '.join(words)}")
        lines.append(f"    alternatives: [{' '.join(reversed(words))} please]")
        lines.append(f"    answer: answer {i}")
    return parse_knowledge_base("\n".join(lines)), questions


def test_a_large_knowledge_base_still_finds_the_right_entry() -> None:
    kb, questions = _synthetic_kb(1_000, seed=7)
    bot = KnowledgeBot(kb, ())
    for i in range(0, 1_000, 37):
        words = questions[i]
        typo = words[0][:-1]  # a dropped letter
        reply = bot.reply(f"could you tell me {typo} {words[2]} {words[1]} {words[3]}?")
        assert isinstance(reply, BotAnswer)
        assert reply.text == f"answer {i}"
        assert reply.confidence > THRESHOLD


def test_loading_the_shipped_file_twice_gives_equal_knowledge_bases() -> None:
    assert load_knowledge_base(ROOT / "knowledge_base.yaml") == KB
