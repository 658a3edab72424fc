"""Step Functions (states): execution names as StartExecution checks them."""

import json
import re

from .common import peek_body


# StartExecution, name: "A name must not contain: white space, brackets < > { } [ ], wildcard
# characters ? *, special characters " # % \\ ^ | ~ ` $ & , ; : /, control characters"; the SDK
# model gives its length as 1 to 80. moto's interpreter checks neither (InvalidName on AWS).
NAME_FORBIDDEN = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]')


def execution_name_refused(environ):
    """Why StartExecution's name would be refused, or None. Leaves the body readable for moto."""
    raw = peek_body(environ)
    try:
        name = json.loads(raw or b"{}").get("name")
    except ValueError:
        return None
    if name is None:
        return None
    if not 1 <= len(name) <= 80:
        return f"Invalid Name: '{name}' (it must be 1 to 80 characters, not {len(name)})"
    if NAME_FORBIDDEN.search(name):
        return f"Invalid Name: '{name}'"
    return None
