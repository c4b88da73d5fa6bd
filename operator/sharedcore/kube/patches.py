"""JSON merge patches (RFC 7386) computed from what is there and what should be.

A merge patch leaves alone every key it does not name, so writing a whole new status (or spec) as a patch
would keep keys the new one dropped; the patch from `merge_patch` names them with null, which removes them.
"""

from sharedcore import Body

_MISSING = object()


def merge_patch(have: Body, want: Body) -> Body:
    """The merge patch that turns `have` into `want` (lists are replaced whole, as merge patches do)."""
    patch: Body = {key: None for key in have if key not in want}
    for key, value in want.items():
        old = have.get(key, _MISSING)
        if isinstance(value, dict) and isinstance(old, dict):
            if nested := merge_patch(old, value):
                patch[key] = nested
        elif old != value:
            patch[key] = value
    return patch
