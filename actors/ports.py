"""The Slack port: typed commands the domain sends to Slack, and typed facts Slack delivers back.

Owns the contract between the domain and the Slack actor (transport). Nothing here knows Slack's
wire format; the transport turns these into Web API calls and Block Kit views, and decodes
inbound payloads into the facts at the bottom.

Outbound: the domain sends `SlackCommand`s into one `trio.MemorySendChannel[SlackCommand]` (the
Slack actor's mailbox). Commands with a `reply` field are requests (see `actors.runtime.ask`): the
Slack actor answers with `cmd.reply.send(value)` or `cmd.reply.fail(error)` and never leaves one
unanswered; the domain waits under its own deadline. The others are one-way.

The consumer must keep draining commands while a `Domain.deliver` call of its own is waiting:
deliver inbound facts from a task other than the one that executes commands.

Inbound: the Slack actor calls `Domain.deliver(fact)` with a `SlackFact`. Facts naming an unknown
offer or room are logged and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from actors.runtime import Reply

__all__ = [
    "AgentProfile",
    "CloseRoom",
    "ConfirmPresence",
    "EndTakeoverRequested",
    "FetchAgentProfile",
    "FetchRoomMessages",
    "OfferAnswered",
    "OfferOutcome",
    "OfferView",
    "OpenRoom",
    "PostLead",
    "PostOffer",
    "PresenceChanged",
    "RelayToRoom",
    "ResolveOffer",
    "RoomMessagePosted",
    "RoomOpened",
    "SlackCommand",
    "SlackFact",
    "Speaker",
    "TellTooLate",
    "TranscriptLine",
]

OfferOutcome = Literal["accepted", "ignored", "missed", "withdrawn"]
Speaker = Literal["customer", "bot", "agent"]


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """What the customer sees of the agent who joined (from Slack's users.info)."""

    id: str
    display_name: str
    real_name: str = ""
    title: str = ""
    avatar_url: str = ""


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One line of a customer's conversation; `at` is UNIX epoch seconds."""

    speaker: Speaker
    author_id: str
    author_name: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class OfferView:
    """Everything the offer DM shows. `expires_at` is UNIX epoch seconds."""

    offer_id: str
    escalation_id: str
    agent_id: str
    customer_id: str
    customer_name: str
    last_message: str
    excerpt: tuple[TranscriptLine, ...]
    expires_at: float


@dataclass(frozen=True, slots=True)
class RoomOpened:
    """The answer to `OpenRoom`: the private channel, its header pinned, the transcript posted."""

    room_id: str
    room_name: str


# --- commands: domain -> Slack actor ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfirmPresence:
    """Ask users.getPresence for one agent just before an offer. Answer: True when active."""

    agent_id: str
    reply: Reply[bool]


@dataclass(frozen=True, slots=True)
class PostOffer:
    """DM the offer with Accept (`offer_accept`) and Ignore (`offer_ignore`) buttons."""

    offer: OfferView


@dataclass(frozen=True, slots=True)
class ResolveOffer:
    """Update the offer DM in place with its one outcome; `room_name` only for accepted ones.

    An accepted offer is resolved once its room is open (`room_name` None: the customer left or
    the room could not be opened).
    """

    offer_id: str
    agent_id: str
    outcome: OfferOutcome
    room_name: str | None = None


@dataclass(frozen=True, slots=True)
class TellTooLate:
    """The agent clicked on an offer that had already ended: tell them nothing changed."""

    offer_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class FetchAgentProfile:
    """users.info for one agent. Answer: `AgentProfile`."""

    agent_id: str
    reply: Reply[AgentProfile]


@dataclass(frozen=True, slots=True)
class OpenRoom:
    """Create the private room (prefix + customer_id, else the next free `-2`, `-3`, ...),
    invite the agent, pin the header with the End Takeover button (`takeover_end`), then post
    the whole transcript in order. Answer: `RoomOpened`."""

    takeover_id: str
    customer_id: str
    customer_name: str
    agent_id: str
    transcript: tuple[TranscriptLine, ...]
    reply: Reply[RoomOpened]
    resume: bool = False
    """After a restart: this takeover's room may exist already (its header's metadata names the
    takeover): use it and post only the header and transcript parts it lacks, found by their
    post ids (derived from `takeover_id`), rather than opening a second room."""


@dataclass(frozen=True, slots=True)
class RelayToRoom:
    """Post one line in the room; lines of one takeover are posted in the order sent.

    `post_id` is the line's deterministic post id (the same line always gets the same one);
    `resent` marks a line sent again after a restart: post it only when no message carrying
    `post_id` is in the room yet (look from a little before `line.at`)."""

    takeover_id: str
    room_id: str
    line: TranscriptLine
    post_id: str = ""
    resent: bool = False


@dataclass(frozen=True, slots=True)
class CloseRoom:
    """Post `note` in the room when given, then archive it. `resent`: sent again after a
    restart, so the note may be there already (its post id derives from `takeover_id`)."""

    takeover_id: str
    room_id: str
    note: str | None = None
    resent: bool = False


@dataclass(frozen=True, slots=True)
class PostLead:
    """Post a lead (contact details and question a customer left when nobody could help) as
    one message in `slack.leads_channel`; with no leads channel set it is only logged.
    `transcript` is the customer's latest lines; `at` is UNIX epoch seconds."""

    lead_id: str
    customer_id: str
    name: str
    email: str
    question: str
    transcript: tuple[TranscriptLine, ...]
    at: float


@dataclass(frozen=True, slots=True)
class FetchRoomMessages:
    """What people (never the app) posted in a room since `oldest` (epoch seconds), read from
    conversations.history, oldest first, as the `RoomMessagePosted` facts live delivery gives
    (same message ids). Answer: `tuple[RoomMessagePosted, ...]`. After a restart this catches up
    the messages Slack delivered to the stopped daemon that it never recorded."""

    room_id: str
    oldest: float
    reply: Reply[tuple[RoomMessagePosted, ...]]


SlackCommand = (
    ConfirmPresence
    | PostOffer
    | ResolveOffer
    | TellTooLate
    | FetchAgentProfile
    | OpenRoom
    | RelayToRoom
    | CloseRoom
    | PostLead
    | FetchRoomMessages
)


# --- facts: Slack actor -> domain --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferAnswered:
    """An agent clicked Accept (`accepted=True`) or Ignore on an offer DM."""

    offer_id: str
    agent_id: str
    accepted: bool


@dataclass(frozen=True, slots=True)
class EndTakeoverRequested:
    """`/end-takeover` or the End Takeover button, in a room, by a room member."""

    room_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class RoomMessagePosted:
    """A person (never the app itself) posted in a room; `message_id` de-duplicates retries."""

    room_id: str
    user_id: str
    text: str
    message_id: str


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """An agent's Slack presence, from RTM presence_change or users.getPresence polling."""

    agent_id: str
    active: bool


SlackFact = OfferAnswered | EndTakeoverRequested | RoomMessagePosted | PresenceChanged
