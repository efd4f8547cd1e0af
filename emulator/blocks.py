"""Block Kit checks and lookups on message blocks. Pure.

Owns the subset of Slack's block validation that catches client bugs (`invalid_blocks` with Slack's
`errors` list: unknown block types, missing texts, over-long fields, duplicate ids), and finding an
interactive element by `action_id` for a click.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from emulator.errors import SlackError

__all__ = ["find_action", "interactive_elements", "validate_blocks"]

MAX_BLOCKS = 50
_BLOCK_TYPES = {
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "video",
}
_INTERACTIVE = {
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "multi_static_select",
    "overflow",
    "radio_buttons",
    "static_select",
    "timepicker",
    "users_select",
    "conversations_select",
    "channels_select",
}


def _text_object(value: Any, where: str, limit: int, errors: list[str]) -> None:
    if not isinstance(value, dict) or value.get("type") not in ("plain_text", "mrkdwn"):
        errors.append(f"must provide a text object [json-pointer:{where}]")
        return
    text = value.get("text")
    if not isinstance(text, str) or not text:
        errors.append(f"must be more than 0 characters [json-pointer:{where}/text]")
    elif len(text) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{where}/text]")


def _element(element: Any, where: str, action_ids: set[str], errors: list[str]) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        errors.append(f"must provide an object with a type [json-pointer:{where}]")
        return
    if element["type"] == "button":
        _text_object(element.get("text"), f"{where}/text", 75, errors)
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > 2000):
            errors.append(
                f"must be a string of at most 2000 characters [json-pointer:{where}/value]"
            )
    action_id = element.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or not 0 < len(action_id) <= 255:
            errors.append(f"invalid action_id [json-pointer:{where}/action_id]")
        elif action_id in action_ids:
            errors.append(f"action_id already exists: {action_id} [json-pointer:{where}/action_id]")
        else:
            action_ids.add(action_id)


def validate_blocks(blocks: Any) -> list[dict[str, Any]]:
    """Return `blocks` if Slack would accept them, else raise `invalid_blocks` with Slack's errors."""
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    if len(blocks) > MAX_BLOCKS:
        raise SlackError("invalid_blocks", errors=[f"must provide at most {MAX_BLOCKS} items"])
    errors: list[str] = []
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
            errors.append(f"unsupported type [json-pointer:{where}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= 255:
                errors.append(f"invalid block_id [json-pointer:{where}/block_id]")
            elif block_id in block_ids:
                errors.append(
                    f"block_id already exists: {block_id} [json-pointer:{where}/block_id]"
                )
            else:
                block_ids.add(block_id)
        kind = block["type"]
        if kind == "header":
            _text_object(block.get("text"), f"{where}/text", 150, errors)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"must provide text or fields [json-pointer:{where}]")
            if "text" in block:
                _text_object(block["text"], f"{where}/text", 3000, errors)
            if "accessory" in block:
                _element(block["accessory"], f"{where}/accessory", action_ids, errors)
        elif kind in ("actions", "context"):
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 25:
                errors.append(f"must provide 1 to 25 elements [json-pointer:{where}/elements]")
                continue
            for j, element in enumerate(elements):
                if kind == "actions":
                    _element(element, f"{where}/elements/{j}", action_ids, errors)
                elif not isinstance(element, dict) or "type" not in element:
                    errors.append(f"must provide an object [json-pointer:{where}/elements/{j}]")
    if errors:
        raise SlackError(
            "invalid_blocks",
            errors=errors,
            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
        )
    return blocks


def interactive_elements(blocks: list[Any] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (block_id, element) for every interactive element of the blocks."""
    for index, block in enumerate(blocks or []):
        if not isinstance(block, dict):
            continue
        block_id = block.get("block_id") or f"b{index}"
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("type") in _INTERACTIVE:
                yield block_id, element


def find_action(blocks: list[Any] | None, action_id: str) -> tuple[str, dict[str, Any]]:
    for block_id, element in interactive_elements(blocks):
        if element.get("action_id") == action_id:
            return block_id, element
    raise SlackError("action_not_found")
