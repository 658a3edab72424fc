"""SNS: Publish's subject and message size rules."""

import base64
import re

from .common import Refused, caller


def sns_subject_is_one_short_line(action, form, region):
    """SNS Publish, Subject: "Subjects must be UTF-8 text with no line breaks or control
    characters, and less than 100 characters long." (InvalidParameter). moto takes anything."""
    subject = form.get("Subject")
    if action == "Publish" and subject is not None:
        if len(subject) >= 100 or any(ord(c) < 32 or ord(c) == 127 for c in subject):
            raise Refused("InvalidParameter", "Invalid parameter: Subject")


def binary_size(text: str) -> int:
    """The size of a base64 Binary value as SNS counts it (decoded); its text's when it isn't base64."""
    try:
        return len(base64.b64decode(text, validate=True))
    except ValueError:  # binascii.Error
        return len(text)


SNS_ATTRIBUTE_PART = re.compile(r"^MessageAttributes\.entry\.\d+\.(Name|Value\.DataType|Value\.StringValue|Value\.BinaryValue)$")


def sns_message_fits(action, form, region):
    """SNS Publish, Message: "messages must be UTF-8 encoded strings. By default, a message can be
    at most 256 KiB in size (262,144 bytes, not 262,144 characters)."; MessageAttributeValue: "All
    parts of the message attribute, including name, type, and value, are included in the message
    size restriction, which is 256 KiB (262,144 bytes) by default and is determined by the topic's
    MaximumMessageSize attribute." AWS answers InvalidParameter "Invalid parameter: Message too
    long". moto counts the message's characters and no attributes."""
    if action != "Publish" or "Message" not in form:
        return
    from moto.sns.models import sns_backends

    size = len(form["Message"].encode("utf-8"))
    for field, text in form.items():
        m = SNS_ATTRIBUTE_PART.match(field)
        if m:
            size += binary_size(text) if m.group(1).endswith("BinaryValue") else len(text.encode("utf-8"))
    topic = sns_backends[caller()][region].topics.get(form.get("TopicArn") or form.get("TargetArn") or "")
    limit = int(getattr(topic, "MaximumMessageSize", None) or 262144)
    if size > limit:
        raise Refused("InvalidParameter", "Invalid parameter: Message too long")


STRICT_RULES = [
    sns_subject_is_one_short_line,
    sns_message_fits,
]
