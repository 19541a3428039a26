#!/usr/bin/env python3
"""Writes one picture as TIFF files in every layout faxmesh reads, each with
the rendering faxmesh must match.

usage: make_layouts.py OUTDIR

The picture (text-like strokes, grey ramps, colour blocks) is drawn with
Pillow, then saved by Pillow itself, copied into other layouts by libtiff's
`tiffcp`, or, for layouts neither tool writes (2/4/12-bit grey, 1/2/4-bit
palettes, 16-bit colour, associated alpha, uncompressed subsampled YCbCr),
written here by hand with `struct`.

For every file the reference is, page by page, Pillow's own reading of it
(`Image.open`, laid over white, `convert('L')`), saved as PNG. Where Pillow
cannot read a layout, or reads it in a way no user wants (it clips 12- and
16-bit grey to 255 instead of scaling, and does not invert 16-bit
min-is-white), the reference is computed here from the stored samples with
the same arithmetic, and the manifest says so.

OUTDIR/manifest.tsv lists one file a line:
    family  name  file  kind  origin  ref1.png,ref2.png,...
kind is `lossless` or `jpeg`; origin is `pillow` or `source`.
Everything is deterministic and takes about five seconds.
"""

import functools
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

W, H = 301, 203
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "layouts")
MANIFEST = []


def l24(r, g, b):
    """Pillow's RGB to L: ITU-R 601-2 luma in 16.16 fixed point, rounded."""
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16


