"""Reads a mail with Python's email package (not our code) and prints what
a mail reader sees as JSON; each part's decoded bytes are saved in OUT_DIR.

Usage: read_mail.py MAIL.eml OUT_DIR

Output: {"headers": {name: value}, "content_type": ..., "parts": [
  {"content_type": ..., "params": {...}, "filename": ..., "disposition": ...,
   "file": "OUT_DIR/partN", "text": "..." (text parts)}]}
"""

import email
import email.policy
import json
import os
import sys

raw = open(sys.argv[1], "rb").read()
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
m = email.message_from_bytes(raw, policy=email.policy.default)
defects = [str(d) for part in m.walk() for d in part.defects]


def leaves(part):
    """The parts a reader shows, in order: a delivery-status report (whose
    field groups the email package holds as sub-messages) is one."""
    if part.get_content_type() == "message/delivery-status":
        yield part
    elif part.is_multipart():
        for sub in part.iter_parts():
            yield from leaves(sub)
    else:
        yield part


parts = []
for i, part in enumerate(leaves(m)):
    if part.get_content_type() == "message/delivery-status":
        data = "\n".join(block.as_string() for block in part.get_payload()).encode()
    else:
        data = part.get_payload(decode=True) or b""
    path = os.path.join(out, f"part{i}")
    with open(path, "wb") as f:
        f.write(data)
    entry = {
        "content_type": part.get_content_type(),
        "params": {k: v for k, v in part.get_params() or [] if v},
        "filename": part.get_filename(),
        "disposition": part.get_content_disposition(),
        "file": path,
    }
    if part.get_content_maintype() == "text" or part.get_content_type() == "message/delivery-status":
        entry["text"] = data.decode(part.get_content_charset() or "utf-8", "replace")
    parts.append(entry)
print(json.dumps({
    "headers": {k: str(v) for k, v in m.items()},
    "content_type": m.get_content_type(),
    "parts": parts,
    "defects": defects,
}))
