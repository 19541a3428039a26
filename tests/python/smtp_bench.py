"""The mail benchmark's client, with Python's smtplib: sends mails with one
attachment as an MFP would, and prints what it measured as JSON.

Usage:
  smtp_bench.py rate SERVER FROM TO FILE COUNT CONNECTIONS
      COUNT mails over CONNECTIONS connections at once (one thread each,
      each mail waiting for its 250): {"mails", "secs", "refused"}
  smtp_bench.py latency SERVER FROM TO FILE COUNT INBOX
      COUNT mails one at a time; for each, the time from the end of DATA
      (the final "." sent) until the callee's faxrecv wrote the fax's JSON
      in INBOX, i.e. after its final confirmation: {"latencies_ms": [...]}
"""

import json
import os
import smtplib
import sys
import threading
import time
from email.message import EmailMessage

mode, server, sender, to, path, count = sys.argv[1:7]
count = int(count)
host, port = server.rsplit(":", 1)
with open(path, "rb") as f:
    data = f.read()


def message(i):
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = f"bench {i}"
    m.set_content("")
    m.add_attachment(data, maintype="application", subtype="pdf", filename="page.pdf")
    return m.as_bytes()


def rate(connections):
    per = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]
    refused = []
    messages = [message(i) for i in range(count)]

    def run(n, offset):
        s = smtplib.SMTP(host, int(port), timeout=300)
        s.ehlo("bench")
        for i in range(n):
            s.mail(sender)
            s.rcpt(to)
            code, text = s.data(messages[offset + i])
            if code != 250:
                refused.append(text.decode())
        s.quit()

    threads = []
    offset = 0
    start = time.monotonic()
    for n in per:
        t = threading.Thread(target=run, args=(n, offset))
        offset += n
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    secs = time.monotonic() - start
    print(json.dumps({"mails": count, "secs": secs, "refused": refused[:3], "refused_count": len(refused)}))


def latency(inbox):
    s = smtplib.SMTP(host, int(port), timeout=300)
    s.ehlo("bench")
    out = []
    for i in range(count):
        before = set(n for n in os.listdir(inbox) if n.endswith(".json"))
        body = message(i)
        s.mail(sender)
        s.rcpt(to)
        # smtplib sends the message and the final "." and then reads the
        # reply; the clock starts as the "." goes out (the send of a mail of
        # a few KB on loopback is far below a millisecond).
        start = time.monotonic()
        code, text = s.data(body)
        if code != 250:
            raise SystemExit(f"refused: {code} {text}")
        while True:
            now = set(n for n in os.listdir(inbox) if n.endswith(".json"))
            if now - before:
                out.append((time.monotonic() - start) * 1000)
                break
            time.sleep(0.0005)
    s.quit()
    print(json.dumps({"latencies_ms": out}))


if mode == "rate":
    rate(int(sys.argv[7]))
else:
    latency(sys.argv[7])