def picture():
    """The source picture: RGB, W x H, with an alpha plane beside it."""
    im = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(im)
    # Text-like lines of glyph-sized black strokes with holes.
    seed = 12345

    def rnd(n):
        nonlocal seed
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        return (seed >> 8) % n

    y = 6
    while y < 70:
        x = 8 + rnd(10)
        while x < W - 20:
            w = 3 + rnd(7)
            top = y + rnd(3)
            d.rectangle([x, top, x + w - 1, y + 11], fill="black")
            if rnd(3) == 0:
                d.line([x + w // 2, top + 2, x + w // 2, y + 8], fill="white")
            x += w + 2 + (8 if rnd(6) == 0 else 0)
        y += 16
    # Grey ramps, across and down.
    for x in range(W):
        v = x * 255 // (W - 1)
        d.line([x, 74, x, 95], fill=(v, v, v))
    for y in range(100, H):
        v = (y - 100) * 255 // (H - 101)
        d.line([0, y, 40, y], fill=(v, v, v))
    # Colour blocks of different luminance.
    colours = [
        (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 255),
        (255, 0, 255), (255, 255, 0), (255, 128, 0), (20, 30, 90),
        (200, 180, 150), (90, 60, 30),
    ]
    for i, c in enumerate(colours):
        x = 50 + (i % 5) * 40
        y = 102 + (i // 5) * 40
        d.rectangle([x, y, x + 33, y + 33], fill=c)
    # A colour ramp and a soft disc.
    for x in range(250, W):
        for y in range(100, H):
            im.putpixel((x, y), ((x * 5) % 256, (y * 3) % 256, (x + y) % 256))
    d.ellipse([60, 182, 180, 202], fill=(120, 140, 160), outline=(0, 0, 0))
    alpha = Image.new("L", (W, H), 255)
    da = ImageDraw.Draw(alpha)
    for x in range(W):
        da.line([x, 100, x, 140], fill=x * 255 // (W - 1))
    da.rectangle([200, 150, 240, 190], fill=0)
    da.rectangle([10, 20, 60, 40], fill=128)
    return im, alpha


SRC, ALPHA = picture()
RGB = [SRC.getpixel((x, y)) for y in range(H) for x in range(W)]
A = [ALPHA.getpixel((x, y)) for y in range(H) for x in range(W)]
GREY = [l24(*p) for p in RGB]


def rows_of(flat):
    """Splits the page's pixels (tuples or ints) into H rows of samples."""
    if flat and isinstance(flat[0], tuple):
        flat = [s for p in flat for s in p]
    n = len(flat) // H
    return [flat[y * n:(y + 1) * n] for y in range(H)]


def pack_row(samples, bits, order):
    """One row of samples, packed MSB first and padded to a byte."""
    if bits == 8:
        return bytes(samples)
    if bits == 16:
        return struct.pack(order + "%dH" % len(samples), *samples)
    if bits in (32, 64):
        # Floating point (SampleFormat 3).
        return struct.pack(order + "%d%s" % (len(samples), "f" if bits == 32 else "d"), *samples)
    acc = nbits = 0
    out = bytearray()
    for s in samples:
        acc = (acc << bits) | s
        nbits += bits
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
    if nbits:
        out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


def packbits(data):
    """PackBits: literal runs and repeats of at most 128 bytes."""
    out = bytearray()
    i = 0
    while i < len(data):
        run = 1
        while i + run < len(data) and run < 128 and data[i + run] == data[i]:
            run += 1
        if run > 1:
            out += bytes([257 - run, data[i]])
            i += run
            continue
        j = i
        while j < len(data) and j - i < 128 and not (
            j + 1 < len(data) and data[j + 1] == data[j]
        ):
            j += 1
        j = max(j, i + 1)
        out.append(j - i - 1)
        out += data[i:j]
        i = j
    return bytes(out)


def compress(data, compression):
    if compression == 1:
        return data
    if compression == 8:
        return zlib.compress(data, 6)
    if compression == 32773:
        return packbits(data)
    raise ValueError(compression)


def write_tiff(name, width, height, rows, *, bits, spp, photometric,
               order="<", compression=1, rows_per_strip=None, planar=1,
               extra=None, colormap=None, tile=None, fill_order=None,
               tags=None, chunks=None):
    """Writes a classic TIFF by hand. `rows` holds each row's interleaved
    samples; planar and tiled layouts are cut from it here. `chunks`, when
    given, are the stored chunks as they are (for YCbCr data units)."""
    planes = spp if planar == 2 else 1
    per_plane = 1 if planar == 2 else spp

    def plane_rows(p, y0, y1, x0, x1):
        """Rows y0..y1, pixels x0..x1 of plane p; past the page's edge the
        last pixel and row repeat (tile padding)."""
        out = []
        for y in range(y0, y1):
            row = rows[min(y, height - 1)]
            if x1 > width:
                row = row + row[-spp:] * (x1 - width)
            seg = row[x0 * spp:x1 * spp]
            if planar == 2:
                seg = seg[p::spp]
            out.append(pack_row(seg, bits, order))
        return b"".join(out)

    if chunks is None:
        chunks = []
        if tile:
            tw, tl = tile
            for p in range(planes):
                for ty in range(0, height, tl):
                    for tx in range(0, width, tw):
                        chunks.append(plane_rows(p, ty, ty + tl, tx, tx + tw))
        else:
            rps = rows_per_strip or height
            for p in range(planes):
                for y in range(0, height, rps):
                    chunks.append(plane_rows(p, y, min(y + rps, height), 0, width))
        chunks = [compress(c, compression) for c in chunks]
    if fill_order == 2:
        chunks = [bytes(int("{:08b}".format(b)[::-1], 2) for b in c) for c in chunks]
    head = bytearray(b"II*\0" if order == "<" else b"MM\0*")
    head += b"\0\0\0\0"
    offsets = []
    for c in chunks:
        offsets.append(len(head))
        head += c
        if len(head) % 2:
            head += b"\0"
    entries = {
        256: (4, [width]), 257: (4, [height]),
        258: (3, [bits] * spp), 259: (3, [compression]),
        262: (3, [photometric]), 277: (3, [spp]),
        282: (5, [(200, 1)]), 283: (5, [(200, 1)]), 296: (3, [2]),
        284: (3, [planar]),
    }
    if tile:
        entries[322] = (4, [tile[0]])
        entries[323] = (4, [tile[1]])
        entries[324] = (4, offsets)
        entries[325] = (4, [len(c) for c in chunks])
    else:
        entries[273] = (4, offsets)
        entries[278] = (4, [rows_per_strip or height])
        entries[279] = (4, [len(c) for c in chunks])
    if extra is not None:
        entries[338] = (3, list(extra))
    if colormap is not None:
        entries[320] = (3, colormap)
    if fill_order is not None:
        entries[266] = (3, [fill_order])
    for tag, value in (tags or {}).items():
        entries[tag] = value
    ifd_at = len(head)
    struct.pack_into(order + "I", head, 4, ifd_at)
    n = len(entries)
    data_at = ifd_at + 2 + 12 * n + 4
    ifd = bytearray(struct.pack(order + "H", n))
    blob = bytearray()
    for tag in sorted(entries):
        typ, vals = entries[tag]
        if typ == 5:
            raw = b"".join(struct.pack(order + "II", *v) for v in vals)
        else:
            fmt = {3: "H", 4: "I"}[typ]
            raw = struct.pack(order + fmt * len(vals), *vals)
        if len(raw) <= 4:
            field = raw.ljust(4, b"\0")
        else:
            field = struct.pack(order + "I", data_at + len(blob))
            blob += raw
            if len(blob) % 2:
                blob += b"\0"
        ifd += struct.pack(order + "HHI", tag, typ, len(vals)) + field
    ifd += b"\0\0\0\0"
    (OUT / name).write_bytes(bytes(head + ifd + blob))
    return name


def tiffcp(src, name, *args):
    """Copies `src` (a file or a list of files, one page each) into `name`
    with libtiff's tiffcp and the given options."""
    sources = [src] if isinstance(src, str) else src
    subprocess.run(["tiffcp", *args, *(str(OUT / s) for s in sources), str(OUT / name)],
                   check=True, stdout=subprocess.DEVNULL)
    return name


def pillow_pages(name):
    """Pillow's rendering of every page: over white, then L."""
    pages = []
    with Image.open(OUT / name) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            frame = im.copy()
            if frame.mode == "La":
                # Pillow reads grey with associated alpha but cannot convert
                # it; lay the premultiplied grey over white by hand.
                g, a = frame.split()
                frame = Image.frombytes("L", frame.size, bytes(
                    min(255, gv + 255 - av)
                    for gv, av in zip(g.tobytes(), a.tobytes())))
            elif frame.mode in ("RGBA", "LA", "PA", "RGBa") or (
                    frame.mode == "P" and "transparency" in frame.info):
                rgba = frame.convert("RGBA")
                white = Image.new("RGBA", frame.size, (255, 255, 255, 255))
                frame = Image.alpha_composite(white, rgba)
            pages.append(frame.convert("L"))
    return pages


def save_refs(name, pages):
    refs = []
    for i, page in enumerate(pages):
        ref = "%s.ref%d.png" % (name, i + 1)
        page.save(OUT / ref)
        refs.append(ref)
    return refs


def case(family, name, file, kind="lossless", source=None, fallback=None):
    """Records a file; its reference is Pillow's reading unless `source`
    (a list of L images, one a page) is given. `fallback` is the reference
    where Pillow cannot read the file at all."""
    origin = "source" if source is not None else "pillow"
    pages = source
    if pages is None:
        try:
            with warnings.catch_warnings():
                # Pillow warns before it fails on what it cannot read.
                warnings.simplefilter("ignore")
                pages = pillow_pages(file)
        except (OSError, ValueError, SyntaxError) as e:
            if fallback is None:
                raise
            print("%s: Pillow cannot read it (%s); reference from the source" % (name, e),
                  file=sys.stderr)
            pages, origin = fallback, "source"
    MANIFEST.append((family, name, file, kind, origin, ",".join(save_refs(name, pages))))


def grey_image(values, width=W):
    return Image.frombytes("L", (width, len(values) // width), bytes(values))


# ---- the families ---------------------------------------------------------

def palettes():
    pal8 = SRC.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    pal8.save(OUT / "pal8.tif")
    case("palette", "pal8", "pal8.tif")
    pal8.save(OUT / "pal8_lzw.tif", compression="tiff_lzw")
    case("palette", "pal8_lzw", "pal8_lzw.tif")
    case("palette", "pal8_lzw_predictor", tiffcp("pal8.tif", "pal8_lzw2.tif", "-c", "lzw:2"))
    case("palette", "pal8_tiles", tiffcp("pal8.tif", "pal8_tiles.tif", "-t", "-w", "64", "-l", "64"))
    case("palette", "pal8_packbits", tiffcp("pal8.tif", "pal8_pb.tif", "-c", "packbits"))
    pa = pal8.convert("PA")
    pa.putalpha(ALPHA)
    pa.save(OUT / "pal8_alpha.tif", compression="tiff_deflate")
    case("palette", "pal8_unassociated_alpha", "pal8_alpha.tif")
    for bits in (1, 2, 4):
        colours = 1 << bits
        q = SRC.quantize(colours, method=Image.Quantize.MEDIANCUT)
        pal = q.getpalette()[:3 * colours]
        pal += [0] * (3 * colours - len(pal))
        # The colour map is 16-bit: all reds, then greens, then blues.
        cmap = [pal[3 * i + c] * 257 for c in range(3) for i in range(colours)]
        idx = list(q.tobytes())
        name = write_tiff("pal%d.tif" % bits, W, H, rows_of(idx), bits=bits, spp=1,
                          photometric=3, colormap=cmap, rows_per_strip=16)
        case("palette", "pal%d" % bits, name)
        case("palette", "pal%d_lzw" % bits, tiffcp(name, "pal%d_lzw.tif" % bits, "-c", "lzw"))
        case("palette", "pal%d_zip_tiles" % bits,
             tiffcp(name, "pal%d_tiles.tif" % bits, "-c", "zip", "-t", "-w", "64", "-l", "32"))
        name = write_tiff("pal%d_be.tif" % bits, W, H, rows_of(idx), bits=bits, spp=1,
                          photometric=3, colormap=cmap, order=">", compression=32773,
                          rows_per_strip=7)
        case("palette", "pal%d_be_packbits" % bits, name)


def grey_depths():
    one = [0 if g < 128 else 1 for g in GREY]
    # Pillow writes "1" as min-is-black.
    Image.frombytes("L", (W, H), bytes(v * 255 for v in one)).convert("1").save(OUT / "grey1.tif")
    case("grey", "grey1", "grey1.tif")
    case("grey", "grey1_lzw", tiffcp("grey1.tif", "grey1_lzw.tif", "-c", "lzw"))
    case("grey", "grey1_zip_tiles", tiffcp("grey1.tif", "grey1_tiles.tif", "-c", "zip", "-t",
                                           "-w", "64", "-l", "64"))
    case("grey", "grey1_g3", tiffcp("grey1.tif", "grey1_g3.tif", "-c", "g3"))
    case("grey", "grey1_g4", tiffcp("grey1.tif", "grey1_g4.tif", "-c", "g4"))
    for bits in (2, 4):
        vals = [g >> (8 - bits) for g in GREY]
        name = write_tiff("grey%d.tif" % bits, W, H, rows_of(vals), bits=bits, spp=1,
                          photometric=1, rows_per_strip=10)
        case("grey", "grey%d" % bits, name)
        case("grey", "grey%d_lzw" % bits, tiffcp(name, "grey%d_lzw.tif" % bits, "-c", "lzw"))
        case("grey", "grey%d_tiles" % bits, tiffcp(name, "grey%d_tiles.tif" % bits, "-t",
                                                    "-w", "32", "-l", "48"))
    grey_image(GREY).save(OUT / "grey8.tif")
    case("grey", "grey8", "grey8.tif")
    case("grey", "grey8_lzw_predictor", tiffcp("grey8.tif", "grey8_lzw2.tif", "-c", "lzw:2"))
    case("grey", "grey8_zip_predictor", tiffcp("grey8.tif", "grey8_zip2.tif", "-c", "zip:2"))
    # 12 bits: the 8-bit level repeated into the low bits. Pillow reads it
    # (little-endian, min-is-black only) but clips to 255 when converting
    # to L, which turns the page white; the reference is the level itself.
    v12 = [(g << 4) | (g >> 4) for g in GREY]
    name = write_tiff("grey12.tif", W, H, rows_of(v12), bits=12, spp=1, photometric=1,
                      rows_per_strip=9)
    src = [grey_image([v >> 4 for v in v12])]
    case("grey", "grey12", name, source=src)
    case("grey", "grey12_lzw", tiffcp(name, "grey12_lzw.tif", "-c", "lzw"), source=src)
    name = write_tiff("grey12_be_tiles.tif", W, H, rows_of(v12), bits=12, spp=1,
                      photometric=1, order=">", tile=(32, 16), compression=8)
    case("grey", "grey12_be_zip_tiles", name, source=src)
    # 16 bits: noise in the low byte, so a reader that rounds instead of
    # taking the high byte shows it. Pillow clips I;16 to 255 for L.
    v16 = [(g << 8) | ((i * 37) & 0xFF) for i, g in enumerate(GREY)]
    src = [grey_image([v >> 8 for v in v16])]
    Image.frombytes("I;16", (W, H), struct.pack("<%dH" % len(v16), *v16)).save(OUT / "grey16.tif")
    case("grey", "grey16", "grey16.tif", source=src)
    case("grey", "grey16_be", tiffcp("grey16.tif", "grey16_be.tif", "-B"), source=src)
    case("grey", "grey16_lzw_predictor", tiffcp("grey16.tif", "grey16_lzw2.tif", "-c", "lzw:2"),
         source=src)
    case("grey", "grey16_be_zip_predictor_tiles",
         tiffcp("grey16.tif", "grey16_tiles.tif", "-B", "-c", "zip:2", "-t", "-w", "48",
                "-l", "32"), source=src)


def rgb_rgba():
    SRC.save(OUT / "rgb8.tif")
    case("rgb", "rgb8", "rgb8.tif")
    rgba = SRC.copy()
    rgba.putalpha(ALPHA)
    rgba.save(OUT / "rgba8.tif")
    case("rgb", "rgba8_unassociated", "rgba8.tif")
    # Associated alpha: colour premultiplied; Pillow reads it as RGBa.
    pre = [tuple((c * a + 127) // 255 for c in p) + (a,) for p, a in zip(RGB, A)]
    name = write_tiff("rgba8_assoc.tif", W, H, rows_of(pre), bits=8, spp=4, photometric=2,
                      extra=[1], rows_per_strip=20)
    case("rgb", "rgba8_associated", name)
    rgbx = [p + (i & 0xFF,) for i, p in enumerate(RGB)]
    name = write_tiff("rgbx8.tif", W, H, rows_of(rgbx), bits=8, spp=4, photometric=2,
                      extra=[0], rows_per_strip=20)
    case("rgb", "rgb8_unspecified_extra", name)
    la = grey_image(GREY).convert("LA")
    la.putalpha(ALPHA)
    la.save(OUT / "la8.tif")
    case("rgb", "la8_unassociated", "la8.tif")
    pre = [((g * a + 127) // 255, a) for g, a in zip(GREY, A)]
    name = write_tiff("la8_assoc.tif", W, H, rows_of(pre), bits=8, spp=2, photometric=1,
                      extra=[1], compression=8, rows_per_strip=32)
    case("rgb", "la8_associated_zip", name)
    # 16-bit colour: Pillow reads the high byte of each sample.
    rgb16 = [tuple((c << 8) | ((c * 7 + i) & 0xFF) for c in p) for i, p in enumerate(RGB)]
    for order, tag in (("<", "le"), (">", "be")):
        name = write_tiff("rgb16_%s.tif" % tag, W, H, rows_of(rgb16), bits=16, spp=3,
                          photometric=2, order=order, rows_per_strip=11)
        case("rgb", "rgb16_%s" % tag, name)
    case("rgb", "rgb16_lzw_predictor", tiffcp("rgb16_le.tif", "rgb16_lzw2.tif", "-c", "lzw:2"))
    rgba16 = [p + ((a << 8) | a,) for p, a in zip(rgb16, A)]
    name = write_tiff("rgba16.tif", W, H, rows_of(rgba16), bits=16, spp=4, photometric=2,
                      extra=[2], rows_per_strip=13)
    case("rgb", "rgba16_unassociated", name)
    # Grey and alpha of 16 bits: Pillow has no mode for it.
    la16 = [((g << 8) | g, (a << 8) | a) for g, a in zip(GREY, A)]
    name = write_tiff("la16.tif", W, H, rows_of(la16), bits=16, spp=2, photometric=1,
                      extra=[2], order=">", rows_per_strip=17)
    ref = [over_white(g, a) for g, a in zip(GREY, A)]
    case("rgb", "la16_unassociated", name, source=[grey_image(ref)])


def over_white(g, a):
    return (g * a + 255 * (255 - a) + 127) // 255


def planar_tiles():
    case("planar_tiles", "rgb8_planar", tiffcp("rgb8.tif", "rgb8_planar.tif", "-p", "separate"))
    case("planar_tiles", "rgba8_planar_lzw",
         tiffcp("rgba8.tif", "rgba8_planar.tif", "-p", "separate", "-c", "lzw"))
    case("planar_tiles", "rgb8_tiles", tiffcp("rgb8.tif", "rgb8_tiles.tif", "-t", "-w", "64",
                                              "-l", "64"))
    case("planar_tiles", "rgb8_planar_tiles_zip",
         tiffcp("rgb8.tif", "rgb8_planar_tiles.tif", "-p", "separate", "-t", "-w", "64", "-l",
                "64", "-c", "zip"))
    case("planar_tiles", "rgba8_tiles_packbits",
         tiffcp("rgba8.tif", "rgba8_tiles.tif", "-t", "-w", "32", "-l", "32", "-c", "packbits"))
    # tiffcp makes no planar copy of 16-bit samples; write one, then let it
    # compress that.
    rgb16 = [tuple((c << 8) | ((c * 7 + i) & 0xFF) for c in p) for i, p in enumerate(RGB)]
    write_tiff("rgb16_planar_tiles_raw.tif", W, H, rows_of(rgb16), bits=16, spp=3,
               photometric=2, order=">", planar=2, tile=(80, 48))
    case("planar_tiles", "rgb16_be_planar_tiles_lzw_predictor",
         tiffcp("rgb16_planar_tiles_raw.tif", "rgb16_planar_tiles.tif", "-t", "-w", "80",
                "-l", "48", "-c", "lzw:2"))
    case("planar_tiles", "grey8_tiles_zip",
         tiffcp("grey8.tif", "grey8_tiles.tif", "-t", "-w", "16", "-l", "16", "-c", "zip"))
    case("planar_tiles", "la8_planar", tiffcp("la8.tif", "la8_planar.tif", "-p", "separate"),
         fallback=[grey_image([over_white(g, a) for g, a in zip(GREY, A)])])


def compressions():
    for c in ("tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits"):
        SRC.save(OUT / ("rgb8_%s.tif" % c), compression=c)
        case("compression", "rgb8_pillow_" + c, "rgb8_%s.tif" % c)
    for opt, tag in (("lzw", "lzw"), ("lzw:2", "lzw_predictor"), ("zip", "zip"),
                     ("zip:2", "zip_predictor"), ("packbits", "packbits"), ("none", "none")):
        case("compression", "rgb8_tiffcp_" + tag,
             tiffcp("rgb8.tif", "rgb8_cp_%s.tif" % tag, "-c", opt, "-r", "16"))
    case("compression", "rgb8_one_strip_lzw",
         tiffcp("rgb8.tif", "rgb8_one_strip.tif", "-c", "lzw", "-r", str(H)))


def ycbcr_jpeg():
    for q, tag in (("", ""), (":95", "_q95")):
        case("ycbcr_jpeg", "rgb_to_ycbcr_jpeg" + tag,
             tiffcp("rgb8.tif", "ycbcr_jpeg%s.tif" % tag, "-c", "jpeg" + q, "-r", "32"), kind="jpeg")
    case("ycbcr_jpeg", "ycbcr_jpeg_tiles",
         tiffcp("rgb8.tif", "ycbcr_jpeg_tiles.tif", "-c", "jpeg", "-t", "-w", "64", "-l", "64"),
         kind="jpeg")
    case("ycbcr_jpeg", "ycbcr_jpeg_strips16",
         tiffcp("rgb8.tif", "ycbcr_jpeg_r16.tif", "-c", "jpeg", "-r", "16"), kind="jpeg")
    case("ycbcr_jpeg", "rgb_jpeg", tiffcp("rgb8.tif", "rgb_jpeg.tif", "-c", "jpeg:r", "-r", "32"),
         kind="jpeg")
    case("ycbcr_jpeg", "grey_jpeg", tiffcp("grey8.tif", "grey_jpeg.tif", "-c", "jpeg", "-r", "48"),
         kind="jpeg")
    SRC.save(OUT / "pillow_jpeg.tif", compression="jpeg", quality=90)
    case("ycbcr_jpeg", "pillow_jpeg", "pillow_jpeg.tif", kind="jpeg")
    # Uncompressed and Deflate YCbCr, written by hand in data units: for
    # each block of h x v pixels its h*v Y samples, then one Cb and one Cr.
    ycc = [rgb_to_ycbcr(*p) for p in RGB]
    luma = [clamp8(y) for y, _, _ in ycc]
    for (h, v), comp in (((2, 2), 1), ((2, 1), 8), ((1, 1), 32773), ((4, 4), 1),
                         ((1, 2), 8)):
        name = "ycbcr_%dx%d_%s.tif" % (h, v, {1: "none", 8: "zip", 32773: "packbits"}[comp])
        rps = 4 * v
        chunks, ref = ycbcr_units(ycc, luma, h, v, rps)
        write_tiff(name, W, H, None, bits=8, spp=3, photometric=6, rows_per_strip=rps,
                   chunks=[compress(c, comp) for c in chunks], compression=comp,
                   tags={530: (3, [h, v]),
                         532: (5, [(0, 1), (255, 1), (128, 1), (255, 1), (128, 1), (255, 1)])})
        # Pillow reads the compressed ones through libtiff (chroma repeated
        # over each unit, as here) but not the uncompressed subsampled ones.
        case("ycbcr_jpeg", name[:-4], name, fallback=[grey_image(ref)])


def rgb_to_ycbcr(r, g, b):
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return y, (b - y) / 1.772 + 128, (r - y) / 1.402 + 128


def clamp8(v):
    return max(0, min(255, int(v + 0.5) if v >= 0 else 0))


def ycbcr_units(ycc, luma, h, v, rps):
    """Chunks of YCbCr data units for strips of `rps` rows, and the
    luminance a reader that repeats each unit's chroma over its pixels (as
    libtiff does) must show."""
    chunks = []
    ref = [0] * (W * H)
    for y0 in range(0, H, rps):
        rows = min(rps, H - y0)
        data = bytearray()
        for by in range(0, rows, v):
            for bx in range(0, W, h):
                at, pts = [], []
                for dy in range(v):
                    for dx in range(h):
                        # Past the page's edge the last pixel repeats.
                        x, y = min(bx + dx, W - 1), min(y0 + by + dy, y0 + rows - 1)
                        at.append(y * W + x)
                        if bx + dx < W and by + dy < rows:
                            pts.append(((y0 + by + dy) * W + bx + dx, len(at) - 1))
                ys = [luma[i] for i in at]
                cb = clamp8(sum(ycc[i][1] for i in at) / len(at))
                cr = clamp8(sum(ycc[i][2] for i in at) / len(at))
                data += bytes(ys) + bytes([cb, cr])
                for p, i in pts:
                    ref[p] = l24(*ycbcr_to_rgb(ys[i], cb, cr))
        chunks.append(bytes(data))
    return chunks, ref


@functools.lru_cache(maxsize=None)
def ycbcr_to_rgb(y, cb, cr):
    """ITU-R 601 YCbCr with the default ReferenceBlackWhite, rounded."""
    r = y + 1.402 * (cr - 128)
    b = y + 1.772 * (cb - 128)
    g = (y - 0.114 * b - 0.299 * r) / 0.587
    return clamp8(r), clamp8(g), clamp8(b)


def cmyk():
    # Grey component replacement, so K carries the blacks and greys.
    bands = []
    for r, g, b in RGB:
        k = 255 - max(r, g, b)
        if k == 255:
            bands.append((0, 0, 0, 255))
            continue
        bands.append(tuple((255 - c - k) * 255 // (255 - k) for c in (r, g, b)) + (k,))
    im = Image.frombytes("CMYK", (W, H), bytes(s for p in bands for s in p))
    im.save(OUT / "cmyk8.tif")
    case("cmyk", "cmyk8", "cmyk8.tif")
    im.save(OUT / "cmyk8_lzw.tif", compression="tiff_lzw")
    case("cmyk", "cmyk8_lzw", "cmyk8_lzw.tif")
    case("cmyk", "cmyk8_planar_zip",
         tiffcp("cmyk8.tif", "cmyk8_planar.tif", "-p", "separate", "-c", "zip"))
    case("cmyk", "cmyk8_tiles", tiffcp("cmyk8.tif", "cmyk8_tiles.tif", "-t", "-w", "64",
                                       "-l", "64"))
    c16 = [tuple((s << 8) | (s ^ 0x5A) for s in p) for p in bands]
    name = write_tiff("cmyk16.tif", W, H, rows_of(c16), bits=16, spp=4, photometric=5,
                      rows_per_strip=25)
    case("cmyk", "cmyk16", name)


def bigtiff():
    case("bigtiff", "big_grey8_lzw", tiffcp("grey8.tif", "big_grey8.tif", "-8", "-c", "lzw"))
    # Pillow 13 cannot open a big-endian BigTIFF; the same picture as a
    # classic TIFF is the reference then.
    case("bigtiff", "big_rgb8_tiles_be",
         tiffcp("rgb8.tif", "big_rgb8_tiles.tif", "-8", "-B", "-t", "-w", "64", "-l", "64"),
         fallback=pillow_pages("rgb8.tif"))
    case("bigtiff", "big_pal4", tiffcp("pal4.tif", "big_pal4.tif", "-8"))
    case("bigtiff", "big_grey1_g4", tiffcp("grey1.tif", "big_g4.tif", "-8", "-c", "g4"))
    case("bigtiff", "big_ycbcr_jpeg", tiffcp("rgb8.tif", "big_jpeg.tif", "-8", "-c", "jpeg", "-r", "64"),
         kind="jpeg")
    case("bigtiff", "big_multipage",
         tiffcp(["grey1_g4.tif", "pal8_lzw.tif", "cmyk8.tif"], "big_multi.tif", "-8"))


def multipage():
    frames = [SRC, grey_image(GREY), SRC.convert("P", palette=Image.Palette.ADAPTIVE),
              grey_image(GREY).point(lambda v: 255 if v > 128 else 0).convert("1"),
              SRC.crop((10, 20, 110, 70))]
    frames[0].save(OUT / "multi_pillow.tif", save_all=True, append_images=frames[1:],
                   compression="tiff_lzw")
    case("multipage", "multi_pillow_lzw", "multi_pillow.tif")
    parts = ["grey1_g4.tif", "rgb8_tiles.tif", "pal2.tif", "grey16.tif", "rgba8_assoc.tif",
             "ycbcr_1x1_packbits.tif", "cmyk8_planar.tif"]
    refs = [ref for part in parts for ref in reference_of(part)]
    case("multipage", "multi_tiffcp_mixed", tiffcp(parts, "multi_mixed.tif"), source=refs)


def reference_of(file):
    """The reference pages of a file written already."""
    for _, _, f, _, _, refs in MANIFEST:
        if f == file:
            return [Image.open(OUT / r) for r in refs.split(",")]
    raise KeyError(file)


def white_black():
    inv = [255 - g for g in GREY]
    for bits in (1, 2, 4, 8):
        vals = [v >> (8 - bits) for v in inv]
        name = write_tiff("miniswhite%d.tif" % bits, W, H, rows_of(vals), bits=bits, spp=1,
                          photometric=0, rows_per_strip=30)
        case("min_is_white", "miniswhite%d" % bits, name)
        case("min_is_white", "miniswhite%d_lzw" % bits,
             tiffcp(name, "miniswhite%d_lzw.tif" % bits, "-c", "lzw"))
    case("min_is_white", "miniswhite1_g4", tiffcp("miniswhite1.tif", "miniswhite1_g4.tif",
                                                  "-c", "g4"))
    # 16-bit min-is-white: Pillow shows it without inverting.
    v16 = [(v << 8) | v for v in inv]
    name = write_tiff("miniswhite16.tif", W, H, rows_of(v16), bits=16, spp=1, photometric=0,
                      rows_per_strip=30)
    case("min_is_white", "miniswhite16", name, source=[grey_image(GREY)])
    # Min-is-white with alpha: Pillow has no mode for it.
    la = [(255 - g, a) for g, a in zip(GREY, A)]
    name = write_tiff("miniswhite_la8.tif", W, H, rows_of(la), bits=8, spp=2, photometric=0,
                      extra=[2], rows_per_strip=30)
    case("min_is_white", "miniswhite8_alpha", name,
         source=[grey_image([over_white(g, a) for g, a in zip(GREY, A)])])
    for bits in (1, 8):
        vals = [v >> (8 - bits) for v in GREY]
        name = write_tiff("minisblack%d_be.tif" % bits, W, H, rows_of(vals), bits=bits, spp=1,
                          photometric=1, order=">", compression=32773, rows_per_strip=5)
        case("min_is_black", "minisblack%d_be_packbits" % bits, name)


def fill_order():
    for src, tag in (("grey8.tif", "grey8"), ("rgb8.tif", "rgb8"), ("grey4.tif", "grey4"),
                     ("pal8.tif", "pal8"), ("grey1.tif", "grey1"), ("grey16.tif", "grey16"),
                     ("miniswhite1.tif", "miniswhite1")):
        for comp in ("none", "lzw", "zip", "packbits"):
            name = "%s_fill2_%s.tif" % (tag, comp)
            tiffcp(src, name, "-f", "lsb2msb", "-c", comp)
            if tag == "grey16":
                case("fill_order", name[:-4], name,
                     source=[grey_image([((g << 8) | ((i * 37) & 0xFF)) >> 8
                                         for i, g in enumerate(GREY)])])
            else:
                case("fill_order", name[:-4], name)


def floats():
    # Floating point, 0.0 black to 1.0 white as image editors write it.
    # Pillow opens 32-bit float grey as F and clips it to 0..255, which
    # shows such a page black; the reference is the level itself.
    src = [grey_image(GREY)]
    Image.frombytes("F", (W, H), struct.pack("<%df" % len(GREY), *(g / 255 for g in GREY))) \
        .save(OUT / "grey_f32.tif")
    case("float", "grey_f32", "grey_f32.tif", source=src)
    case("float", "grey_f32_zip_float_predictor",
         tiffcp("grey_f32.tif", "grey_f32_zip3.tif", "-c", "zip:3"), source=src)
    case("float", "grey_f32_lzw_predictor",
         tiffcp("grey_f32.tif", "grey_f32_lzw2.tif", "-c", "lzw:2"), source=src)
    name = write_tiff("grey_f64_be_tiles.tif", W, H, rows_of([g / 255 for g in GREY]), bits=64,
                      spp=1, photometric=1, order=">", tile=(32, 32), compression=8,
                      tags={339: (3, [3])})
    case("float", "grey_f64_be_zip_tiles", name, source=src)
    name = write_tiff("miniswhite_f32.tif", W, H, rows_of([1 - g / 255 for g in GREY]), bits=32,
                      spp=1, photometric=0, rows_per_strip=20, tags={339: (3, [3])})
    case("float", "miniswhite_f32", name, source=src)
    rgbf = [tuple(c / 255 for c in p) for p in RGB]
    name = write_tiff("rgb_f32.tif", W, H, rows_of(rgbf), bits=32, spp=3, photometric=2,
                      rows_per_strip=20, tags={339: (3, [3, 3, 3])})
    case("float", "rgb_f32", name, source=[grey_image([l24(*p) for p in RGB])])
    case("float", "rgb_f32_zip_float_predictor",
         tiffcp(name, "rgb_f32_zip3.tif", "-c", "zip:3"),
         source=[grey_image([l24(*p) for p in RGB])])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    SRC.save(OUT / "source.png")
    palettes()
    grey_depths()
    rgb_rgba()
    planar_tiles()
    compressions()
    ycbcr_jpeg()
    cmyk()
    bigtiff()
    multipage()
    white_black()
    fill_order()
    floats()
    with open(OUT / "manifest.tsv", "w") as f:
        for row in MANIFEST:
            f.write("\t".join(row) + "\n")


if __name__ == "__main__":
    main()
