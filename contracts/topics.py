"""Kafka topic names. Every message is keyed by namespace id, so per-namespace order holds."""

EVENTS = "offshoot.events"
COMMANDS = "offshoot.commands"
DEAD_LETTER_SUFFIX = ".dlq"


def dead_letter_topic(topic: str) -> str:
    """Where messages that cannot be handled from ``topic`` go, with the reason."""
    return topic + DEAD_LETTER_SUFFIX
