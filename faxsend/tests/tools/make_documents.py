"""Makes the real-world documents faxsend's document tests fax: PDFs from
reportlab (standard and embedded fonts, images, forms, rotated, landscape,
cropped and encrypted pages), from ghostscript's ps2pdf and from libtiff's
tiff2pdf (a CCITT image), and photos with EXIF orientations from Pillow.

Usage: make_documents.py OUT_DIR FONT_TTF

Everything is deterministic: the same bytes on every run (reportlab's
invariant mode), so a failure can be reproduced from the files.
"""

import io
import os
import subprocess
import sys

from PIL import Image, ImageDraw
from reportlab import rl_config

rl_config.invariant = 1  # no timestamps or random ids in the files

from reportlab.lib.pagesizes import A4, landscape, letter  # noqa: E402
from reportlab.lib.utils import ImageReader  # noqa: E402
from reportlab.pdfbase import pdfmetrics  # noqa: E402
from reportlab.pdfbase.ttfonts import TTFont  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402
from reportlab.lib.pdfencrypt import StandardEncryption  # noqa: E402

OUT = sys.argv[1]
FONT = sys.argv[2]
os.makedirs(OUT, exist_ok=True)


def path(name):
    return os.path.join(OUT, name)


def photo(w=480, h=320):
    """A picture with smooth tones, edges and an arrow pointing up."""
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    for x in range(w):
        d.line([(x, 0), (x, h // 3)], fill=(x * 255 // w, 80, 255 - x * 255 // w))
    d.rectangle([20, h // 2, w // 3, h - 20], fill=(0, 0, 0))
    d.ellipse([w // 2, h // 2, w - 30, h - 10], outline=(0, 0, 0), width=6)
    # An arrow pointing at the top edge: orientation shows at a glance.
    d.polygon([(w - 60, 10), (w - 90, 60), (w - 30, 60)], fill=(0, 0, 0))
    d.rectangle([w - 68, 60, w - 52, 120], fill=(0, 0, 0))
    return im


def letter_page(c, title, w, h):
    c.setFont("Helvetica-Bold", 20)
    c.drawString(72, h - 90, title)
    c.setFont("Times-Roman", 12)
    y = h - 130
    for i in range(18):
        c.drawString(72, y, f"Line {i + 1}: The quick brown fox jumps over the lazy dog. 0123456789")
        y -= 16
    c.setFont("Courier", 10)
    c.drawString(72, y - 10, "Courier: fixed-width text, {}[]<>|\\ 1l0O")
    c.setLineWidth(2)
    c.rect(72, 80, w - 144, 120)
    c.line(72, 80, w - 72, 200)
    c.setLineWidth(0.5)
    for i in range(10):
        c.line(90 + i * 12, 100, 90 + i * 12, 180)


# 1. Text in the standard 14 fonts (not embedded), line art, a JPEG image,
#    a page in an embedded TrueType font, an A4 and a Letter page.
pdfmetrics.registerFont(TTFont("DejaVuMono", FONT))
c = canvas.Canvas(path("report.pdf"), pagesize=A4)
w, h = A4
letter_page(c, "Quarterly report", w, h)
c.showPage()
c.setFont("DejaVuMono", 14)
c.drawString(72, h - 90, "Embedded TrueType: Grüße, Ελληνικά, Кириллица")
buf = io.BytesIO()
photo().save(buf, "JPEG", quality=90)
buf.seek(0)
c.drawImage(ImageReader(buf), 72, h - 500, width=400, height=267)
c.setFont("Helvetica", 11)
c.drawString(72, h - 530, "A JPEG photograph above, scaled on the page.")
c.showPage()
c.setPageSize(letter)
letter_page(c, "A Letter page", *letter)
c.showPage()
c.save()

# 2. A landscape page, a page with /Rotate 90, a page with a CropBox.
#    reportlab writes a turned page's MediaBox turned back, so that it shows
#    at the page size: a landscape size with rotation 90 gives a portrait
#    MediaBox and /Rotate 90, which shows landscape.
c = canvas.Canvas(path("layout.pdf"), pagesize=landscape(A4))
lw, lh = landscape(A4)
letter_page(c, "Landscape page: the top goes on the left", lw, lh)
c.showPage()
c.setPageRotation(90)
letter_page(c, "Page with /Rotate 90", w, h)
c.showPage()
c.setPageRotation(0)
c.setPageSize(A4)
c.setCropBox((36, 36, w - 36, h - 200))
letter_page(c, "Cropped page", w, h)
c.showPage()
c.save()

# The same file with page 2 not turned (the bytes are as long, so the
# cross-reference table still holds): what /Rotate 90 turns, to compare.
with open(path("layout.pdf"), "rb") as f:
    turned = f.read()
assert turned.count(b"/Rotate 90") == 1
with open(path("layout-unturned.pdf"), "wb") as f:
    f.write(turned.replace(b"/Rotate 90", b"/Rotate 0 "))

# 3. A form: text fields, a check box, filled in.
c = canvas.Canvas(path("form.pdf"), pagesize=A4)
c.setFont("Helvetica", 12)
c.drawString(72, h - 72, "Order form")
form = c.acroForm
form.textfield(name="name", tooltip="Name", x=72, y=h - 130, width=300, height=24,
               value="Jane Doe", borderColor=None, forceBorder=True)
form.textfield(name="qty", tooltip="Quantity", x=72, y=h - 170, width=100, height=24,
               value="12", forceBorder=True)
form.checkbox(name="urgent", x=72, y=h - 210, size=18, checked=True, buttonStyle="check")
c.drawString(100, h - 205, "Urgent")
c.showPage()
c.save()

# 4. Encrypted with an empty user password (opens without one), and one
#    that needs a password.
for name, user in (("locked-open.pdf", ""), ("password.pdf", "s3cret")):
    enc = StandardEncryption(user, ownerPassword="owner", canPrint=1, canModify=0)
    c = canvas.Canvas(path(name), pagesize=A4, encrypt=enc)
    letter_page(c, "Encrypted document", w, h)
    c.showPage()
    c.save()

# 5. PostScript through ghostscript's ps2pdf (fonts embedded by gs).
with open(path("memo.ps"), "w") as f:
    f.write("""%!PS-Adobe-3.0
%%BoundingBox: 0 0 595 842
%%Pages: 2
%%Page: 1 1
/Helvetica-Bold findfont 24 scalefont setfont 72 760 moveto (Memo from ghostscript) show
/Times-Roman findfont 12 scalefont setfont
0 1 30 { /i exch def 72 720 i 18 mul sub moveto (Typeset by PostScript, embedded by ps2pdf.) show } for
4 setlinewidth 72 100 moveto 520 100 lineto stroke
showpage
%%Page: 2 2
newpath 300 420 150 0 360 arc 0.5 setgray fill
0 setgray /Courier findfont 18 scalefont setfont 72 780 moveto (Page two: a grey disc) show
showpage
%%EOF
""")
subprocess.run(["ps2pdf", "-sPAPERSIZE=a4", path("memo.ps"), path("memo.pdf")], check=True)

# 6. A scanned page as a CCITT G4 image inside a PDF (libtiff's tiff2pdf).
scan = photo(1700, 2200).convert("L").point(lambda v: 255 if v > 128 else 0).convert("1")
scan.save(path("scan-g4.tif"), compression="group4", dpi=(200, 200))
subprocess.run(["tiff2pdf", "-o", path("scan.pdf"), path("scan-g4.tif")], check=True)

# 7. Broken and empty documents.
with open(path("report.pdf"), "rb") as f:
    good = f.read()
with open(path("damaged.pdf"), "wb") as f:
    f.write(b"%PDF-1.4\n" + b"\x00garbage" * 50)
with open(path("empty.pdf"), "wb") as f:
    body = [b"%PDF-1.4\n"]
    offsets = []
    for obj in (b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"):
        offsets.append(sum(map(len, body)))
        body.append(b"%d 0 obj\n%s\nendobj\n" % (len(offsets), obj))
    xref = sum(map(len, body))
    body.append(b"xref\n0 3\n0000000000 65535 f \n")
    body += [b"%010d 00000 n \n" % o for o in offsets]
    body.append(b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    f.write(b"".join(body))

# 8. Phone photos: the same picture stored turned, with the EXIF
#    orientation that turns it back (2..8), and the upright reference.
up = photo()
up.save(path("photo-upright.png"))
turns = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_90],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_270],
}
for tag, ops in turns.items():
    stored = up
    for op in ops:
        stored = stored.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = tag
    stored.save(path(f"photo-exif{tag}.jpg"), "JPEG", quality=95, exif=exif)
