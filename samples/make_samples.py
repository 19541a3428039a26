"""Writes samples/letter.pdf, the two-page business letter that demo.sh
faxes with a cover page: text in the standard PDF fonts, a letterhead
rule, a table and a small chart, as a word processor would lay it out.

    python3 samples/make_samples.py      (needs reportlab: pip install reportlab)

The file is checked in, so the demo needs no Python; run this again only
to change it. Output is byte-for-byte the same on every run.
"""

import os

from reportlab import rl_config

rl_config.invariant = 1  # no timestamps or random ids: reproducible bytes

from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = A4

c = canvas.Canvas(os.path.join(HERE, "letter.pdf"), pagesize=A4)
c.setTitle("faxmesh sample letter")
c.setAuthor("faxmesh")

# Page 1: letterhead, address, body.
c.setFont("Helvetica-Bold", 22)
c.drawString(60, H - 70, "Example Trading Ltd")
c.setFont("Helvetica", 9)
c.drawString(60, H - 86, "1 Harbour Road, Portsmouth  |  fax 1001  |  accounts@example.invalid")
c.setLineWidth(1.5)
c.line(60, H - 96, W - 60, H - 96)

c.setFont("Times-Roman", 11)
y = H - 140
for line in ["Accounts Department", "Northwind Supplies", "22 Mill Lane", "Leeds"]:
    c.drawString(60, y, line)
    y -= 14
c.drawRightString(W - 60, H - 140, "2 December 2026")

c.setFont("Times-Bold", 12)
c.drawString(60, y - 20, "Re: invoice 42, order of 14 November")
c.setFont("Times-Roman", 11)
body = [
    "Dear Ms Whitfield,",
    "",
    "Thank you for your order. Please find the invoice for the goods we shipped",
    "on 20 November below. The full amount is due within thirty days; the bank",
    "details are on the second page.",
    "",
    "Should anything on the invoice be unclear, a fax to 1001 or a call reaches",
    "our accounts desk between nine and five.",
]
y -= 50
for line in body:
    c.drawString(60, y, line)
    y -= 15

# The invoice table.
rows = [
    ("Item", "Qty", "Unit", "Amount"),
    ("Copier paper, A4, 80 g/m2 (box of 5 reams)", "12", "24.50", "294.00"),
    ("Toner cartridge TN-2420", "4", "61.00", "244.00"),
    ("Fax line filter", "2", "9.75", "19.50"),
    ("", "", "Total", "557.50"),
]
y -= 20
c.setLineWidth(0.8)
for i, (item, qty, unit, amount) in enumerate(rows):
    c.setFont("Helvetica-Bold" if i in (0, len(rows) - 1) else "Helvetica", 10)
    c.drawString(66, y, item)
    c.drawRightString(380, y, qty)
    c.drawRightString(450, y, unit)
    c.drawRightString(W - 66, y, amount)
    c.line(60, y - 6, W - 60, y - 6)
    y -= 20
c.rect(60, y + 14, W - 120, 20 * len(rows))

c.setFont("Times-Roman", 11)
c.drawString(60, y - 20, "Yours sincerely,")
c.setFont("Times-Italic", 14)
c.drawString(60, y - 55, "J. Carter")
c.setFont("Times-Roman", 11)
c.drawString(60, y - 72, "Accounts, Example Trading Ltd")
c.showPage()

# Page 2: bank details and a bar chart of the year's orders.
c.setFont("Helvetica-Bold", 14)
c.drawString(60, H - 80, "Payment details")
c.setFont("Courier", 11)
for i, line in enumerate([
    "Account name : Example Trading Ltd",
    "Sort code    : 00-00-00",
    "Account      : 00000000",
    "Reference    : INV-42",
]):
    c.drawString(60, H - 110 - 16 * i, line)

c.setFont("Helvetica-Bold", 14)
c.drawString(60, H - 220, "Your orders this year")
base, left = H - 520, 90
c.setLineWidth(1)
c.line(left, base, left + 400, base)
c.line(left, base, left, base + 250)
c.setFont("Helvetica", 8)
months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov"]
values = [120, 180, 90, 210, 160, 240, 130, 200, 170, 230, 557]
for i, (m, v) in enumerate(zip(months, values)):
    x = left + 10 + i * 35
    h = v * 240 / 600
    c.setFillGray(0.0 if m == "Nov" else 0.35)
    c.rect(x, base, 22, h, fill=1, stroke=0)
    c.setFillGray(0)
    c.drawCentredString(x + 11, base - 12, m)
for v in range(0, 601, 100):
    c.drawRightString(left - 6, base + v * 240 / 600 - 3, str(v))
c.showPage()
c.save()
