"""A mail server for the tests: the site's smarthost and mailbox, run with
aiosmtpd (not our code). Each message it accepts is written to OUT_DIR as
NNNN.eml (the bytes as received) and NNNN.env (MAIL FROM, then each RCPT
TO, one per line), the .eml last, by rename.

Usage: smarthost.py OUT_DIR PORT     (PORT 0: any free port)

Refuses (550) every recipient whose address starts with "refuse".

Prints "listening on 127.0.0.1:PORT" once it accepts connections.
"""

import asyncio
import itertools
import os
import sys

from aiosmtpd.smtp import SMTP

OUT = sys.argv[1]
PORT = int(sys.argv[2])
os.makedirs(OUT, exist_ok=True)
start = len([n for n in os.listdir(OUT) if n.endswith(".eml")])
counter = itertools.count(start)


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A mailbox that does not exist, to see a permanent refusal.
        if address.startswith("refuse"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        base = os.path.join(OUT, f"{n:04}")
        with open(base + ".env", "w") as f:
            f.write("\n".join([envelope.mail_from, *envelope.rcpt_tos]) + "\n")
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 OK stored"


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), enable_SMTPUTF8=True, decode_data=False),
        "127.0.0.1",
        PORT,
        reuse_address=True,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
