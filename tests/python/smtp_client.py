"""A mail client for the tests, with Python's smtplib (not our code): sends
one message the way an MFP or a mail program does and prints what the
server answered at each step as one JSON object.

Usage: smtp_client.py SPEC.json

SPEC: {"server": "127.0.0.1:2525", "starttls": false, "cafile": null,
       "login": ["user", "password"] or null,
       "from": "a@b", "to": ["1002@fax.example"],
       "message": "PATH.eml"            (sent as it is), or
       "build": {"subject": "...", "body": "...", "from_header": "...",
                 "attachments": [{"path": "...", "type": "application/pdf",
                                  "filename": "x.pdf"}]},
       "auth_flood": 0}                 (that many wrong AUTH PLAIN first)

Output: {"steps": [[stage, code, text], ...], "closed": bool}; the last
step is where it stopped (a refusal, or "data" with the final answer).
"""

import base64
import email.utils
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage

spec = json.load(open(sys.argv[1]))
steps = []


def record(stage, reply):
    code, text = reply
    steps.append([stage, code, text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)])
    return code


def message_bytes():
    if "message" in spec:
        return open(spec["message"], "rb").read()
    b = spec["build"]
    m = EmailMessage()
    m["From"] = b.get("from_header", spec["from"])
    m["To"] = ", ".join(spec["to"])
    m["Subject"] = b.get("subject", "fax")
    m["Date"] = email.utils.formatdate(localtime=True)
    m["Message-ID"] = email.utils.make_msgid(domain="office.example")
    m.set_content(b.get("body", ""))
    for a in b.get("attachments", []):
        maintype, subtype = a["type"].split("/", 1)
        with open(a["path"], "rb") as f:
            m.add_attachment(f.read(), maintype=maintype, subtype=subtype, filename=a["filename"])
    return m.as_bytes()


def run():
    host, port = spec["server"].rsplit(":", 1)
    s = smtplib.SMTP(host, int(port), timeout=120)
    record("ehlo", s.ehlo("mfp.office.example"))
    if spec.get("starttls"):
        ctx = ssl.create_default_context(cafile=spec.get("cafile"))
        try:
            record("starttls", s.starttls(context=ctx))
        except smtplib.SMTPNotSupportedError:
            steps.append(["starttls", 0, "STARTTLS not offered"])
            return
        record("ehlo", s.ehlo("mfp.office.example"))
    for i in range(spec.get("auth_flood", 0)):
        token = base64.b64encode(b"\0mallory\0guess%d" % i).decode()
        code = record("auth", s.docmd("AUTH", "PLAIN " + token))
        if code == 421:
            return
    if spec.get("login"):
        user, password = spec["login"]
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        if record("auth", s.docmd("AUTH", "PLAIN " + token)) != 235:
            return
    if record("mail", s.mail(spec["from"])) != 250:
        return
    accepted = 0
    for to in spec["to"]:
        if record("rcpt", s.rcpt(to)) in (250, 251):
            accepted += 1
    if not accepted:
        return
    record("data", s.data(message_bytes()))
    try:
        s.quit()
    except smtplib.SMTPServerDisconnected:
        pass


closed = False
try:
    run()
except smtplib.SMTPServerDisconnected as e:
    closed = True
    steps.append(["disconnected", 0, str(e)])
except smtplib.SMTPResponseException as e:
    steps.append(["error", e.smtp_code, e.smtp_error.decode("utf-8", "replace")])
print(json.dumps({"steps": steps, "closed": closed}))
