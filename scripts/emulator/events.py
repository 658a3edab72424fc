"""EventBridge: events that say which account put them."""


def events_say_whose_they_are() -> None:
    """EventBridge event structure: every event carries `account`, "The 12-digit number
    identifying an AWS account" (the account that put it), and a target receives the event whole.
    moto's default input template for targets drops `account` (its own paths map names it), so a
    receiver could not tell who spoke; Lifeboat's vault trusts only the account EventBridge sets."""
    from moto.events.utils import EventTemplateParser

    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = (
        '{"id": "<id>", "time": <time>, "version": "0", "detail-type": "<detail-type>", "source": "<source>", '
        '"account": "<account>", "region": "<region>", "resources": <resources>, "detail": <detail>}'
    )
